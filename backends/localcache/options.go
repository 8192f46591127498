package localcache

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gormpurge/gormpurge/observe"
)

// Defaults used by [Middleware] for settings that no [Option] changes.
const (
	DefaultTTL           = 5 * time.Minute
	DefaultTagHeader     = "Surrogate-Key"
	DefaultMaxEntryBytes = 1 << 20
)

// DefaultBrowserMaxAge is the longest time clients may keep a page of an
// [WithUntilPurged] route when [WithBrowserMaxAge] is not given: 60 seconds, or
// less when the handler's max-age says so. It
// bounds how long a browser keeps showing a page the server has purged.
const DefaultBrowserMaxAge = 60 * time.Second

// An Option configures [Middleware] or [NewMiddleware]; see the package
// documentation for what a nil argument means.
type Option func(*config)

type config struct {
	ttl            time.Duration
	ttlSet         bool
	lifetime       lifetime // keepUntilPurged with WithUntilPurged
	browserMaxAge  time.Duration
	browserSet     bool
	keyFunc        func(*http.Request) string
	keyFuncSet     bool
	tagHeader      string
	sessionCookies []string // nil: any cookie makes a request private
	maxEntryBytes  int
	logger         *slog.Logger
	observer       observe.Observer // nil: count nothing
	errs           []error

	// browser says whether clients receive a Cache-Control of the
	// middleware's (see [WithBrowserMaxAge]) for the pages it stores, rather
	// than the handler's; browserLifetime is the longest max-age it gives.
	browser         bool
	browserLifetime time.Duration
}

func defaultConfig() config {
	return config{
		ttl:           DefaultTTL,
		tagHeader:     DefaultTagHeader,
		maxEntryBytes: DefaultMaxEntryBytes,
		logger:        slog.Default(),
	}
}

// WithTTL sets how long the server keeps a response when its Cache-Control
// sets neither s-maxage nor max-age and it has no Expires field (a
// response's Age counts against either). Purges remove entries sooner; the TTL
// bounds how stale a page can be when a purge is lost. Defaults to
// [DefaultTTL] (5 minutes). Giving both WithTTL and [WithUntilPurged] to one
// Middleware is a configuration error.
func WithTTL(d time.Duration) Option {
	return func(c *config) { c.ttl, c.ttlSet = d, true }
}

// WithUntilPurged makes the server keep pages with no expiry, until a purge,
// [Store.Clear] or the store's memory bound removes them. Use it on routes
// whose every change gormpurge purges, by URL or tag, and keep [WithTTL] on
// routes that depend on data gormpurge does not see.
//
// A response's Cache-Control no-store, no-cache or private, its Pragma:
// no-cache without a Cache-Control, or a Set-Cookie, still keeps it out of
// the cache, and its s-maxage, when present, still bounds how long the
// server keeps it; its max-age and Expires do not (they are for browsers,
// even max-age=0 or an Expires already past). Because a browser keeps a
// page for its max-age whatever the server purges, clients receive at most
// Cache-Control: max-age=60 ([DefaultBrowserMaxAge]) unless [WithBrowserMaxAge]
// says otherwise.
func WithUntilPurged() Option {
	return func(c *config) { c.lifetime = keepUntilPurged }
}

// WithBrowserMaxAge sets the longest time clients may keep a page, separately
// from how long the server keeps it. Every response the middleware stores
// or serves from the cache reaches the client with its Cache-Control
// replaced by "max-age=<seconds>", where seconds is the smaller of d and
// the handler's own max-age when it set one (else what remains of its
// Expires), less the response's Age, or by "no-cache" when d is 0
// (clients then revalidate each time, which costs a 304 with the page's
// ETag); and without Expires or Age. WithBrowserMaxAge never loosens what the
// handler said: its max-age=0 stays max-age=0, and its must-revalidate,
// proxy-revalidate and no-transform are kept, as in
// "max-age=0, must-revalidate". Its other directives are not sent: not
// immutable, which would keep browsers from revalidating a purged page,
// nor s-maxage, so a shared cache in front (a CDN) keeps the page no
// longer than a browser does. To give a CDN its own lifetime, use a header
// only it reads, such as CDN-Cache-Control or Surrogate-Control, which the
// middleware passes through.
//
// A miss is judged by its status and headers when the handler writes
// them, so a page too large to store gets the same header. Personal
// requests and responses the cache must not store (private, no-store,
// no-cache, Set-Cookie, errors) keep the handler's headers.
//
// Without WithBrowserMaxAge, clients receive the handler's own Cache-Control
// and Expires, except on [WithUntilPurged] routes, where d defaults to
// [DefaultBrowserMaxAge]. Max-age counts whole seconds, so d must be 0 or
// a positive whole number of seconds: a negative d, or one such as
// 500*time.Millisecond or 1500*time.Millisecond, is a configuration error.
func WithBrowserMaxAge(d time.Duration) Option {
	return func(c *config) { c.browserMaxAge, c.browserSet = d, true }
}

