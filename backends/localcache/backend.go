package localcache

import (
	"context"
	"errors"
	"fmt"

	"github.com/gormpurge/gormpurge/backends"
)

// BackendName is the Name of a [Backend].
const BackendName = "localcache"

// Backend purges a [Store] filled by [Middleware]. Give it to the
// dispatcher with the other backends. It is safe for concurrent use.
type Backend struct {
	store Store
}

var (
	_ backends.Backend    = (*Backend)(nil)
	_ backends.PurgeAller = (*Backend)(nil)
)

// NewBackend returns a Backend that purges store, the Store given to
// [Middleware]. It returns an error if store is nil, or a nil pointer (or
// other nil value) of a type that implements Store, such as
// (*MemoryStore)(nil).
func NewBackend(store Store) (*Backend, error) {
	if err := storeProblem("NewBackend", store, passTheStore); err != nil {
		return nil, fmt.Errorf("localcache: %w", err)
	}
	return &Backend{store: store}, nil
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
	return res, backends.Partial(refused, backends.Permanent(errors.Join(bad...)))
}

// CanPurgeAll returns nil: a [Store] can always be cleared.
func (b *Backend) CanPurgeAll() error { return nil }

// PurgeAll empties the store with [Store.Clear], for a dispatcher's
// escalation to a purge of everything or an operator's "purge everything"
// button. Result.Detail says how many entries were removed. When ctx has
// ended, PurgeAll clears nothing and returns an error wrapping ctx's.
func (b *Backend) PurgeAll(ctx context.Context) (backends.Result, error) {
	if err := ctx.Err(); err != nil {
		return backends.Result{Backend: BackendName}, fmt.Errorf("localcache: clear: %w", err)
	}
	n, err := b.store.Clear(ctx)
	res := backends.Result{Backend: BackendName, Detail: fmt.Sprintf("removed %d entries", n)}
	if err != nil {
		return res, fmt.Errorf("localcache: clear: %w", err)
	}
	return res, nil
}
