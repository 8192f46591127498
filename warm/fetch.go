package warm

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
)

// Fetch fetches each distinct URL in urls once, at most [WithConcurrency] at
// a time, and returns when every one has a Result or ctx ends. Use it to
// warm a known list of pages and report on them, as an operator command
// does; it ignores [WithDelay].
//
// A URL is an absolute http or https URL, or a path beginning with "/" (see
// [WithBaseURL]); any other is a Result with an error naming it. A URL
// neither on the base URL's scheme, host and port nor on a host given to
// [WithAllowedHosts] is refused: it is not fetched, and its Result's error
// wraps [ErrRefused] and names its host (see WithBaseURL). Each fetch
// is a GET whose body is read to the end and discarded, since caches store
// only complete responses. The default client follows no redirect and sends
// no cookies; see [New], [WithHTTPClient] and [WithHandler].
//
// Fetch reports through its Summary, progress and [WithOnResult] only: it
// logs nothing, not even failures, since its caller has every Result.
// progress, unless nil, is called once per distinct URL, one call at a time
// on the caller's goroutine, for example to draw a progress bar; a panic in
// it cancels the fetches in flight and goes on up to Fetch's caller, and no
// goroutine of Fetch's is left waiting. When ctx ends, the fetches in flight
// are cancelled and the URLs not yet fetched fail with ctx's cause. After
// Close, every URL fails with [ErrClosed]. Close does not stop a Fetch in
// progress: cancel its ctx.
func (w *Warmer) Fetch(ctx context.Context, urls []string, progress func(Result)) Summary {
	start := w.cfg.clock.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // also when progress panics: the fetches in flight end soon
	var t tally
	emit := func(r Result) {
		w.count(r)
		t.add(r)
		w.report(r)
		if progress != nil {
			progress(r)
		}
	}
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()

	seen := make(map[string]struct{}, len(urls))
	jobs := make([]target, 0, len(urls))
	for _, raw := range urls {
		if _, dup := seen[raw]; dup {
			continue
		}
		seen[raw] = struct{}{}
		if closed {
			emit(Result{URL: redactURL(raw), Err: errClosedBeforeFetch(raw)})
			continue
		}
		tg, err := w.resolve(raw)
		if err != nil {
			emit(Result{URL: redactURL(raw), Err: err})
			continue
		}
		jobs = append(jobs, tg)
	}

	// Fetches in flight hold a token of sem each, so they are never more
	// than its capacity: each can send its result and end even if this
	// function is gone, unwound by a panic in progress.
	results := make(chan Result, cap(w.sem))
	done := ctx.Done()
	inflight := 0
	for len(jobs) > 0 || inflight > 0 {
		var acquire chan<- struct{}
		if len(jobs) > 0 && ctx.Err() == nil {
			acquire = w.sem
		}
		select {
		case acquire <- struct{}{}:
			tg := jobs[0]
			jobs = jobs[1:]
			inflight++
			go func() { // Fetch waits for it: inflight
				r := w.fetch(ctx, tg)
				<-w.sem
				results <- r
			}()
		case r := <-results:
			inflight--
			emit(r)
		case <-done:
			for _, tg := range jobs {
				emit(Result{URL: tg.raw, Err: fmt.Errorf("warm: %s: not fetched: %w", tg.raw, context.Cause(ctx))})
			}
			jobs, done = nil, nil
		}
	}
	return t.summary(w.cfg.clock.Now().Sub(start))
}

// fetch gets t and reads its body, within the configured timeout.
func (w *Warmer) fetch(ctx context.Context, t target) Result {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.timeout)
	defer cancel()
	start := w.cfg.clock.Now()
	var r Result
	if w.cfg.handler != nil {
		r = w.serve(ctx, t)
	} else {
		r = w.get(ctx, t)
	}
	r.URL = t.raw
	r.Duration = w.cfg.clock.Now().Sub(start)
	return r
}

// request returns the GET request for t: with the configured headers and
// credentials if t is on the site, with the anonymous ones only if not.
func (w *Warmer) request(ctx context.Context, t target) *http.Request {
	u := *t.u // the request's URL may be changed by whoever handles it
	req := (&http.Request{
		Method:     http.MethodGet,
		URL:        &u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     w.anonymousHeader(),
		Body:       http.NoBody,
		Host:       u.Host,
	}).WithContext(ctx)
	if !t.site {
		return req
	}
	for name, values := range w.cfg.header {
		if name != "User-Agent" { // WithUserAgent's wins
			req.Header[name] = append([]string(nil), values...) // Accept-Encoding replaces the default
		}
	}
	if w.cfg.host != "" {
		req.Host = w.cfg.host
	}
	if w.cfg.basicAuth {
		req.SetBasicAuth(w.cfg.user, w.cfg.pass)
	}
	return req
}

