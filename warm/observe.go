package warm

import (
	"context"

	"github.com/gormpurge/gormpurge/internal/nilcheck"
	"github.com/gormpurge/gormpurge/observe"
)

// Outcomes of a URL, the outcome attribute of [observe.Warmed].
const (
	OutcomeFetched = "fetched" // fetched with a 2xx answer: [Stats.Fetched]
	OutcomeFailed  = "failed"  // invalid, refused, unanswered or another status: [Stats.Failed], refused URLs included
	OutcomeDropped = "dropped" // enqueued and never fetched: [Stats.Dropped]
)

// WithObserver makes the Warmer report its [Stats] to o, read each time o
// collects: [observe.Warmed] by outcome ([OutcomeFetched],
// [OutcomeFailed], [OutcomeDropped]; the URLs refused by the host policy
// are among the failed ones) and [observe.WarmQueued], the URLs waiting in
// Enqueue's queue. [New] registers the figures with o.Watch, and
// [Warmer.Close] removes them once the background fetches have ended. A
// nil o is an error.
func WithObserver(o observe.Observer) Option {
	return func(c *config) {
		switch {
		case o == nil:
			c.fail("WithObserver(nil): pass an observe.Observer, such as one of contrib/otelpurge or contrib/prompurge, or leave the option out")
			return
		case nilcheck.IsNil(o):
			c.fail("WithObserver((%T)(nil)): the Observer is a nil %T: pass an observe.Observer, or leave the option out", o, o)
			return
		}
		c.observer = o
	}
}

// source reads w's Stats for an observer.
func (w *Warmer) source(_ context.Context, add func(observe.Reading)) {
	s := w.Stats()
	add(observe.Reading{Metric: observe.Warmed, Outcome: OutcomeFetched, Value: float64(s.Fetched)})
	add(observe.Reading{Metric: observe.Warmed, Outcome: OutcomeFailed, Value: float64(s.Failed)})
	add(observe.Reading{Metric: observe.Warmed, Outcome: OutcomeDropped, Value: float64(s.Dropped)})
	add(observe.Reading{Metric: observe.WarmQueued, Value: float64(s.Queued)})
}
