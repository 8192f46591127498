package localcache

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/internal/nilcheck"
)

// BackendName is the Name of a [Backend].
const BackendName = "localcache"

// Backend purges a [Store] filled by [Middleware]. Give it to the
// dispatcher with the other backends. It is safe for concurrent use.
type Backend struct {
	store Store
	bus   Bus // nil: this instance only

	// What the bus refused, sent again with the next publish: a purge
	// the dispatcher gave up on must still reach the other instances.
	mu       sync.Mutex
	owed     map[string]struct{} // index keys of refused purges
	owedAll  bool                // a refused clear, or more than maxOwed indexes
	failures uint64              // refused publishes so far
}

// maxOwed bounds the index keys a [Backend] keeps for the other instances
// while its bus refuses them; past it, it owes them a clear instead.
const maxOwed = 10_000

var (
	_ backends.Backend    = (*Backend)(nil)
	_ backends.PurgeAller = (*Backend)(nil)
)

// A BackendOption configures a [Backend]; pass it to [NewBackend].
type BackendOption func(*backendConfig)

type backendConfig struct {
	bus  Bus
	errs []error
}

// WithBus makes the Backend publish every purge and clear on bus after
// applying it to its own store, so that the other instances of the
// application, each running [Follow] on the same bus, apply it to theirs.
// A purge is reported delivered only once both are done: when the bus
// refuses it, Purge returns an error and the dispatcher retries it. Use it
// when each instance keeps pages in a store of its own, such as a
// [MemoryStore]; a store shared by every instance (such as redisstore's)
// needs no bus.
func WithBus(bus Bus) BackendOption {
	return func(c *backendConfig) {
		switch {
		case bus == nil:
			c.errs = append(c.errs, errors.New("WithBus(nil): pass a Bus, such as one from redisstore.NewBus or natsbus.New, or leave the option out"))
		case nilcheck.IsNil(bus):
			c.errs = append(c.errs, fmt.Errorf("WithBus((%T)(nil)): the Bus is a nil %T: pass one from its constructor", bus, bus))
		default:
			c.bus = bus
		}
	}
}

// NewBackend returns a Backend that purges store, the Store given to
// [Middleware], configured by opts. It returns an error if store is nil,
// or a nil pointer (or other nil value) of a type that implements Store,
// such as (*MemoryStore)(nil), naming each problem and how to fix it.
func NewBackend(store Store, opts ...BackendOption) (*Backend, error) {
	var c backendConfig
	if err := storeProblem("NewBackend", store, passTheStore); err != nil {
		c.errs = append(c.errs, err)
	}
	for _, opt := range opts {
		if opt == nil {
			c.errs = append(c.errs, errors.New("a BackendOption is nil: remove it, or pass one made by a With... function"))
			continue
		}
		opt(&c)
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, fmt.Errorf("localcache: invalid backend configuration:\n%w", err)
	}
	return &Backend{store: store, bus: c.bus}, nil
}

// Name returns [BackendName].
func (b *Backend) Name() string { return BackendName }

// Limits returns no limits: a purge is a map lookup per object.
func (b *Backend) Limits() backends.Limits { return backends.Limits{} }

// Purge removes every entry matching r's URLs and tags; see the package
// documentation for how URLs match. A URL that is neither a path nor an
// absolute http(s) URL makes Purge return a [backends.Permanent] and
// [backends.Partial] error naming it, after purging the others. When ctx
// has ended, Purge purges nothing and returns an error wrapping ctx's.
// Result.Detail says how many entries were removed.
func (b *Backend) Purge(ctx context.Context, r backends.Request) (backends.Result, error) {
	res := backends.Result{Backend: BackendName, Objects: r.Len()}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("localcache: purge: %w", err)
	}
	indexes := make([]string, 0, r.Len())
	var (
		bad     []error
		refused backends.Request
	)
	for _, u := range r.URLs {
		ix, err := purgeIndex(u)
		if err != nil {
			bad = append(bad, fmt.Errorf("localcache: cannot purge URL %q: %w", backends.RedactURL(u), err))
			refused.URLs = append(refused.URLs, u)
			continue
		}
		indexes = append(indexes, ix)
	}
	for _, t := range r.Tags {
		indexes = append(indexes, ixTag+t)
	}
	n, err := b.store.Purge(ctx, indexes)
	res.Detail = fmt.Sprintf("removed %d entries", n)
	if err != nil {
		return res, fmt.Errorf("localcache: purge: %w", err)
	}
	if b.bus != nil && len(indexes) > 0 {
		if err := b.publish(ctx, Event{Kind: EventPurge, Indexes: indexes}); err != nil {
			return res, fmt.Errorf("localcache: purged here (%s) but could not tell the other instances: %w", res.Detail, err)
		}
		res.Detail += "; published"
	}
	return res, backends.Partial(refused, backends.Permanent(errors.Join(bad...)))
}

