package observe

import (
	"context"
	"time"
)

// Observer receives what the components report. See the package
// documentation for when each method is called. Embed [Nop] to implement
// only some of them.
type Observer interface {
	// Watch registers s, read each time the observer collects, until the
	// returned function is called. Components call it when they are built
	// with the observer, and call the function when they are closed.
	Watch(s Source) (stop func())

	// StartHandoff is called when the plugin hands a committed
	// transaction's request to its Sink (or writes it into the
	// transaction, for the outbox). ctx is the transaction's context. It
	// returns the context to hand off with, for example with a span of
	// its own; the W3C traceparent that the request's deliveries link to,
	// "" for none; and a function the plugin calls once with how the
	// handoff ended.
	StartHandoff(ctx context.Context, h Handoff) (context.Context, string, func(HandoffEnd))

	// StartAttempt is called before each call to a backend; the
	// dispatcher makes the call with the context it returns and calls the
	// returned function once with how the call ended.
	StartAttempt(ctx context.Context, a Attempt) (context.Context, func(AttemptEnd))

	// Settled is called once per handoff and backend, when every object
	// of the handoff has ended in that backend: the commit-to-purge
	// latency is s.At.Sub(s.Origin.Committed). A handoff is a request the
	// dispatcher is given: an outbox row counts each time a relay submits
	// it (a retried row again, to the backends still owed), and a
	// transaction whose request took several rows counts once per row.
	Settled(s Settled)
}

// Nop is an Observer that does nothing. Embed it in an Observer of yours
// to implement only the methods you need.
type Nop struct{}

var _ Observer = Nop{}

// Watch does nothing.
func (Nop) Watch(Source) func() { return func() {} }

// StartHandoff returns ctx and no traceparent.
func (Nop) StartHandoff(ctx context.Context, _ Handoff) (context.Context, string, func(HandoffEnd)) {
	return ctx, "", func(HandoffEnd) {}
}

// StartAttempt returns ctx.
func (Nop) StartAttempt(ctx context.Context, _ Attempt) (context.Context, func(AttemptEnd)) {
	return ctx, func(AttemptEnd) {}
}

// Settled does nothing.
func (Nop) Settled(Settled) {}

// Origin is where a purge request came from: the handoff of a committed
// transaction.
type Origin struct {
	// Committed is when the transaction committed. For a request written
	// into the transaction (the outbox), it is when the row was written,
	// just before the commit.
	Committed time.Time
	// TraceParent is the W3C traceparent of the handoff's span
	// ("00-{trace id}-{span id}-{flags}"), "" when it was not traced.
	TraceParent string
}

type originKey struct{}

// ContextWithOrigin returns a copy of ctx that carries o. The plugin gives
// its Sink such a context; a relay does the same for each row it submits.
func ContextWithOrigin(ctx context.Context, o Origin) context.Context {
	return context.WithValue(ctx, originKey{}, o)
}

// OriginFromContext returns the Origin ctx carries, and whether it carries
// one.
func OriginFromContext(ctx context.Context) (Origin, bool) {
	if ctx == nil {
		return Origin{}, false
	}
	o, ok := ctx.Value(originKey{}).(Origin)
	return o, ok
}

// Handoff describes a request the plugin hands off.
type Handoff struct {
	// URLs and Tags are the request's objects. Put them on spans only:
	// they are not low-cardinality attributes.
	URLs, Tags []string
	// InTx is set when the request is written inside the transaction,
	// before it commits (a gormpurge.TxSink, such as the outbox).
	InTx bool
}

// Outcomes of a handoff, reported in [HandoffEnd] and as the outcome
// attribute of [Handoffs].
const (
	HandedOff     = "handed_off" // the Sink accepted the request after the commit
	Written       = "written"    // the request was committed with the data, inside the transaction
	Suspended     = "suspended"  // the request joined a suspension (gormpurge.Plugin.Suspend)
	HandoffFailed = "failed"     // the Sink refused the request: it is reported, and lost unless the Sink keeps it
	Aborted       = "aborted"    // the transaction did not commit: there was nothing to purge
)

// HandoffEnd is how a handoff ended.
type HandoffEnd struct {
	// Outcome is [HandedOff], [Written], [Suspended], [HandoffFailed] or
	// [Aborted].
	Outcome string
	// Err is the Sink's error for HandoffFailed, the commit's for Aborted, else
	// nil.
	Err error
}

// Attempt describes one call to a backend.
type Attempt struct {
	// Backend is the backend's name.
	Backend string
	// Number counts the calls made for the batch, from 1.
	Number int
	// URLs and Tags are the batch's objects; put them on spans only.
	URLs, Tags []string
	// All is set for a purge of everything the backend caches.
	All bool
	// Origins are the handoffs whose objects the batch carries, one per
	// handoff, oldest first. Batches merge many handoffs.
	Origins []Origin
}

// Error classes, the error class attribute (OpenTelemetry's error.type) of a failed call: low
// cardinality, for alerting.
const (
	ClassPermanent   = "permanent"    // the backend refused the batch for good (backends.Permanent)
	ClassRateLimited = "rate_limited" // the backend asked to come back later (backends.RetryAfter)
	ClassTimeout     = "timeout"      // the call ran out of time
	ClassCanceled    = "canceled"     // the dispatcher stopped
	ClassPartial     = "partial"      // some objects failed, the error names them (backends.Partial)
	ClassTransient   = "transient"    // any other error: retried
	ClassOther       = "_OTHER"       // an AttemptEnd with an error and no Class: what exporters record, as OpenTelemetry's conventions say
)

// AttemptEnd is how a call to a backend ended.
type AttemptEnd struct {
	// Err is nil when the backend accepted the batch.
	Err error
	// Class is one of the Class constants when Err is not nil, else "".
	Class string
	// Retry is set when another call will follow.
	Retry bool
	// IDs are the identifiers the backend returned (purge ids, Varnish
	// instances): for spans only.
	IDs map[string]string
	// Duration is how long the call took.
	Duration time.Duration
}

// Outcomes of objects and handoffs in a backend, as reported in
// [Settled] and as the outcome attribute of [Objects].
const (
	Delivered = "delivered" // the backend acknowledged the purge
	Failed    = "failed"    // the purge failed for good
	Dropped   = "dropped"   // the purge never reached the backend: queue full, or closed first

	// Coalesced and Retried are outcomes of [Objects] only: merged with a
	// duplicate of the same batch window, and held by a call that failed
	// and was retried (counted once per retry; the object ends later as
	// one of the others).
	Coalesced = "coalesced"
	Retried   = "retried"
)

// Settled is how a handoff ended in one backend.
type Settled struct {
	// Backend is the backend's name.
	Backend string
	// Origin is the handoff's.
	Origin Origin
	// Outcome is [Delivered] when every batch carrying the handoff's
	// objects was delivered, else [Failed] or [Dropped].
	Outcome string
	// At is when the last of those batches ended.
	At time.Time
}
