package dispatcher

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/observe"
)

// With an Observer ([WithObserver]), every handoff (a call to Enqueue or
// Submit) carries its origin (observe.Origin) into each lane's queue. A
// group follows its handoffs through its batches (originTrack): each call
// to the backend is reported with the origins of the handoffs its batch
// holds, and a handoff settles in a lane, for the commit-to-purge latency,
// when the last batch holding its objects ends. Without an Observer none of
// this is done: items carry no origin and groups no track.

// originOf returns the origin of a handoff made with ctx: the one ctx
// carries (the plugin's, or a relay's from an outbox row), or, when it
// carries none, one committed now. It returns nil without an Observer.
func (d *Dispatcher) originOf(ctx context.Context) *observe.Origin {
	if d.cfg.obs == nil {
		return nil
	}
	o, _ := observe.OriginFromContext(ctx)
	if o.Committed.IsZero() {
		o.Committed = time.Now()
	}
	return &o
}

// originTrack follows a group's handoffs through its batches.
type originTrack struct {
	mu       sync.Mutex
	handoffs []trackedHandoff // a batch's held indexes point here; never resized after take
}

// trackedHandoff is one handoff of a group: its origin, its objects as the
// lane queued them, how many of the batches holding them have not ended,
// and the worst end so far.
type trackedHandoff struct {
	org   *observe.Origin
	req   backends.Request
	open  int
	worst Outcome // 0 until a batch ends
}

// trackOrigins gives g, cut into bs from items, the handoffs of its items,
// and each batch the handoffs whose objects it holds. It runs in take,
// before the batches reach the workers.
func (l *lane) trackOrigins(g *group, items []item, bs []*batch) {
	if l.d.cfg.obs == nil || len(bs) == 0 {
		return
	}
	t := &originTrack{handoffs: make([]trackedHandoff, 0, len(items))}
	var in []int // the batches holding the current item's objects
	for _, it := range items {
		if it.org == nil {
			continue
		}
		in = in[:0]
		if len(bs) == 1 {
			in = append(in, 0)
		} else {
			for k := range keys(it.req) {
				if i := batchOf(bs, k); i >= 0 && !slices.Contains(in, i) {
					in = append(in, i)
				}
			}
		}
		if len(in) == 0 {
			continue // not reachable: every queued object is in a batch
		}
		h := len(t.handoffs)
		t.handoffs = append(t.handoffs, trackedHandoff{org: it.org, req: it.req, open: len(in)})
		for _, i := range in {
			bs[i].held = append(bs[i].held, h)
		}
	}
	g.origins = t
}

// batchOf returns the index in bs of the batch holding k, or -1. bs are
// the batches cutBatches made of a normalised request: runs of its sorted
// URLs, then of its sorted tags, in order, then the objects too big for
// any batch, one per batch.
func batchOf(bs []*batch, k objKey) int {
	before := func(a, b objKey) bool { // URLs sort before tags
		if a.tag != b.tag {
			return !a.tag
		}
		return a.s < b.s
	}
	last := func(b *batch) objKey {
		if n := len(b.req.Tags); n > 0 {
			return objKey{tag: true, s: b.req.Tags[n-1]}
		}
		return objKey{s: b.req.URLs[len(b.req.URLs)-1]}
	}
	runs := len(bs)
	for runs > 0 && bs[runs-1].err != nil {
		runs-- // the objects too big come last, out of order
	}
	i := sort.Search(runs, func(i int) bool { return !before(last(bs[i]), k) })
	if runs == len(bs) && i < runs {
		return i // every object is in a run: no need to look inside
	}
	if i < runs && holds(bs[i], k) {
		return i
	}
	for i := runs; i < len(bs); i++ {
		if holds(bs[i], k) {
			return i
		}
	}
	return -1
}

// holds reports whether b's request names k.
func holds(b *batch, k objKey) bool {
	list := b.req.URLs
	if k.tag {
		list = b.req.Tags
	}
	_, ok := slices.BinarySearch(list, k.s)
	return ok
}

// origins returns the origins of the handoffs b holds, for the Observer.
func (b *batch) origins() []observe.Origin {
	t := b.g.origins
	if t == nil {
		return nil
	}
	out := make([]observe.Origin, len(b.held))
	for i, h := range b.held {
		out[i] = *t.handoffs[h].org // set in take, read-only since
	}
	return out
}

// endOrigins records that b ended as end says (nil: abandoned, Dropped),
// and settles each handoff whose last batch b was. When b failed in part
// (backends.Partial), a handoff fails only if one of its own objects in b
// did.
func (l *lane) endOrigins(b *batch, end *batchEnd) {
	t := b.g.origins
	if t == nil || len(b.held) == 0 {
		return
	}
	type ended struct {
		org *observe.Origin
		o   Outcome
	}
	var done []ended
	t.mu.Lock()
	for _, i := range b.held {
		h := &t.handoffs[i]
		o := Dropped
		if end != nil {
			o = end.outcome
			if o == Failed && end.partial && !failsIn(b, end, h.req) {
				o = Delivered
			}
		}
		h.open--
		if h.worst == 0 || severity(o) > severity(h.worst) {
			h.worst = o
		}
		if h.open == 0 {
			done = append(done, ended{h.org, h.worst})
		}
	}
	t.mu.Unlock()
	at := time.Now()
	for _, e := range done {
		l.d.settled(l.name, e.org, e.o, at)
	}
}

