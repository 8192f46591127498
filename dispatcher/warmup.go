package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/internal/nilcheck"
)

// Warmer re-fetches pages after a backend purged them, so that the first
// visitor finds them cached. *warm.Warmer (package
// github.com/gormpurge/gormpurge/warm) implements it. Give one to
// [WithWarmup].
//
// Enqueue must be safe for concurrent use: every worker of the backend
// calls it (see [WithWorkers]), and so do those of every other backend
// given the same Warmer. It must not block: the worker that calls it
// delivers nothing else meanwhile.
type Warmer interface {
	// Enqueue queues urls to be fetched later, and returns without
	// waiting for them. urls may share memory with the Report of the
	// batch: keep it, but do not modify it.
	Enqueue(urls ...string)
}

// WithWarmup makes the dispatcher hand w the URLs of every batch that the
// backend named backend delivered, so that w fetches them again: all of a
// delivered batch's URLs, those not named as failed of a batch that failed
// in part ([backends.Partial]), and none of a batch that failed or was
// dropped. For an escalated handoff (see [WithEscalation]), w gets the URLs
// the handoff named once the purge that replaced them is delivered, but at
// most [Escalation.Above] of them (the first in sorted order): Above is
// what you set as a fair number of URLs for one handoff, and a bulk change
// that escalated should not become as many page fetches. The handoffs
// merged with it that were not escalated are warmed in full. Tags are
// never handed over. w is called from the backend's workers, after the
// [WithOnResult] hook and with no lock held; see [Warmer] for what that
// asks of it. w must not be nil, nor a nil pointer (or other nil value) of
// a type that implements Warmer. By default nothing is warmed.
func WithWarmup(backend string, w Warmer) Option {
	return func(c *config) {
		if c.warmers == nil {
			c.warmers = make(map[string]Warmer)
		}
		c.warmers[backend] = w
	}
}

// warmupProblems says what is wrong with WithWarmup(name, w), b being the
// backend of that name, if any.
func warmupProblems(name string, w Warmer, b backends.Backend) []error {
	var errs []error
	if b == nil {
		errs = append(errs, fmt.Errorf("WithWarmup(%q, ...): no backend has that name", name))
	}
	switch {
	case w == nil:
		errs = append(errs, fmt.Errorf("WithWarmup(%q, nil): pass a Warmer", name))
	case nilcheck.IsNil(w):
		errs = append(errs, fmt.Errorf("WithWarmup(%q, (%T)(nil)): the Warmer is a nil %T: pass one made by its constructor, such as warm.New", name, w, w))
	}
	return errs
}

// warmup is the layer of [WithWarmup] for one backend: it hands the pages
// each batch purged to the Warmer.
type warmup struct {
	backend string
	warmer  Warmer
	logger  *slog.Logger
}

var _ observer = (*warmup)(nil)

// batchEnded hands the Warmer the pages b purged, if any. A panic in the
// Warmer is logged, as one in the OnResult hook is.
func (w *warmup) batchEnded(b *batch, end *batchEnd) {
	urls := b.purgedPages(end)
	if len(urls) == 0 {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			w.logger.LogAttrs(context.Background(), slog.LevelError, "dispatcher: Warmer panicked",
				slog.String("backend", w.backend), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
		}
	}()
	w.warmer.Enqueue(urls...)
}
