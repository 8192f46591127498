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

	"github.com/gormpurge/gormpurge/backends"
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
	raw  string
	u    *url.URL // absolute; never modified once built
	site bool     // u is on the site: send the credentials and headers
}

// resolve turns raw into the URL to fetch, or an error naming it. A URL
// that is neither on the site nor on an allowed host is refused with an
// error wrapping [ErrRefused].
func (w *Warmer) resolve(raw string) (target, error) {
	shown := redactURL(raw)
	fetch := raw
	if c, err := backends.CanonicalURL(raw); err == nil {
		fetch = c // as the caches key the page, and as purges name it
	}
	u, err := url.Parse(fetch)
	if err != nil {
		if shown != raw {
			// The parser's message may quote a piece of the password.
			return target{}, fmt.Errorf("warm: URL %q: cannot be parsed", shown)
		}
		return target{}, fmt.Errorf("warm: URL %q: %s", shown, parseProblem(err))
	}
	u.Fragment, u.RawFragment = "", ""
	switch {
	case (u.Scheme == "http" || u.Scheme == "https") && u.Host != "":
	case u.Scheme != "" || u.Host != "" || !strings.HasPrefix(raw, "/"):
		return target{}, fmt.Errorf("warm: URL %q: need an absolute http or https URL, or a path beginning with \"/\"", shown)
	case w.cfg.base != nil:
		u = w.cfg.base.ResolveReference(u)
	case w.cfg.handler != nil:
		u.Scheme, u.Host = "http", "localhost"
	default:
		return target{}, fmt.Errorf("warm: URL %q is a path: set WithBaseURL to say which site to fetch it from", shown)
	}
	site, err := w.cfg.allow(u, shown)
	if err != nil {
		return target{}, err
	}
	return target{raw: raw, u: u, site: site}, nil
}

// allow reports whether u, an absolute URL shown as shown, is on the site
// (scheme, host and port of the base URL), or else returns an error
// wrapping ErrRefused unless u is on an allowed host. Without a site and
// an allow-list, every host is allowed (no credentials are configured).
func (c *config) allow(u *url.URL, shown string) (site bool, err error) {
	if u.User != nil {
		return false, &refusal{url: shown, host: u.Host, why: "it has a user or password (credentials are set by WithBasicAuth, for the base URL only)"}
	}
	o := originOf(u)
	switch {
	case c.site != nil && o == *c.site:
		return true, nil
	case c.allowedHosts != nil && c.allowedHosts[o.host]:
		return false, nil
	case c.site == nil && c.allowedHosts == nil:
		return false, nil
	case c.site == nil:
		return false, &refusal{url: shown, host: u.Host, why: "its host is not one given to WithAllowedHosts"}
	default:
		return false, &refusal{url: shown, host: u.Host, why: fmt.Sprintf("it is not on the base URL's site (%s), nor on a host given to WithAllowedHosts", c.site)}
	}
}

// ErrRefused is the error, wrapped, of every URL that [Warmer.Fetch] and
// [Warmer.Enqueue] refuse to fetch: one neither on the base URL's scheme,
// host and port nor on a host given to [WithAllowedHosts], one with a user
// or password, and a redirect to such a URL when a [WithHTTPClient] client
// follows redirects. The error names the URL and its host.
var ErrRefused = errors.New("warm: URL refused: neither on the base URL's site nor on an allowed host")

// refusal is the error of a URL refused by the host policy.
type refusal struct {
	url  string // redacted
	host string
	why  string
}

func (r *refusal) Error() string {
	return fmt.Sprintf("warm: URL %q: refused, host %q: %s", r.url, r.host, r.why)
}

func (r *refusal) Unwrap() error { return ErrRefused }

// origin is what a URL's credentials are bound to: its scheme, its host
// name in lower case (an IP address in its usual form) and its port, the
// scheme's default when it names none. The transport dials the same host
// and port.
type origin struct {
	scheme, host, port string
}

func originOf(u *url.URL) origin {
	o := origin{scheme: strings.ToLower(u.Scheme), host: canonicalHost(u.Hostname()), port: u.Port()}
	if o.port == "" {
		o.port = "80"
		if o.scheme == "https" {
			o.port = "443"
		}
	}
	return o
}

func (o origin) String() string {
	return o.scheme + "://" + net.JoinHostPort(o.host, o.port)
}

// canonicalHost returns host in lower case, or in the usual form of its IP
// address.
func canonicalHost(host string) string {
	if ip := net.ParseIP(host); ip != nil {
		return ip.String()
	}
	if c, err := backends.CanonicalHost("http", host); err == nil {
		return c // lower case, punycode for an internationalised name
	}
	return strings.ToLower(host)
}

// redactURL returns raw as errors, logs and results show it: an absolute
// URL holding an "@" anywhere (user information, whose password may hold
// "/", "?" or "#") as [backends.RedactURL] shows it, and anything else as
// given, since a page's path and query are not secrets.
func redactURL(raw string) string {
	if i := strings.Index(raw, "//"); i >= 0 && strings.Contains(raw[i+2:], "@") {
		return backends.RedactURL(raw)
	}
	return raw
}

// parseProblem returns why url.Parse failed, without the URL that its
// error repeats.
func parseProblem(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
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

// checkRedirect returns the CheckRedirect function of the copy New makes
// of a WithHTTPClient client: a redirect to a URL the Warmer would refuse is
// not followed, and one to an allowed host other than the site's carries
// the anonymous headers only, net/http having copied every header of the
// first request (Authorization and Cookie too, to the same host name on
// another port or scheme). Then next, the client's own function, decides;
// without one, at most 10 redirects are followed, as net/http does.
func (w *Warmer) checkRedirect(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		site, err := w.cfg.allow(req.URL, redactURL(req.URL.String()))
		if err != nil {
			return err
		}
		if !site {
			req.Header = w.anonymousHeader() // no Referer either
			req.Host = ""
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
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
	return fmt.Errorf("warm: %s: %w", redactURL(raw), ErrClosed)
}

// ErrClosed is the error, wrapped, of every URL given to [Warmer.Fetch]
// after [Warmer.Close] began.
var ErrClosed = errors.New("warm: the warmer is closed")
