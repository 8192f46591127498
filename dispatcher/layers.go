package dispatcher

import (
	"context"
)

// The policies around a lane are layers of two kinds. An admitter decides,
// per request, what the lane queues, before it is queued: escalation is
// one. An observer consumes how each batch ended, after it is counted and
// reported and before it settles: warm-up is one. A layer may also keep
// counters of its own for [BackendStats] (counter). A new policy is a new
// layer, given to the lanes it applies to by addLayers; the lane itself
// does not change.

// admitter is a layer that decides what a lane queues for a request.
type admitter interface {
	// admit returns it, or the item to queue instead, carrying it.tk. It
	// runs on the goroutine of Enqueue or Submit, for every request:
	// keep the common case cheap.
	admit(ctx context.Context, it item) item
}

// observer is a layer that consumes how a lane's batches ended.
type observer interface {
	// batchEnded is told that b ended as end says. It runs on a worker,
	// with no lock held, before b settles: by the time a Flush or a
	// Ticket sees b settled, every observer has run. It must not block.
	batchEnded(b *batch, end *batchEnd)
}

// counter is a layer with counters of its own in [BackendStats].
type counter interface {
	// count adds the layer's counters to s.
	count(s *BackendStats)
}

// addLayers gives each lane the layers the options name for its backend.
func (d *Dispatcher) addLayers() {
	for _, l := range d.lanes {
		w := d.cfg.warmers[l.name]
		if e, ok := d.cfg.escalations[l.name]; ok {
			pages := dropPages
			if w != nil {
				pages = keepPages
			}
			l.admitters = append(l.admitters, newEscalator(l.name, e, d.cfg.logger, pages))
		}
		if w != nil {
			l.observers = append(l.observers, &warmup{backend: l.name, warmer: w, logger: d.cfg.logger})
		}
	}
}
