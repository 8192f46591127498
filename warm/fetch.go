package warm

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// clock is the time source of a Warmer; tests replace it to control delays.
type clock interface {
	Now() time.Time
	// Timer returns a channel that receives once d has passed, and a
	// function that stops the timer.
	Timer(d time.Duration) (<-chan time.Time, func())
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Timer(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}

// target is a URL to fetch: as given, and resolved.
type target struct {
	raw string
	u   *url.URL // absolute; never modified once built
}

// resolve turns raw into the URL to fetch, or an error naming it.
func (w *Warmer) resolve(raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, fmt.Errorf("warm: URL %q: %w", raw, err)
	}
	u.Fragment, u.RawFragment = "", ""
	switch {
	case (u.Scheme == "http" || u.Scheme == "https") && u.Host != "":
		return target{raw: raw, u: u}, nil
	case u.Scheme != "" || u.Host != "" || !strings.HasPrefix(raw, "/"):
		return target{}, fmt.Errorf("warm: URL %q: need an absolute http or https URL, or a path beginning with \"/\"", raw)
	case w.cfg.base != nil:
		return target{raw: raw, u: w.cfg.base.ResolveReference(u)}, nil
	case w.cfg.handler != nil:
		u.Scheme, u.Host = "http", "localhost"
		return target{raw: raw, u: u}, nil
	default:
		return target{}, fmt.Errorf("warm: URL %q is a path: set WithBaseURL to say which site to fetch it from", raw)
	}
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

// request returns the GET request for t, with the configured headers and
// the default ones.
func (w *Warmer) request(ctx context.Context, t target) *http.Request {
	u := *t.u // the request's URL may be changed by whoever handles it
	req := (&http.Request{
		Method:     http.MethodGet,
		URL:        &u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     w.cfg.header.Clone(),
		Body:       http.NoBody,
		Host:       u.Host,
	}).WithContext(ctx)
	if w.cfg.host != "" {
		req.Host = w.cfg.host
	}
	req.Header.Set("User-Agent", w.cfg.userAgent)
	if _, set := req.Header["Accept-Encoding"]; !set {
		// The gzip variant, as browsers ask for: see WithHeader. Set
		// explicitly, it stops Go's transport from decompressing the
		// body, which is discarded anyway.
		req.Header.Set("Accept-Encoding", DefaultAcceptEncoding)
	}
	if w.cfg.basicAuth {
		req.SetBasicAuth(w.cfg.user, w.cfg.pass)
	}
	return req
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

func (d *discard) Header() http.Header { return d.header }

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

func (d *discard) Write(b []byte) (int, error) {
	d.WriteHeader(http.StatusOK)
	d.bytes += int64(len(b))
	return len(b), nil
}

// Flush lets streaming handlers flush.
func (d *discard) Flush() { d.WriteHeader(http.StatusOK) }

// errClosedBeforeFetch is the error of a URL given to a closed Warmer.
func errClosedBeforeFetch(raw string) error {
	return fmt.Errorf("warm: %s: %w", raw, ErrClosed)
}

// ErrClosed is the error, wrapped, of every URL given to [Warmer.Fetch]
// after [Warmer.Close] began.
var ErrClosed = errors.New("warm: the warmer is closed")
