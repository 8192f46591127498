package gormpurge

import (
	"context"
	"log/slog"
	"time"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/observe"
)

// handoffEnd tells the Observer how a handoff ended: outcome is one of
// observe's handoff outcomes, err the error of a failed one.
type handoffEnd func(outcome string, err error)

// noHandoffEnd is the handoffEnd without an Observer.
func noHandoffEnd(string, error) {}

// startHandoff tells the Observer, if there is one, that r's handoff
// begins in ctx, the transaction's context; inTx when r is written into the
// transaction. It returns the context to hand r off with, carrying its
// origin (observe.ContextWithOrigin), and the function that ends the
// handoff. Without an Observer it returns ctx and noHandoffEnd.
func (p *Plugin) startHandoff(ctx context.Context, r backends.Request, inTx bool) (context.Context, handoffEnd) {
	obs := p.cfg.obs
	if obs == nil {
		return ctx, noHandoffEnd
	}
	if ctx == nil {
		ctx = context.Background()
	}
	var (
		tp  string
		end func(observe.HandoffEnd)
	)
	hctx := ctx
	p.observe(func() {
		c, t, e := obs.StartHandoff(ctx, observe.Handoff{URLs: r.URLs, Tags: r.Tags, InTx: inTx})
		if c != nil {
			hctx = c
		}
		tp, end = t, e
	})
	hctx = observe.ContextWithOrigin(hctx, observe.Origin{Committed: time.Now(), TraceParent: tp})
	if end == nil {
		return hctx, noHandoffEnd
	}
	return hctx, func(outcome string, err error) {
		p.observe(func() { end(observe.HandoffEnd{Outcome: outcome, Err: err}) })
	}
}

// observe runs fn, a call to the Observer; a panic in it is logged, never
// allowed to fail the caller's write.
func (p *Plugin) observe(fn func()) {
	defer func() {
		if v := recover(); v != nil {
			p.cfg.logger.LogAttrs(context.Background(), slog.LevelError, "gormpurge: Observer panicked", slog.Any("panic", v))
		}
	}()
	fn()
}

// readings is the plugin's observe.Source: its handoffs by outcome.
func (p *Plugin) readings(_ context.Context, add func(observe.Reading)) {
	s := p.Stats()
	add(observe.Reading{Metric: observe.Handoffs, Outcome: observe.HandedOff, Value: float64(s.Handoffs)})
	add(observe.Reading{Metric: observe.Handoffs, Outcome: observe.HandoffFailed, Value: float64(s.HandoffErrors)})
	add(observe.Reading{Metric: observe.Handoffs, Outcome: observe.Suspended, Value: float64(s.Suspended)})
}
