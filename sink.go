package gormpurge

import (
	"context"
	"fmt"
	"log/slog"

	"gorm.io/gorm"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/observe"
)

// Sink receives the purge requests of committed work. The dispatcher
// (package dispatcher) is the usual Sink; the durable outbox (package outbox)
// is another.
//
// Enqueue is called after the commit, on the goroutine that committed, with a
// context that keeps the transaction's values but not its cancellation and
// that expires after the handoff timeout (see WithHandoffTimeout). It should
// return quickly and must be safe for concurrent use. An error is reported
// through the plugin's error handler and logger, never returned to the code
// that committed.
type Sink interface {
	Enqueue(ctx context.Context, r backends.Request) error
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(ctx context.Context, r backends.Request) error

// Enqueue calls f(ctx, r).
func (f SinkFunc) Enqueue(ctx context.Context, r backends.Request) error { return f(ctx, r) }

// TxSink is a Sink that can also write a request inside the transaction that
// produced it, just before the commit, so that the database keeps or drops
// the request with the data (the durable outbox does this). When a
// transaction commits, the plugin calls EnqueueTx instead of Enqueue; if
// EnqueueTx fails, the error is reported and Enqueue is called after the
// commit instead, so nothing is lost. Statements run outside any transaction
// go to Enqueue.
type TxSink interface {
	Sink
	// EnqueueTx writes r through tx, the open transaction. It must not
	// commit or roll back tx. Its context has no deadline: a statement
	// cancelled mid-way would cost the user's commit its connection.
	EnqueueTx(ctx context.Context, tx gorm.ConnPool, r backends.Request) error
}

// CommitListener is implemented by a TxSink that wants to know when a
// transaction it wrote into has committed, for example to wake a relay in
// the same process at once instead of waiting for its next poll. The plugin
// calls TxCommitted after the real commit succeeded, on the goroutine that
// committed; it must return quickly and must not block.
type CommitListener interface {
	TxCommitted(ctx context.Context)
}

// handoff gives r to the suspension in ctx, if any, or else to the sink; a
// failure is reported and returned as a *HandoffError. Callers after a
// commit may drop the error: it has been reported.
func (p *Plugin) handoff(ctx context.Context, r backends.Request) error {
	if r.Empty() {
		return nil
	}
	ctx, end := p.startHandoff(ctx, r, false)
	return p.handoffStarted(ctx, r, end)
}

// handoffStarted is handoff once the Observer, if any, has started it:
// ctx carries the handoff's origin, and end tells the Observer how it
// ended.
func (p *Plugin) handoffStarted(ctx context.Context, r backends.Request, end handoffEnd) error {
	for s := p.suspension(ctx); s != nil; s = p.suspension(ctx) {
		if s.hold(r) {
			p.stats.suspended.Add(1)
			end(observe.Suspended, nil)
			return nil
		}
	}
	ctx, cancel := p.handoffContext(ctx)
	defer cancel()
	err := p.safely(func() error { return p.sink.Enqueue(ctx, r) })
	if err != nil {
		p.stats.handoffErrors.Add(1)
		herr := &HandoffError{Request: r, Err: err}
		p.report(ctx, herr)
		end(observe.HandoffFailed, herr)
		return herr
	}
	p.stats.handoffs.Add(1)
	p.cfg.logger.LogAttrs(ctx, slog.LevelDebug, "gormpurge: handed off",
		slog.Int("urls", len(r.URLs)), slog.Int("tags", len(r.Tags)))
	end(observe.HandedOff, nil)
	return nil
}

// enqueueTx writes r inside tx through a TxSink and reports whether it did.
//
// The write gets no deadline: drivers abandon a connection whose statement
// is cancelled, which would fail the user's commit. It waits like any other
// write in the transaction (on a lock, for example).
func (p *Plugin) enqueueTx(ctx context.Context, ts TxSink, t *trackedTx, r backends.Request) bool {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx = context.WithoutCancel(ctx)
	err := t.guard(ctx, func() error {
		return p.safely(func() error { return ts.EnqueueTx(ctx, t.inner, r) })
	})
	if err != nil {
		p.stats.handoffErrors.Add(1)
		// Commit goes on: if the transaction still commits, the request is
		// handed to Enqueue after it; if the commit fails (the write may
		// have cost the transaction its connection), nothing was committed
		// and nothing is handed off.
		p.report(ctx, &HandoffError{Request: r, Err: fmt.Errorf("writing inside the transaction failed; the request goes to Enqueue after the commit if the transaction still commits: %w", err)})
		return false
	}
	return true
}

func (p *Plugin) handoffContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx = context.WithoutCancel(ctx)
	if p.cfg.handoffTimeout > 0 {
		return context.WithTimeout(ctx, p.cfg.handoffTimeout)
	}
	return ctx, func() {}
}
