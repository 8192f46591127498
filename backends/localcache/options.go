package localcache

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Defaults used by [Middleware] for settings that no [Option] changes.
const (
	DefaultTTL           = 5 * time.Minute
	DefaultTagHeader     = "Surrogate-Key"
	DefaultMaxEntryBytes = 1 << 20
)

// An Option configures [Middleware].
type Option func(*config)

type config struct {
	ttl            time.Duration
	tagHeader      string
	sessionCookies []string // nil: any cookie makes a request private
	maxEntryBytes  int
	logger         *slog.Logger
	errs           []error
}

func defaultConfig() config {
	return config{
		ttl:           DefaultTTL,
		tagHeader:     DefaultTagHeader,
		maxEntryBytes: DefaultMaxEntryBytes,
		logger:        slog.Default(),
	}
}

// TTL sets how long a response is kept when its Cache-Control sets neither
// s-maxage nor max-age. Purges remove entries sooner; the TTL bounds how
// stale a page can be when a purge is lost. Defaults to [DefaultTTL] (5
// minutes).
func TTL(d time.Duration) Option {
	return func(c *config) { c.ttl = d }
}

// TagHeader names the response header that lists an entry's cache tags,
// separated by spaces or commas: "Surrogate-Key" (Fastly, Varnish), "xkey"
// (Varnish xkey), "Edge-Cache-Tag" (Akamai), "Cache-Tag" (Cloudflare).
// Defaults to [DefaultTagHeader].
func TagHeader(name string) Option {
	return func(c *config) { c.tagHeader = http.CanonicalHeaderKey(name) }
}

// SessionCookies names the cookies that mark a request as personal: a
// request carrying any of them is neither answered from the cache nor
// stored. Other cookies (analytics, consent) are ignored. By default, any
// cookie marks a request as personal, which is safe but caches nothing for
// visitors with cookies.
func SessionCookies(names ...string) Option {
	return func(c *config) {
		if len(names) == 0 {
			c.errs = append(c.errs, errors.New("SessionCookies(): name at least one cookie, or leave the option out to treat any cookie as personal"))
		}
		c.sessionCookies = append(c.sessionCookies, names...)
	}
}

// MaxEntryBytes bounds the body of a response the middleware keeps; a
// larger one is passed through and not stored. Defaults to
// [DefaultMaxEntryBytes] (1 MiB).
func MaxEntryBytes(n int) Option {
	return func(c *config) { c.maxEntryBytes = n }
}

// Logger sets where store errors are reported; the middleware serves the
// request without the cache when its store fails. Defaults to
// [slog.Default] at the time Middleware is called.
func Logger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.errs = append(c.errs, errors.New("Logger(nil): pass slog.New(slog.DiscardHandler) to silence the middleware"))
			return
		}
		c.logger = l
	}
}

func (c *config) validate() error {
	errs := c.errs
	if c.ttl <= 0 {
		errs = append(errs, fmt.Errorf("TTL(%v): need a positive duration", c.ttl))
	}
	if c.tagHeader == "" {
		errs = append(errs, errors.New(`TagHeader(""): name a header such as "Surrogate-Key"`))
	}
	if c.maxEntryBytes < 1 {
		errs = append(errs, fmt.Errorf("MaxEntryBytes(%d): need a positive size in bytes", c.maxEntryBytes))
	}
	return errors.Join(errs...)
}
