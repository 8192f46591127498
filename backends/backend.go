package backends

import (
	"context"
)

// Backend purges objects from one cache: a CDN, a set of HTTP caches, or the
// application's own response cache. The dispatcher calls Purge from its own
// workers, after a transaction has committed; a Backend never sees the
// database.
//
// Implementations must be safe for concurrent use. Purge should honour ctx's
// deadline and classify its failures with [Permanent] or [RetryAfter]; any
// other error is treated as temporary and retried with backoff. When only
// some objects failed, it should name them with [Partial].
type Backend interface {
	// Name identifies the backend in logs, metrics and results, for example
	// "akamai" or "varnish". It should be stable and unique per dispatcher.
	Name() string
	// Limits says how large one call to Purge may be. The dispatcher cuts
	// batches to fit.
	Limits() Limits
	// Purge removes every object in r from the cache. r holds no more
	// objects or bytes than Limits allows. It returns what the cache said,
	// also on failure where known.
	Purge(ctx context.Context, r Request) (Result, error)
}

// Pacer is implemented by a Backend that paces its own calls, such as the
// Akamai backend with its client-side copy of Fast Purge's token buckets.
// The dispatcher calls Pace before each call to Purge, outside the
// attempt's timeout, so that waiting for a rate limit to refill never counts
// as a failed attempt. Code that calls Purge without a dispatcher should call
// Pace first in the same way.
type Pacer interface {
	// Pace waits until r may be sent and takes r's share of the rate
	// limit; the caller then calls Purge with r at once. It returns ctx's
	// error if ctx ends first; an error carrying [RetryAfter] when r cannot
	// be paced now (the dispatcher waits that long and asks again, without
	// counting an attempt); and any other error if r can never be sent
	// (the dispatcher fails the batch).
	Pace(ctx context.Context, r Request) error
}

// AllPacer is implemented by a [PurgeAller] whose purge of everything
// must wait its turn, as CloudFront's "/*" waits for room among the
// distribution's wildcard invalidations in progress. The dispatcher calls
// PaceAll before each call to PurgeAll, with [Pacer.Pace]'s contract: it
// returns ctx's error if ctx ends first; an error carrying [RetryAfter]
// when the purge cannot be paced now (the dispatcher waits that long and
// asks again, without counting an attempt); and any other error if it can
// never be sent. A PurgeAller that does not implement it paces PurgeAll
// itself, and each wait it returns as RetryAfter counts as an attempt.
type AllPacer interface {
	PaceAll(ctx context.Context) error
}

// PurgeAller is implemented by a Backend that can purge everything it
// caches for the site in one coarse operation: the Akamai backend purges
// the CP codes given to akamai.WithCPCodes, the local cache clears its
// store. The dispatcher uses it when a handoff is escalated to a purge of
// everything (see dispatcher.WithEscalation). Code outside a dispatcher may
// call it too, for an operator's "purge everything" button.
type PurgeAller interface {
	Backend
	// CanPurgeAll returns nil when PurgeAll can work with the backend's
	// configuration, or an error saying which setting it needs. The
	// dispatcher checks it at New.
	CanPurgeAll() error
	// PurgeAll purges everything the backend caches for the site. It
	// classifies its failures as Purge does.
	PurgeAll(ctx context.Context) (Result, error)
}

// TagPurger is implemented by a Backend that can tell whether it purges cache tags with its configuration.
// The HTTP cache backend does not with httppurge.NoTags, for caches that
// know no tags (nginx, Squid): it skips the tags of a request. The
// dispatcher checks it at New for dispatcher.WithEscalation with Tags,
// which would otherwise replace a handoff's URLs by tags that are never
// purged. A Backend that does not implement TagPurger is assumed to purge
// tags.
type TagPurger interface {
	Backend
	// CanPurgeTags returns nil when Purge acts on tags, or an error saying which setting it needs.
	CanPurgeTags() error
}

// Closer is implemented by a Backend that holds goroutines or connections
// (httppurge's Backend, akamai's Backend). Close releases them: it stops
// the backend's goroutines and waits for them within ctx, returns ctx's
// cause if ctx ends first, and may be called more than once.
//
// (*dispatcher.Dispatcher).Close closes every backend it was given that
// implements Closer, once it has drained its queues: do not close them
// yourself before the dispatcher. A backend used without a dispatcher is
// closed by its owner.
type Closer interface {
	Close(ctx context.Context) error
}

// Limits describes the largest request a Backend accepts in one call. A zero
// field means no limit of that kind.
type Limits struct {
	// MaxObjects is the most URLs plus tags in one call.
	MaxObjects int
	// MaxURLs is the most URLs in one call.
	MaxURLs int
	// MaxTags is the most tags in one call.
	MaxTags int
	// OneKind, when true, means a call holds URLs or tags, never both:
	// the backend sends them to different endpoints, such as Akamai's
	// /url and /tag.
	OneKind bool
	// MaxBytes is the most bytes of object text in one call, counted by the
	// backend's own Size function when it has one, else as the sum of the
	// lengths of the URLs and tags plus 3 bytes of framing each.
	MaxBytes int
	// Size, when not nil, returns the exact encoded size of r for this
	// backend (for Akamai, the JSON body). The dispatcher uses it to check
	// MaxBytes.
	Size func(r Request) int `json:"-"`
}

// Fits reports whether r respects l.
func (l Limits) Fits(r Request) bool {
	if l.MaxObjects > 0 && r.Len() > l.MaxObjects {
		return false
	}
	if l.MaxURLs > 0 && len(r.URLs) > l.MaxURLs {
		return false
	}
	if l.MaxTags > 0 && len(r.Tags) > l.MaxTags {
		return false
	}
	if l.OneKind && len(r.URLs) > 0 && len(r.Tags) > 0 {
		return false
	}
	if l.MaxBytes > 0 && l.SizeOf(r) > l.MaxBytes {
		return false
	}
	return true
}

// SizeOf returns the size of r as l counts it: l.Size(r) when set, else the
// sum of the lengths of r's URLs and tags plus 3 bytes each.
func (l Limits) SizeOf(r Request) int {
	if l.Size != nil {
		return l.Size(r)
	}
	n := 0
	for _, s := range r.URLs {
		n += len(s) + 3
	}
	for _, s := range r.Tags {
		n += len(s) + 3
	}
	return n
}

// Result is what a backend reports about one call to Purge.
type Result struct {
	// Backend is the Name of the backend that produced the result.
	Backend string `json:"backend"`
	// Objects is the number of URLs plus tags in the call.
	Objects int `json:"objects"`
	// IDs holds identifiers the cache returned, by name: for Akamai
	// "purgeId" and "supportId"; for HTTP caches the node that answered.
	IDs map[string]string `json:"ids,omitempty"`
	// Detail is a short human-readable outcome, such as "Request accepted".
	Detail string `json:"detail,omitempty"`
}

// BackendFunc is the signature of [Backend.Purge]: the function that
// [Func] turns into a Backend with a name and no limits. Use them for tests
// and small custom integrations.
type BackendFunc func(ctx context.Context, r Request) (Result, error)

// Func returns a Backend named name that calls fn. It is shorthand for a
// Backend with no Limits.
func Func(name string, fn BackendFunc) Backend { return funcBackend{name: name, fn: fn} }

type funcBackend struct {
	name string
	fn   BackendFunc
}

func (b funcBackend) Name() string   { return b.name }
func (b funcBackend) Limits() Limits { return Limits{} }
func (b funcBackend) Purge(ctx context.Context, r Request) (Result, error) {
	return b.fn(ctx, r)
}
