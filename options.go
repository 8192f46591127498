package gormpurge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/internal/nilcheck"
	"github.com/gormpurge/gormpurge/observe"
)

// Option configures a Plugin; pass options to New.
type Option func(*config)

type config struct {
	baseURL        string
	allowedHosts   []string
	logger         *slog.Logger
	onError        func(context.Context, error)
	handoffTimeout time.Duration
	obs            observe.Observer // nil without WithObserver
	readTags       bool
	tagHeaders     []backends.TagHeader
	errs           []error // problems found while applying options
}

func defaultConfig() config {
	return config{logger: slog.Default(), handoffTimeout: 5 * time.Second, tagHeaders: []backends.TagHeader{backends.SurrogateKeyHeader()}}
}

// WithBaseURL resolves the site-relative paths models return ("/posts/1")
// against base ("https://www.example.com"), so that the Sink receives
// absolute URLs. Without it, paths are handed off as paths, for backends
// that know the site's host. With it, absolute URLs must be on base's host
// (or on one WithAllowedHosts names): anything else is rejected with
// ErrForeignHost. Defaults to none.
func WithBaseURL(base string) Option {
	return func(c *config) { c.baseURL = base }
}

// WithAllowedHosts rejects absolute URLs whose host is not one of hosts (the
// base URL's host is always allowed), so that a bug or hostile data in a
// model cannot purge another site's pages. Internationalised names may be
// given in Unicode or punycode. Defaults to allowing any host without
// WithBaseURL, and only the base URL's host with it.
func WithAllowedHosts(hosts ...string) Option {
	return func(c *config) { c.allowedHosts = append(c.allowedHosts, hosts...) }
}

// WithLogger sets the logger for rejected targets, failed lookups and failed
// handoffs (level Error) and for each handoff (level Debug). To silence the
// plugin, pass slog.New(slog.DiscardHandler); nil is an error. Defaults to
// slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.errs = append(c.errs, errors.New("gormpurge: WithLogger(nil): pass slog.New(slog.DiscardHandler) to silence the plugin, or leave the option out"))
			return
		}
		c.logger = l
	}
}

// WithErrorHandler calls fn with every error the plugin reports: a
// *TargetError, a *ModelError or a *HandoffError. fn runs on the goroutine
// that wrote or committed and should return quickly. Defaults to none (errors
// are only logged); nil is an error.
func WithErrorHandler(fn func(ctx context.Context, err error)) Option {
	return func(c *config) {
		if fn == nil {
			c.errs = append(c.errs, errors.New("gormpurge: WithErrorHandler(nil): pass a function, or leave the option out to only log errors"))
			return
		}
		c.onError = fn
	}
}

// WithHandoffTimeout bounds how long one call to the Sink may take, so that a
// full queue cannot stall the code that committed. 0 means no bound.
// Defaults to 5 seconds.
func WithHandoffTimeout(d time.Duration) Option {
	return func(c *config) { c.handoffTimeout = d }
}

// WithObserver reports what the plugin does to o, a metrics or tracing
// system's Observer (the contrib modules otelpurge and prompurge provide
// them; see package observe). Each handoff is started with
// o.StartHandoff in the context of the transaction that committed, so that
// a tracer's span for it is a child of the caller's; its origin (when it
// committed, and the traceparent o returned) goes to the Sink in the
// context (observe.ContextWithOrigin), where the dispatcher and the outbox
// find it. The plugin's counters ([Plugin.Stats]) are registered with
// o.Watch when New returns, for as long as o lives. o runs on the goroutine
// that commits: it must be quick and must not block; a panic in it is
// logged and never fails the commit. o must not be nil: leave the option
// out for none. Defaults to none.
func WithObserver(o observe.Observer) Option {
	return func(c *config) {
		if nilcheck.IsNil(o) {
			c.errs = append(c.errs, errors.New("gormpurge: WithObserver(nil): pass an Observer, or leave the option out"))
			return
		}
		c.obs = o
	}
}

// WithReadTags tags each page with the rows its queries read, and purges,
// at each commit, the tags of the rows it wrote: see [Plugin.TagReads] for
// the middleware that collects a request's tags and sends them. A page
// that read post 42 carries "posts:42" ([backends.RowTag]); one that
// listed posts, or looked one up by a column that is not unique, carries
// "posts" ([backends.TableTag]). A commit that created, updated or deleted
// post 42 purges "posts:42" (old and new state) and "posts", as well as
// the URLs and tags of the models' methods, which keep working. With it,
// models may be registered without any URL or tag method. Defaults to off.
func WithReadTags() Option {
	return func(c *config) { c.readTags = true }
}

// WithTagHeaders sets the response headers TagReads lists a page's tags
// in, each with its cache's limits: backends.SurrogateKeyHeader()
// (Fastly), backends.XKeyHeader() (Varnish's xkey), backends.CacheTagHeader()
// (Cloudflare), or one of your own. Defaults to Surrogate-Key alone.
func WithTagHeaders(headers ...backends.TagHeader) Option {
	return func(c *config) {
		if len(headers) == 0 {
			c.errs = append(c.errs, errors.New("gormpurge: WithTagHeaders(): name at least one header, or leave the option out for Surrogate-Key"))
			return
		}
		for _, h := range headers {
			if h.Name == "" || (h.Separator != ' ' && h.Separator != ',') {
				c.errs = append(c.errs, fmt.Errorf("gormpurge: WithTagHeaders: header %q: want a name and a separator of ' ' or ','", h.Name))
				return
			}
		}
		c.tagHeaders = headers
	}
}
