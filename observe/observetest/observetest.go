// Package observetest helps test the components that report to an
// [observe.Observer]: a Recorder that keeps everything it is told, so a test
// can assert what a component reported, and reads the figures of the
// Sources it watches as exporters do.
package observetest

import (
	"context"
	"slices"
	"sync"

	"github.com/gormpurge/gormpurge/observe"
)

// PanicValue is what a Recorder with Panic set panics with.
const PanicValue = "observetest: observer panics"

// Recorder is an [observe.Observer] that records what it is told: the
// Sources it watches, the handoffs, the attempts and the settled handoffs.
// Its accessors return copies, in the order the calls were made. The zero
// value is ready to use; a Recorder is safe for concurrent use. Set its
// fields before use.
type Recorder struct {
	// TraceParent is the traceparent StartHandoff returns; "" for none.
	TraceParent string

	// Panic, when set, makes StartHandoff, StartAttempt and Settled panic
	// with PanicValue before they record anything, to test that an
	// observer that panics never fails a component's work. Watch does not
	// panic: components call it when they are built.
	Panic bool

	sources  observe.Sources
	mu       sync.Mutex
	watched  []watched
	nextID   uint64
	stops    int
	handoffs []Handoff
	attempts []Attempt
	settled  []observe.Settled
}

var _ observe.Observer = (*Recorder)(nil)

type watched struct {
	id  uint64
	src observe.Source
}

// Handoff is a handoff a Recorder was told of.
type Handoff struct {
	// Parent is the context StartHandoff was called with: the
	// transaction's.
	Parent context.Context
	// Handoff is what StartHandoff was told.
	Handoff observe.Handoff
	// End is how the handoff ended; nil until its end function is called.
	End *observe.HandoffEnd
}

// Attempt is a call to a backend a Recorder was told of.
type Attempt struct {
	// Attempt is what StartAttempt was told.
	Attempt observe.Attempt
	// End is how the call ended; nil until its end function is called.
	End *observe.AttemptEnd
}

type handoffKey struct{ r *Recorder }

type attemptKey struct{ r *Recorder }

// Watch adds s to the Sources that Figures and Value read, until the
// returned function is called. Each call of a returned function counts as
// a stop (see Stops), a repeated one too; only the first removes s. A nil
// s is counted by neither Sources nor Figures.
func (r *Recorder) Watch(s observe.Source) (stop func()) {
	unwatch := r.sources.Watch(s)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nextID++
	id := r.nextID
	if s != nil {
		r.watched = append(r.watched, watched{id: id, src: s})
	}
	return func() {
		unwatch()
		r.mu.Lock()
		defer r.mu.Unlock()
		r.stops++
		r.watched = slices.DeleteFunc(r.watched, func(w watched) bool { return w.id == id })
	}
}

// Sources returns the number of Sources watched now: added with Watch and
// not yet stopped.
func (r *Recorder) Sources() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.watched)
}

// Watched returns the Sources watched now, in the order they were added.
// Use it to call a Source directly, for example with a context that has
// ended, which Figures would not call it with.
func (r *Recorder) Watched() []observe.Source {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]observe.Source, len(r.watched))
	for i, w := range r.watched {
		out[i] = w.src
	}
	return out
}

// Stops returns how many times a function Watch returned was called.
func (r *Recorder) Stops() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stops
}

// Figures reads the Sources watched now and adds their readings up as
// exporters do, with [observe.Sources.Read]: ordered by metric, then
// attributes. It reads none once ctx has ended.
func (r *Recorder) Figures(ctx context.Context) []observe.Figure {
	return r.sources.Read(ctx)
}

// Value reads the Sources watched now, as Figures does, and returns the
// value of the figure of metric with the attributes backend and outcome
// ("" for those metric's Info does not name), and whether there is one.
func (r *Recorder) Value(metric observe.Metric, backend, outcome string) (float64, bool) {
	want := observe.Series{Metric: metric, Backend: backend, Outcome: outcome}
	for _, f := range r.Figures(context.Background()) {
		if f.Series == want {
			return f.Value, true
		}
	}
	return 0, false
}

// StartHandoff records ctx and h, and returns a context carrying the
// handoff's index in Handoffs (see HandoffFrom), TraceParent, and a
// function that records how the handoff ended.
func (r *Recorder) StartHandoff(ctx context.Context, h observe.Handoff) (context.Context, string, func(observe.HandoffEnd)) {
	if r.Panic {
		panic(PanicValue)
	}
	h.URLs, h.Tags = slices.Clone(h.URLs), slices.Clone(h.Tags)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.handoffs = append(r.handoffs, Handoff{Parent: ctx, Handoff: h})
	i := len(r.handoffs) - 1
	return context.WithValue(ctx, handoffKey{r}, i), r.TraceParent, func(e observe.HandoffEnd) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.handoffs[i].End = &e
	}
}

// HandoffFrom returns the index in Handoffs of the handoff whose
// StartHandoff returned ctx, or a context derived from it, and whether ctx
// is one.
func (r *Recorder) HandoffFrom(ctx context.Context) (int, bool) {
	i, ok := ctx.Value(handoffKey{r}).(int)
	return i, ok
}

// Handoffs returns the handoffs recorded so far.
func (r *Recorder) Handoffs() []Handoff {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.handoffs)
	for i := range out {
		if e := out[i].End; e != nil {
			c := *e
			out[i].End = &c
		}
	}
	return out
}

// StartAttempt records a, and returns a context carrying its Number (see
// AttemptFrom) and a function that records how the call ended.
func (r *Recorder) StartAttempt(ctx context.Context, a observe.Attempt) (context.Context, func(observe.AttemptEnd)) {
	if r.Panic {
		panic(PanicValue)
	}
	a.URLs, a.Tags, a.Origins = slices.Clone(a.URLs), slices.Clone(a.Tags), slices.Clone(a.Origins)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts = append(r.attempts, Attempt{Attempt: a})
	i := len(r.attempts) - 1
	return context.WithValue(ctx, attemptKey{r}, a.Number), func(e observe.AttemptEnd) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.attempts[i].End = &e
	}
}

// AttemptFrom returns the Number of the attempt whose StartAttempt returned
// ctx, or a context derived from it, and whether ctx is one: the context a
// backend was called with.
func (r *Recorder) AttemptFrom(ctx context.Context) (int, bool) {
	n, ok := ctx.Value(attemptKey{r}).(int)
	return n, ok
}

// Attempts returns the attempts recorded so far.
func (r *Recorder) Attempts() []Attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.attempts)
	for i := range out {
		if e := out[i].End; e != nil {
			c := *e
			out[i].End = &c
		}
	}
	return out
}

// Settled records s.
func (r *Recorder) Settled(s observe.Settled) {
	if r.Panic {
		panic(PanicValue)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.settled = append(r.settled, s)
}

// Settlements returns what Settled was called with so far.
func (r *Recorder) Settlements() []observe.Settled {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.settled)
}
