package localcache

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/gormpurge/gormpurge/internal/nilcheck"
	"github.com/gormpurge/gormpurge/observe"
)

// Outcomes of a request, the outcome attribute of [observe.CacheRequests].
const (
	// OutcomeHit is a request answered without the handler: from the
	// store, or with the page a concurrent miss of it rendered (see
	// [Middleware] on collapsed misses). A 304 Not Modified from the cache
	// is a hit too.
	OutcomeHit = "hit"
	// OutcomeMiss is a request the cache could have answered but the
	// handler rendered, whether or not its response was then stored.
	OutcomeMiss = "miss"
	// OutcomeBypass is a request the cache may not answer: a method other
	// than GET and HEAD, a personal request (Authorization or a session
	// cookie, see [WithSessionCookies]), or one a [WithKeyFunc] function
	// gave the key "".
	OutcomeBypass = "bypass"
)

// WithObserver makes the middleware report to o what it does, read each
// time o collects: [observe.CacheRequests] by outcome ([OutcomeHit],
// [OutcomeMiss], [OutcomeBypass]), [observe.CacheStores] for the pages it
// stored (a Vary record is not a page), and, when its Store is a
// [StatsReporter] such as [MemoryStore], the store's
// [observe.CacheEntries] and [observe.CacheEvictions].
//
// Each Middleware (each call of Middleware or NewMiddleware) registers one
// [observe.Source] with o.Watch and keeps its own counters, which readers
// add up across Middlewares. A Middleware has no Close: it reports for as
// long as o collects, so give WithObserver to Middlewares built once, when
// the program starts, not to ones built per request.
//
// Several Middlewares on one Store each report the store's figures, with
// the store as their [observe.Reading.Owner]: an observer counts them once
// (see [observe.Sources]).
//
// Requests cost an atomic add each with WithObserver, nothing without: o
// itself is called only once, by NewMiddleware (Watch), and the Source
// when o collects. A nil o is an error.
func WithObserver(o observe.Observer) Option {
	return func(c *config) {
		if nilcheck.IsNil(o) {
			c.errs = append(c.errs, fmt.Errorf("WithObserver(%s): pass an observe.Observer, such as one of contrib/otelpurge or contrib/prompurge, or leave the option out", nilName(o)))
			return
		}
		c.observer = o
	}
}

// nilName shows o as a nil WithObserver argument: "nil", or "(*T)(nil)".
func nilName(o observe.Observer) string {
	if o == nil {
		return "nil"
	}
	return fmt.Sprintf("(%T)(nil)", o)
}

// StoreStats is a snapshot of a store's figures.
type StoreStats struct {
	// Entries is the number of entries held, Vary records and expired
	// entries not yet removed included.
	Entries int
	// Bytes is the memory the entries take, as the store counts it
	// ([WithMaxBytes] for a MemoryStore).
	Bytes int64
	// Evictions counts the entries the store removed to make room for
	// others since it was made: not those purged, cleared or expired.
	Evictions uint64
}

// StatsReporter is a [Store] that reports its figures: a Middleware
// [WithObserver] reads them each time its observer collects, so
// StoreStats must be quick. [MemoryStore] is one.
type StatsReporter interface {
	StoreStats() StoreStats
}

// counters are a Middleware's figures. A Middleware without an observer
// has none: a nil *counters counts nothing.
type counters struct {
	hits, misses, bypasses, stores atomic.Uint64
}

func (c *counters) hit() {
	if c != nil {
		c.hits.Add(1)
	}
}

func (c *counters) miss() {
	if c != nil {
		c.misses.Add(1)
	}
}

func (c *counters) bypass() {
	if c != nil {
		c.bypasses.Add(1)
	}
}

func (c *counters) stored() {
	if c != nil {
		c.stores.Add(1)
	}
}

// source returns the observe.Source that reads c, and the figures of store
// when it is a StatsReporter.
func (c *counters) source(store Store) observe.Source {
	sr, _ := store.(StatsReporter)
	return func(_ context.Context, add func(observe.Reading)) {
		add(observe.Reading{Metric: observe.CacheRequests, Outcome: OutcomeHit, Value: float64(c.hits.Load())})
		add(observe.Reading{Metric: observe.CacheRequests, Outcome: OutcomeMiss, Value: float64(c.misses.Load())})
		add(observe.Reading{Metric: observe.CacheRequests, Outcome: OutcomeBypass, Value: float64(c.bypasses.Load())})
		add(observe.Reading{Metric: observe.CacheStores, Value: float64(c.stores.Load())})
		if sr == nil {
			return
		}
		st := sr.StoreStats()
		add(observe.Reading{Metric: observe.CacheEntries, Value: float64(st.Entries), Owner: sr})
		add(observe.Reading{Metric: observe.CacheEvictions, Value: float64(st.Evictions), Owner: sr})
	}
}

var _ StatsReporter = (*MemoryStore)(nil)