// WithKeyFunc makes requests for which fn returns the same string share one
// cache entry, in place of the default key (scheme, host, path and query).
// Use it to ignore query parameters that do not change the page, such as
// utm_source. The response's Vary still selects a variant within the key;
// fn returning "" passes the request through to the handler, uncached.
// Keys are shared by every Middleware on the same Store, so include what
// tells the route apart (such as r.URL.Path) in them.
//
// Purges find the entry by the path, host and raw query of the request
// that filled it, and by its tags, not by fn's key. A purge by path
// ("/list", or "https://example.com/list"), the usual case since the URLs
// of gormpurge's models name paths, removes every entry of the page,
// whatever the queries of the requests that filled them. A purge naming a
// query ("/list?page=2") matches only an entry filled by a request whose
// raw query was exactly "page=2": not one filled by
// "/list?page=2&utm_source=mail" or "/list?utm_source=mail&page=2", although
// fn gives them the same key. The middleware does not normalise queries
// for purges; purge such pages by path, or by tag.
//
// fn is called for every GET and HEAD request that is not personal (see
// [WithSessionCookies]), on the hit path: keep it cheap. A nil fn is an
// error.
func WithKeyFunc(fn func(r *http.Request) string) Option {
	return func(c *config) { c.keyFunc, c.keyFuncSet = fn, true }
}

// WithTagHeader names the response header that lists an entry's cache tags,
// separated by spaces or commas: "Surrogate-Key" (Fastly, Varnish), "xkey"
// (Varnish xkey), "Edge-Cache-Tag" (Akamai), "Cache-Tag" (Cloudflare).
// Defaults to [DefaultTagHeader].
func WithTagHeader(name string) Option {
	return func(c *config) { c.tagHeader = http.CanonicalHeaderKey(name) }
}

// WithSessionCookies names the cookies that mark a request as personal: a
// request carrying any of them is neither answered from the cache nor
// stored. Other cookies (analytics, consent) are ignored. By default, any
// cookie marks a request as personal, which is safe but caches nothing for
// visitors with cookies.
func WithSessionCookies(names ...string) Option {
	return func(c *config) {
		if len(names) == 0 {
			c.errs = append(c.errs, errors.New("WithSessionCookies(): name at least one cookie, or leave the option out to treat any cookie as personal"))
		}
		c.sessionCookies = append(c.sessionCookies, names...)
	}
}

// WithMaxEntryBytes bounds the body of a response the middleware keeps, and so
// how much of a miss it buffers before sending it; a larger one is passed
// through, streaming, and not stored. Defaults to [DefaultMaxEntryBytes]
// (1 MiB).
func WithMaxEntryBytes(n int) Option {
	return func(c *config) { c.maxEntryBytes = n }
}

// WithLogger sets where store errors are reported; the middleware serves the
// request without the cache when its store fails. To silence it, pass
// slog.New(slog.DiscardHandler); nil is an error. Defaults to
// [slog.Default] at the time Middleware is called.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.errs = append(c.errs, errors.New("WithLogger(nil): pass slog.New(slog.DiscardHandler) to silence the middleware"))
			return
		}
		c.logger = l
	}
}

func (c *config) validate() error {
	errs := c.errs
	if c.ttl <= 0 {
		errs = append(errs, fmt.Errorf("WithTTL(%v): need a positive duration", c.ttl))
	}
	if c.ttlSet && c.lifetime == keepUntilPurged {
		errs = append(errs, fmt.Errorf("WithTTL(%v) and WithUntilPurged(): choose one; WithTTL bounds how long the server keeps a page, WithUntilPurged keeps it until a purge removes it", c.ttl))
	}
	if c.browserMaxAge < 0 || c.browserMaxAge%time.Second != 0 {
		errs = append(errs, fmt.Errorf("WithBrowserMaxAge(%v): need 0 (clients revalidate each time) or a positive whole number of seconds, as max-age counts, such as 30*time.Second", c.browserMaxAge))
	}
	if c.keyFuncSet && c.keyFunc == nil {
		errs = append(errs, errors.New("WithKeyFunc(nil): pass a function, or leave the option out to key by scheme, host, path and query"))
	}
	if c.tagHeader == "" {
		errs = append(errs, errors.New(`WithTagHeader(""): name a header such as "Surrogate-Key"`))
	}
	if c.maxEntryBytes < 1 {
		errs = append(errs, fmt.Errorf("WithMaxEntryBytes(%d): need a positive size in bytes", c.maxEntryBytes))
	}
	return errors.Join(errs...)
}

// browserPolicy sets c.browser and c.browserLifetime from the options.
func (c *config) browserPolicy() {
	switch {
	case c.browserSet:
		c.browser, c.browserLifetime = true, c.browserMaxAge
	case c.lifetime == keepUntilPurged:
		c.browser, c.browserLifetime = true, DefaultBrowserMaxAge
	}
}