// Clear empties the store and, with [WithBus], tells the other instances
// to empty theirs; it returns how many entries it removed here. It is
// PurgeAll for [ClearHandler], which takes a [Clearer].
func (b *Backend) Clear(ctx context.Context) (int, error) {
	n, _, err := b.clear(ctx)
	return n, err
}

// CanPurgeAll returns nil: a [Store] can always be cleared.
func (b *Backend) CanPurgeAll() error { return nil }

// PurgeAll empties the store with [Store.Clear], for a dispatcher's
// escalation to a purge of everything or an operator's "purge everything"
// button; with [WithBus], every other instance clears its store too.
// Result.Detail says how many entries were removed here. When ctx has
// ended, PurgeAll clears nothing and returns an error wrapping ctx's.
func (b *Backend) PurgeAll(ctx context.Context) (backends.Result, error) {
	_, res, err := b.clear(ctx)
	return res, err
}

// clear is Clear and PurgeAll: it returns the entries removed here.
func (b *Backend) clear(ctx context.Context) (int, backends.Result, error) {
	if err := ctx.Err(); err != nil {
		return 0, backends.Result{Backend: BackendName}, fmt.Errorf("localcache: clear: %w", err)
	}
	n, err := b.store.Clear(ctx)
	res := backends.Result{Backend: BackendName, Detail: fmt.Sprintf("removed %d entries", n)}
	if err != nil {
		return n, res, fmt.Errorf("localcache: clear: %w", err)
	}
	if b.bus != nil {
		if err := b.publish(ctx, Event{Kind: EventClear}); err != nil {
			return n, res, fmt.Errorf("localcache: cleared here (%s) but could not tell the other instances: %w", res.Detail, err)
		}
		res.Detail += "; published"
	}
	return n, res, nil
}

// publish publishes e on the bus together with what the bus refused
// before: the indexes of earlier purges, or a clear. A purge whose every
// retry the bus refused thus reaches the other instances with the next
// purge or clear that gets through; until then they may serve its pages.
func (b *Backend) publish(ctx context.Context, e Event) error {
	b.mu.Lock()
	failures, owedAll := b.failures, b.owedAll
	if owedAll {
		e = Event{Kind: EventClear}
	} else if e.Kind == EventPurge && len(b.owed) > 0 {
		seen := make(map[string]struct{}, len(e.Indexes)+len(b.owed))
		merged := make([]string, 0, len(e.Indexes)+len(b.owed))
		for _, ix := range e.Indexes {
			if _, ok := seen[ix]; !ok {
				seen[ix] = struct{}{}
				merged = append(merged, ix)
			}
		}
		for ix := range b.owed {
			if _, ok := seen[ix]; !ok {
				merged = append(merged, ix)
			}
		}
		e.Indexes = merged
	}
	b.mu.Unlock()

	err := b.bus.Publish(ctx, e)

	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.failures++
		if e.Kind == EventClear || len(b.owed)+len(e.Indexes) > maxOwed {
			b.owedAll, b.owed = true, nil
			return err
		}
		if b.owed == nil {
			b.owed = make(map[string]struct{}, len(e.Indexes))
		}
		for _, ix := range e.Indexes {
			b.owed[ix] = struct{}{}
		}
		return err
	}
	if b.failures == failures {
		// Nothing was refused meanwhile: all that was owed went out.
		b.owed, b.owedAll = nil, false
	}
	return nil
}
