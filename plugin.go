package gormpurge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"

	"gorm.io/gorm"
	"gorm.io/gorm/schema"

	"github.com/gormpurge/gormpurge/internal/nilcheck"
)

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

	stats   counters
	uniques sync.Map                     // *schema.Schema -> map[string]bool: its unique columns, for read tags
	namer   atomic.Pointer[schema.Namer] // of the first *gorm.DB installed on, to parse models' schemas
	parsed  sync.Map                     // the schemas parsed with it
}

var _ gorm.Plugin = (*Plugin)(nil)

// New returns a Plugin that hands purge requests to sink. The sink and the
// options are checked here and an error naming every problem, and how to
// fix it, is returned by db.Use(plugin). A nil sink, or a nil pointer (or
// other nil value) of a type that implements Sink, such as
// (*dispatcher.Dispatcher)(nil), is such an error, and so is a nil Option
// or an option given nil ([WithLogger], [WithErrorHandler]): leave the
// option out for the default.
func New(sink Sink, opts ...Option) *Plugin {
	p := &Plugin{sink: sink, cfg: defaultConfig()}
	empty := map[reflect.Type]*modelInfo{}
	p.models.Store(&empty)
	var errs []error
	switch {
	case sink == nil:
		errs = append(errs, errors.New("gormpurge: New: sink is nil: pass a *dispatcher.Dispatcher, an outbox, or a gormpurge.SinkFunc"))
	case nilcheck.IsNil(sink):
		errs = append(errs, fmt.Errorf("gormpurge: New: sink is a nil %T: pass a *dispatcher.Dispatcher made by dispatcher.New, an outbox, or a gormpurge.SinkFunc", sink))
	}
	for _, o := range opts {
		if o == nil {
			errs = append(errs, errors.New("gormpurge: an Option is nil: remove it, or pass one made by a With... function"))
			continue
		}
		o(&p.cfg)
	}
	errs = append(errs, p.cfg.errs...)
	var err error
	if p.urls, err = newURLPolicy(p.cfg.baseURL, p.cfg.allowedHosts); err != nil {
		errs = append(errs, err)
	}
	if p.cfg.handoffTimeout < 0 {
		errs = append(errs, fmt.Errorf("gormpurge: WithHandoffTimeout(%s): want a positive duration, or 0 for none", p.cfg.handoffTimeout))
	}
	p.optErr = errors.Join(errs...)
	if p.optErr == nil && p.cfg.obs != nil {
		p.observe(func() { p.cfg.obs.Watch(p.readings) })
	}
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
	if db.NamingStrategy != nil {
		namer := db.NamingStrategy
		p.namer.CompareAndSwap(nil, &namer)
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
	// LateReadTags is the number of read tags (WithReadTags) that queries
	// added after their response's headers were sent: they index the page
	// in the local cache, but no CDN saw them.
	LateReadTags uint64
	// UntaggablePages is the number of pages whose read tags did not fit
	// a tag header even with every table's rows collapsed into its tag:
	// they were sent with Cache-Control: no-store.
	UntaggablePages uint64
}

type counters struct {
	handoffs, handoffErrors, errors, suspended atomic.Uint64
	lateReadTags, untaggable                   atomic.Uint64
}

// Stats returns the plugin's counters. It is safe to call at any time.
func (p *Plugin) Stats() Stats {
	return Stats{
		Handoffs:        p.stats.handoffs.Load(),
		HandoffErrors:   p.stats.handoffErrors.Load(),
		Errors:          p.stats.errors.Load(),
		Suspended:       p.stats.suspended.Load(),
		LateReadTags:    p.stats.lateReadTags.Load(),
		UntaggablePages: p.stats.untaggable.Load(),
	}
}