// anonymousHeader returns the headers of a fetch from a host other than
// the site's: the User-Agent and the default Accept-Encoding, the gzip
// variant browsers ask for (see WithHeader). Set explicitly, it stops Go's
// transport from decompressing the body, which is discarded anyway.
func (w *Warmer) anonymousHeader() http.Header {
	return http.Header{
		"User-Agent":      {w.cfg.userAgent},
		"Accept-Encoding": {DefaultAcceptEncoding},
	}
}

// get fetches t over the network.
func (w *Warmer) get(ctx context.Context, t target) Result {
	res, err := w.client.Do(w.request(ctx, t))
	if err != nil {
		return Result{Err: fmt.Errorf("warm: %s: %w", t.raw, err)}
	}
	defer res.Body.Close()
	n, err := io.Copy(io.Discard, res.Body)
	if err != nil {
		return Result{Bytes: n, Err: fmt.Errorf("warm: %s: reading the body: %w", t.raw, err)}
	}
	return Result{Status: res.StatusCode, Cache: cacheStatus(res.Header), Bytes: n}
}

// serve fetches t from the in-process handler.
func (w *Warmer) serve(ctx context.Context, t target) (r Result) {
	req := w.request(ctx, t)
	req.RequestURI = t.u.RequestURI()
	req.RemoteAddr = "127.0.0.1:0"
	if t.u.Scheme == "https" {
		req.TLS = &tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true, ServerName: hostname(req.Host)}
	}
	rw := &discard{header: make(http.Header)}
	defer func() {
		if p := recover(); p != nil {
			err := fmt.Errorf("warm: %s: the handler panicked: %v", t.raw, p)
			if p == http.ErrAbortHandler {
				err = fmt.Errorf("warm: %s: the handler aborted the response: %w", t.raw, http.ErrAbortHandler)
			}
			r = Result{Bytes: rw.bytes, Err: err}
		}
	}()
	w.cfg.handler.ServeHTTP(rw, req)
	rw.WriteHeader(http.StatusOK) // no-op unless the handler wrote nothing
	if err := ctx.Err(); err != nil {
		// The handler may have cut the page short: a cache keeps no
		// partial page, and a client would have seen an error too.
		return Result{Bytes: rw.bytes, Err: fmt.Errorf("warm: %s: %w", t.raw, context.Cause(ctx))}
	}
	return Result{Status: rw.status, Cache: rw.cache, Bytes: rw.bytes}
}

// hostname returns host without its port.
func hostname(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

// cacheStatus returns the cache's verdict from response headers h.
func cacheStatus(h http.Header) string {
	if v := h.Get("X-Cache"); v != "" {
		return v
	}
	return h.Get("X-Cache-Status")
}

// discard is the ResponseWriter given to an in-process handler: it keeps
// the status and the cache headers, and counts and drops the body.
type discard struct {
	header http.Header
	status int
	cache  string
	bytes  int64
}

// Header returns the header map the handler writes to.
func (d *discard) Header() http.Header { return d.header }

// WriteHeader keeps the first final status and the cache's verdict.
func (d *discard) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code)) // as net/http does; serve recovers it
	}
	if d.status != 0 || (code <= 199 && code != http.StatusSwitchingProtocols) {
		return // already written, or informational
	}
	d.status = code
	d.cache = cacheStatus(d.header)
}

// Write counts and drops b.
func (d *discard) Write(b []byte) (int, error) {
	d.WriteHeader(http.StatusOK)
	d.bytes += int64(len(b))
	return len(b), nil
}

// Flush lets streaming handlers flush.
func (d *discard) Flush() { d.WriteHeader(http.StatusOK) }

// errClosedBeforeFetch is the error of a URL given to a closed Warmer.
func errClosedBeforeFetch(raw string) error {
	return fmt.Errorf("warm: %s: %w", redactURL(raw), ErrClosed)
}

// ErrClosed is the error, wrapped, of every URL given to [Warmer.Fetch]
// after [Warmer.Close] began.
var ErrClosed = errors.New("warm: the warmer is closed")
