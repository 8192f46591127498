package gormpurge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"github.com/gormpurge/gormpurge/backends"
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

// Plugin is a gorm.Plugin that collects the pages and cache tags of every
// registered model written through GORM and hands them to a Sink once the
// write is committed. Make one with New, register models with Register, and
// install it with db.Use.
//
// A Plugin is safe for concurrent use and may be installed on several
// *gorm.DB; each transaction's targets are kept on the transaction itself.
type Plugin struct {
	sink   Sink
	cfg    config
	urls   *urlPolicy
	optErr error

	regMu   sync.Mutex
	models  atomic.Pointer[map[reflect.Type]*modelInfo]
	schemas sync.Map // *schema.Schema -> joinCache, for join tables

	stats counters
}

var _ gorm.Plugin = (*Plugin)(nil)

// New returns a Plugin that hands purge requests to sink. Options are
// checked here and an error naming every invalid one, and how to fix it, is
// returned by db.Use(plugin). An option given nil ([WithLogger],
// [WithErrorHandler]) is such an error, not a request for the default:
// leave the option out for the default.
func New(sink Sink, opts ...Option) *Plugin {
	p := &Plugin{sink: sink, cfg: defaultConfig()}
	empty := map[reflect.Type]*modelInfo{}
	p.models.Store(&empty)
	for _, o := range opts {
		o(&p.cfg)
	}
	if sink == nil {
		p.optErr = fmt.Errorf("gormpurge: New: sink is nil: pass a *dispatcher.Dispatcher, an outbox, or a gormpurge.SinkFunc")
		return p
	}
	errs := p.cfg.errs
	var err error
	if p.urls, err = newURLPolicy(p.cfg.baseURL, p.cfg.allowedHosts); err != nil {
		errs = append(errs, err)
	}
	if p.cfg.handoffTimeout < 0 {
		errs = append(errs, fmt.Errorf("gormpurge: WithHandoffTimeout(%s): want a positive duration, or 0 for none", p.cfg.handoffTimeout))
	}
	p.optErr = errors.Join(errs...)
	return p
}

// Name returns "gormpurge", the key under which GORM keeps the plugin.
func (p *Plugin) Name() string { return "gormpurge" }

// Initialize installs the plugin on db: it wraps db's connection pool so that
// commits can be seen, and registers the callbacks. GORM calls it from
// db.Use. It is safe to call more than once, including on the extra pools
// gorm.io/plugin/dbresolver opens (install gormpurge before dbresolver).
func (p *Plugin) Initialize(db *gorm.DB) error {
	if p.optErr != nil {
		return p.optErr
	}
	// dbresolver's own pools are opened with a copy of this Config (its
	// Plugins map names dbresolver already) but carry none of its callbacks:
	// only a *gorm.DB dbresolver was installed on is refused.
	if db.Callback().Query().Get("gorm:db_resolver") != nil {
		return fmt.Errorf("gormpurge: install gormpurge before gorm.io/plugin/dbresolver: call db.Use(gormpurge) first, then db.Use(dbresolver), so that the resolver's pools are tracked too")
	}
	if err := p.wrapPool(db); err != nil {
		return err
	}
	return p.registerCallbacks(db)
}

// wrapPool puts a *pool between GORM and the database connection, beneath
// GORM's prepared-statement layer when there is one (GORM, its drivers and
// dbresolver type-assert *gorm.PreparedStmtDB).
func (p *Plugin) wrapPool(db *gorm.DB) error {
	wrap := func(cp gorm.ConnPool) (gorm.ConnPool, error) {
		switch cp.(type) {
		case *pool:
			return cp, nil
		case gorm.TxBeginner, gorm.ConnPoolBeginner:
			return p.wrapConn(cp, db.Dialector.Name()), nil
		}
		return nil, fmt.Errorf("gormpurge: cannot track transactions on connection pool %T: install the plugin on a *gorm.DB opened with gorm.Open, not on a transaction or session", cp)
	}
	old := db.ConnPool
	if ps, ok := old.(*gorm.PreparedStmtDB); ok {
		inner, err := wrap(ps.ConnPool)
		if err != nil {
			return err
		}
		ps.ConnPool = inner
		return nil
	}
	wrapped, err := wrap(old)
	if err != nil {
		return err
	}
	db.ConnPool = wrapped
	if db.Statement != nil && db.Statement.ConnPool == old {
		db.Statement.ConnPool = wrapped
	}
	return nil
}

// handoff gives r to the sink, reporting failures instead of returning them.
func (p *Plugin) handoff(ctx context.Context, r backends.Request) {
	_ = p.deliver(ctx, r)
}

