package localcache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// XCache is the response header the middleware sets to "HIT" or "MISS".
const XCache = "X-Cache"

// Middleware returns middleware that answers GET and HEAD requests from
// store and stores the 200 responses that may be shared; see the package
// documentation for the rules. A HEAD request is answered from the entry of
// the GET, but a HEAD miss is not stored.
//
// A GET miss that may be stored is rendered into a buffer of at most
// [WithMaxEntryBytes] and sent to its client once the handler returns; it is
// stored only if the handler returned normally before the request's
// context was done, the body has the length its Content-Length declares,
// and sending it succeeded. Concurrent misses of the page wait for that
// render and get the page without waiting for its client. A response that
// may not be stored streams through to its client as the handler writes
// it, and the requests waiting on it render their own: one whose status or
// headers say so (including Pragma: no-cache without Cache-Control, an
// Expires already past, Content-Type: text/event-stream, and trailers),
// one that grows past WithMaxEntryBytes, and one the handler flushes
// ([http.Flusher]) or hijacks ([http.Hijacker]) before it returns.
//
// Wrap the whole mux for one policy, or each route's handler with its own
// Middleware for per-route options; any number of them may share one
// Store, and a purge or clear of the store applies to all of them.
//
// Middleware panics if store is nil (or a nil pointer, such as
// (*MemoryStore)(nil)) or an option is invalid or nil, with a message
// saying how to fix it, as chi's middleware constructors do: it is meant for
// options written in code, whose mistakes show the first time the program
// starts, never at request time. When a setting comes from configuration
// (a flag, a file, the environment), use [NewMiddleware], which returns the
// error instead. Middleware is shorthand for NewMiddleware that panics on
// its error.
func Middleware(store Store, opts ...Option) func(http.Handler) http.Handler {
	mw, err := NewMiddleware(store, opts...)
	if err != nil {
		panic(err.Error())
	}
	return mw
}

// NewMiddleware is [Middleware] for options built at run time: it returns an
// error naming every invalid option (and a nil store, or a nil pointer such
// as (*MemoryStore)(nil)), and how to fix it, instead of panicking.
func NewMiddleware(store Store, opts ...Option) (func(http.Handler) http.Handler, error) {
	cfg := defaultConfig()
	if err := storeProblem("Middleware", store, passAStore); err != nil {
		cfg.errs = append(cfg.errs, err)
	}
	for _, opt := range opts {
		if opt == nil {
			cfg.errs = append(cfg.errs, errors.New("an Option is nil: remove it, or pass one made by a With... function"))
			continue
		}
		opt(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("localcache: invalid configuration:\n%w", err)
	}
	cfg.browserPolicy()
	var count *counters
	if cfg.observer != nil {
		count = new(counters)
		cfg.observer.Watch(count.source(store)) // no Close: reports for the observer's lifetime
	}
	return func(next http.Handler) http.Handler {
		return &handler{next: next, store: store, cfg: &cfg, count: count}
	}, nil
}

// handler is the middleware around one next handler.
type handler struct {
	next      http.Handler
	store     Store
	cfg       *config
	flights   flights
	storeErrs storeErrors
	count     *counters // nil without WithObserver
}

// ServeHTTP answers r from the store when it holds r's page, and renders
// it with the next handler otherwise; see [Middleware].
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || h.personal(r) {
		h.count.bypass()
		h.next.ServeHTTP(w, r)
		return
	}
	base := h.baseKey(r)
	if base == "" {
		h.count.bypass()
		h.next.ServeHTTP(w, r)
		return
	}
	ctx := r.Context()
	key, e := h.lookup(ctx, base, r)
	if e != nil {
		h.count.hit()
		replay(w, r, e)
		return
	}
	if r.Method == http.MethodHead {
		// Not stored, but with the headers a GET would have.
		h.count.miss()
		w.Header().Set(XCache, "MISS")
		h.next.ServeHTTP(&recorder{ResponseWriter: w, cfg: h.cfg, streaming: true}, r)
		return
	}

	c, leader := h.flights.join(key)
	if leader {
		// Whatever happens to the render (a panic, runtime.Goexit), the
		// requests waiting on it stop waiting.
		defer h.flights.finish(key, c)
		// The miss seen above may have been filled, and its flight
		// finished, before this request joined: look again, and share
		// what is found with the requests that joined meanwhile.
		// The generation read here also guards the render below: one
		// read per miss, a round trip on a shared store.
		gen, genErr := h.store.Generation(context.WithoutCancel(ctx))
		if genErr == nil {
			if k, e := h.lookup(ctx, base, r); e != nil {
				h.flights.release(c, &fill{key: k, entry: e, gen: gen})
				h.count.hit()
				replay(w, r, e)
				return
			}
		}
		h.count.miss()
		h.miss(w, r, base, gen, genErr, func(f *fill) { h.flights.release(c, f) })
		return
	}
	select {
	case <-c.done:
		if f := c.fill; f != nil && varyKey(base, f.entry, r) == f.key && h.unpurged(ctx, f.gen) {
			h.count.hit() // the handler did not run for it
			replay(w, r, f.entry)
			return
		}
	case <-ctx.Done():
		// This client left or timed out: render for it, as without the
		// cache (the response will not be stored).
	}
	// The response was personal, not cacheable, streamed, another
	// variant, or this request stopped waiting.
	gen, genErr := h.store.Generation(context.WithoutCancel(ctx))
	h.count.miss()
	h.miss(w, r, base, gen, genErr, nil)
}

// unpurged reports whether no purge or clear has run since the store's
// generation was gen: a page shared by a miss still in flight is served
// only then, since a purge may have replaced the data it was rendered from.
func (h *handler) unpurged(ctx context.Context, gen uint64) bool {
	now, err := h.store.Generation(ctx)
	return err == nil && now == gen
}