// failsIn reports whether one of r's objects that b holds failed, b
// having failed as end says.
func failsIn(b *batch, end *batchEnd, r backends.Request) bool {
	for k := range keys(r) {
		if holds(b, k) && end.fails(k) {
			return true
		}
	}
	return false
}

// settleOrigin settles org, a handoff's origin (nil without an Observer),
// as o now: for a handoff dropped before it was queued or batched.
func (l *lane) settleOrigin(org *observe.Origin, o Outcome) {
	if org != nil {
		l.d.settled(l.name, org, o, time.Now())
	}
}

// settled tells the Observer that the handoff of org ended as o in backend.
func (d *Dispatcher) settled(backend string, org *observe.Origin, o Outcome, at time.Time) {
	defer d.recoverObserver(backend)
	d.cfg.obs.Settled(observe.Settled{Backend: backend, Origin: *org, Outcome: o.String(), At: at})
}

// observe runs fn, a call to the Observer; a panic in it is logged, never
// allowed to kill a worker or fail a handoff.
func (d *Dispatcher) observe(backend string, fn func()) {
	defer d.recoverObserver(backend)
	fn()
}

// recoverObserver, deferred around a call to the Observer, logs its panic
// instead of letting it kill a worker or fail a handoff.
func (d *Dispatcher) recoverObserver(backend string) {
	if v := recover(); v != nil {
		d.cfg.logger.LogAttrs(context.Background(), slog.LevelError, "dispatcher: Observer panicked",
			slog.String("backend", backend), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
	}
}

// attemptObs is one call to a backend as the Observer follows it; nil
// without an Observer, and then its methods do nothing.
type attemptObs struct {
	d     *Dispatcher
	name  string
	begun time.Time
	end   func(observe.AttemptEnd)
}

// startAttempt tells the Observer that call n for b, which holds the
// handoffs of origins, begins, and returns the context to make it with.
func (l *lane) startAttempt(ctx context.Context, b *batch, n int, origins []observe.Origin) (context.Context, *attemptObs) {
	obs := l.d.cfg.obs
	if obs == nil {
		return ctx, nil
	}
	a := &attemptObs{d: l.d, name: l.name, end: func(observe.AttemptEnd) {}}
	l.d.observe(l.name, func() {
		actx, end := obs.StartAttempt(ctx, observe.Attempt{
			Backend: l.name, Number: n, URLs: b.req.URLs, Tags: b.req.Tags, All: b.all, Origins: origins,
		})
		if actx != nil && end != nil {
			ctx, a.end = actx, end
		}
	})
	a.begun = time.Now()
	return ctx, a
}

// ended tells the Observer how the call ended: with res and err, and
// whether another call follows. ctx is the lane's.
func (a *attemptObs) ended(ctx context.Context, res backends.Result, err error, retry bool) {
	if a == nil {
		return
	}
	e := observe.AttemptEnd{Err: err, Retry: retry, IDs: res.IDs, Duration: time.Since(a.begun)}
	if err != nil {
		e.Class = errorClass(ctx, err)
	}
	a.d.observe(a.name, func() { a.end(e) })
}

// errorClass returns the class of err, the error of a call made within
// ctx, the lane's.
func errorClass(ctx context.Context, err error) string {
	if _, partial := backends.FailedObjects(err); partial {
		return observe.ClassPartial
	}
	_, later := backends.RetryDelay(err)
	switch {
	case ctx.Err() != nil:
		return observe.ClassCanceled
	case backends.IsPermanent(err):
		return observe.ClassPermanent
	case later:
		return observe.ClassRateLimited
	case errors.Is(err, context.DeadlineExceeded):
		return observe.ClassTimeout
	default:
		return observe.ClassTransient
	}
}

// readings is the dispatcher's observe.Source: every backend's counters
// and gauges.
func (d *Dispatcher) readings(_ context.Context, add func(observe.Reading)) {
	for _, s := range d.Stats().Backends {
		b := s.Backend
		for _, r := range []observe.Reading{
			{Metric: observe.Objects, Outcome: observe.Delivered, Value: float64(s.Delivered)},
			{Metric: observe.Objects, Outcome: observe.Failed, Value: float64(s.Failed)},
			{Metric: observe.Objects, Outcome: observe.Dropped, Value: float64(s.Dropped)},
			{Metric: observe.Objects, Outcome: observe.Coalesced, Value: float64(s.Coalesced)},
			{Metric: observe.Objects, Outcome: observe.Retried, Value: float64(s.RetriedObjects)},
			{Metric: observe.Retries, Value: float64(s.Retried)},
			{Metric: observe.Escalations, Value: float64(s.Escalated)},
			{Metric: observe.QueueDepth, Value: float64(s.Queued)},
			{Metric: observe.InFlight, Value: float64(s.InFlight)},
		} {
			r.Backend = b
			add(r)
		}
	}
}