// deliver gives r to the suspension in ctx, if any, or else to the sink; a
// failure is reported and returned as a *HandoffError.
func (p *Plugin) deliver(ctx context.Context, r backends.Request) error {
	if r.Empty() {
		return nil
	}
	for s := p.suspension(ctx); s != nil; s = p.suspension(ctx) {
		if s.hold(r) {
			p.stats.suspended.Add(1)
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
		return herr
	}
	p.stats.handoffs.Add(1)
	p.cfg.logger.LogAttrs(ctx, slog.LevelDebug, "gormpurge: handed off",
		slog.Int("urls", len(r.URLs)), slog.Int("tags", len(r.Tags)))
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

// safely runs fn and turns a panic into an error: user code (a Sink, a
// model's URL method) must never crash the caller's write.
func (p *Plugin) safely(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return fn()
}

// report sends err to the logger and the error handler.
func (p *Plugin) report(ctx context.Context, err error) {
	if ctx == nil {
		ctx = context.Background()
	}
	p.stats.errors.Add(1)
	p.cfg.logger.LogAttrs(ctx, slog.LevelError, "gormpurge: "+errorKind(err), slog.Any("error", err))
	if p.cfg.onError != nil {
		_ = p.safely(func() error { p.cfg.onError(ctx, err); return nil })
	}
}

func errorKind(err error) string {
	switch err.(type) {
	case *TargetError:
		return "target rejected"
	case *ModelError:
		return "model targets incomplete"
	case *HandoffError:
		return "handoff failed"
	}
	return "error"
}

// Stats is a snapshot of the plugin's counters, for metrics.
type Stats struct {
	// Handoffs is the number of requests accepted by the Sink.
	Handoffs uint64
	// HandoffErrors is the number of requests the Sink refused or that
	// could not be handed off.
	HandoffErrors uint64
	// Errors is the number of errors reported to the error handler,
	// including rejected targets and failed lookups.
	Errors uint64
	// Suspended is the number of handoffs merged into a suspension (see
	// Plugin.Suspend) instead of reaching the Sink; each suspension's
	// Resume then counts as one handoff.
	Suspended uint64
}

type counters struct {
	handoffs, handoffErrors, errors, suspended atomic.Uint64
}

// Stats returns the plugin's counters. It is safe to call at any time.
func (p *Plugin) Stats() Stats {
	return Stats{
		Handoffs:      p.stats.handoffs.Load(),
		HandoffErrors: p.stats.handoffErrors.Load(),
		Errors:        p.stats.errors.Load(),
		Suspended:     p.stats.suspended.Load(),
	}
}

// Option configures a Plugin; pass options to New.
type Option func(*config)

type config struct {
	baseURL        string
	allowedHosts   []string
	logger         *slog.Logger
	onError        func(context.Context, error)
	handoffTimeout time.Duration
	errs           []error // problems found while applying options
}

func defaultConfig() config {
	return config{logger: slog.Default(), handoffTimeout: 5 * time.Second}
}

// WithBaseURL resolves the site-relative paths models return ("/posts/1")
// against base ("https://www.example.com"), so that the Sink receives
// absolute URLs. Without it, paths are handed off as paths, for backends
// that know the site's host. With it, absolute URLs must be on base's host
// (or on one WithAllowedHosts names): anything else is rejected with
// ErrForeignHost. Defaults to none.
func WithBaseURL(base string) Option {
	return func(c *config) { c.baseURL = base }
}

// WithAllowedHosts rejects absolute URLs whose host is not one of hosts (the
// base URL's host is always allowed), so that a bug or hostile data in a
// model cannot purge another site's pages. Internationalised names may be
// given in Unicode or punycode. Defaults to allowing any host without
// WithBaseURL, and only the base URL's host with it.
func WithAllowedHosts(hosts ...string) Option {
	return func(c *config) { c.allowedHosts = append(c.allowedHosts, hosts...) }
}

// WithLogger sets the logger for rejected targets, failed lookups and failed
// handoffs (level Error) and for each handoff (level Debug). To silence the
// plugin, pass slog.New(slog.DiscardHandler); nil is an error. Defaults to
// slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.errs = append(c.errs, errors.New("gormpurge: WithLogger(nil): pass slog.New(slog.DiscardHandler) to silence the plugin, or leave the option out"))
			return
		}
		c.logger = l
	}
}

// WithErrorHandler calls fn with every error the plugin reports: a
// *TargetError, a *ModelError or a *HandoffError. fn runs on the goroutine
// that wrote or committed and should return quickly. Defaults to none (errors
// are only logged); nil is an error.
func WithErrorHandler(fn func(ctx context.Context, err error)) Option {
	return func(c *config) {
		if fn == nil {
			c.errs = append(c.errs, errors.New("gormpurge: WithErrorHandler(nil): pass a function, or leave the option out to only log errors"))
			return
		}
		c.onError = fn
	}
}

// WithHandoffTimeout bounds how long one call to the Sink may take, so that a
// full queue cannot stall the code that committed. 0 means no bound.
// Defaults to 5 seconds.
func WithHandoffTimeout(d time.Duration) Option {
	return func(c *config) { c.handoffTimeout = d }
}
