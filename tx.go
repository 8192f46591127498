package gormpurge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"

	"gorm.io/gorm"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/observe"
)

// GORM has no after-commit hook. The plugin therefore wraps the connection
// pool (GORM's ConnPoolBeginner extension point): every transaction GORM
// begins through it is a *trackedTx, which collects the targets of the
// statements run in it and hands them to the Sink once the real Commit has
// succeeded. Rollback drops them; savepoints are followed by watching the
// SAVEPOINT / ROLLBACK TO / RELEASE statements GORM sends through the
// transaction.

// pool wraps a GORM connection pool so that transactions begun through it are
// tracked. It deliberately does not implement gorm.TxBeginner or
// gorm.TxCommitter: GORM and dbresolver tell pools from transactions by those
// interfaces.
type pool struct {
	inner  gorm.ConnPool
	plugin *Plugin
	// abortsOnError is true for PostgreSQL, where any failed statement
	// aborts the whole transaction: the plugin's own statements that could
	// fail where the user's would not run inside a savepoint there (see
	// guard and needsGuard), so that their failure cannot fail the user's
	// work.
	abortsOnError bool
}

var (
	_ gorm.ConnPool         = (*pool)(nil)
	_ gorm.ConnPoolBeginner = (*pool)(nil)
	_ gorm.GetDBConnector   = (*pool)(nil)
	_ gorm.Tx               = (*trackedTx)(nil)
	_ gorm.GetDBConnector   = (*trackedTx)(nil)
)

// BeginTx begins a transaction on the wrapped pool and tracks it.
func (p *pool) BeginTx(ctx context.Context, opts *sql.TxOptions) (gorm.ConnPool, error) {
	var (
		tx  gorm.Tx
		err error
	)
	switch b := p.inner.(type) {
	case gorm.TxBeginner:
		var stx *sql.Tx
		if stx, err = b.BeginTx(ctx, opts); err == nil {
			tx = stx
		}
	case gorm.ConnPoolBeginner:
		var cp gorm.ConnPool
		if cp, err = b.BeginTx(ctx, opts); err == nil {
			var ok bool
			if tx, ok = cp.(gorm.Tx); !ok {
				return cp, nil // not a transaction we can follow; GORM will treat it as it would without us
			}
		}
	default:
		return nil, gorm.ErrInvalidTransaction
	}
	if err != nil {
		return nil, err
	}
	return &trackedTx{inner: tx, pool: p, ctx: ctx}, nil
}

// wrapConn wraps a connection pool, usually a *sql.DB or the *sql.Conn of
// db.Connection, so that transactions begun on it are tracked.
func (p *Plugin) wrapConn(cp gorm.ConnPool, dialect string) *pool {
	return &pool{inner: cp, plugin: p, abortsOnError: dialect == "postgres"}
}

// PrepareContext prepares query on the wrapped pool.
func (p *pool) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return p.inner.PrepareContext(ctx, query)
}

// ExecContext runs query on the wrapped pool.
func (p *pool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return p.inner.ExecContext(ctx, query, args...)
}

// QueryContext runs query on the wrapped pool.
func (p *pool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return p.inner.QueryContext(ctx, query, args...)
}

// QueryRowContext runs query on the wrapped pool.
func (p *pool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return p.inner.QueryRowContext(ctx, query, args...)
}

// GetDBConn returns the *sql.DB beneath, so that db.DB() keeps working.
func (p *pool) GetDBConn() (*sql.DB, error) {
	switch c := p.inner.(type) {
	case *sql.DB:
		return c, nil
	case gorm.GetDBConnector:
		return c.GetDBConn()
	}
	return nil, gorm.ErrInvalidDB
}

// Ping checks the database beneath.
func (p *pool) Ping() error {
	db, err := p.GetDBConn()
	if err != nil {
		return err
	}
	return db.Ping()
}

// trackedTx is a transaction begun through a pool. It must not implement
// BeginTx: statements inside an explicit transaction would try to open
// another one.
type trackedTx struct {
	inner gorm.Tx
	pool  *pool
	ctx   context.Context // the context the transaction was begun with
	done  atomic.Bool     // Commit or Rollback was called
	c     collector
	susp  atomic.Pointer[Suspension] // a suspension a statement in the transaction ran under
}

// PrepareContext prepares query in the transaction.
func (t *trackedTx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return t.inner.PrepareContext(ctx, query)
}

// QueryContext runs query in the transaction.
func (t *trackedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.inner.QueryContext(ctx, query, args...)
}

// QueryRowContext runs query in the transaction.
func (t *trackedTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.inner.QueryRowContext(ctx, query, args...)
}

// StmtContext returns stmt prepared for the transaction.
func (t *trackedTx) StmtContext(ctx context.Context, stmt *sql.Stmt) *sql.Stmt {
	return t.inner.StmtContext(ctx, stmt)
}

// ExecContext runs query in the transaction and, when it is a savepoint
// statement that succeeded, moves the collector's savepoint marks with it.
func (t *trackedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := t.inner.ExecContext(ctx, query, args...)
	if err == nil {
		if op, name := parseSavepoint(query); op != spNone {
			t.c.savepoint(op, name)
		}
	}
	return res, err
}

// Commit commits the real transaction and then hands off what was collected.
// A second Commit, or a Commit after Rollback, hands off nothing.
//
// Under a suspension (see Plugin.Suspend) the request joins it instead. The
// commit enters the suspension before the real commit, so that Resume waits
// for it: the request is never left to fall back to an unsuspended handoff
// after the decision not to write it into the transaction was taken.
func (t *trackedTx) Commit() error {
	if t.done.Swap(true) {
		return t.inner.Commit()
	}
	p := t.pool.plugin
	req := t.c.request()
	if !req.Empty() {
		if s := p.enterSuspension(t.suspensionContext()); s != nil {
			_, end := p.startHandoff(t.ctx, req, false)
			err := t.inner.Commit()
			if err != nil {
				s.leave(backends.Request{})
				end(observe.Aborted, err)
				return err
			}
			s.leave(req)
			p.stats.suspended.Add(1)
			end(observe.Suspended, nil)
			return nil
		}
	}
	ts, toTx := p.sink.(TxSink)
	if !toTx || req.Empty() {
		if err := t.inner.Commit(); err != nil {
			return err
		}
		_ = p.handoff(t.ctx, req) // reported; the commit stands
		return nil
	}
	ctx, end := p.startHandoff(t.ctx, req, true)
	inTx := p.enqueueTx(ctx, ts, t, req)
	if err := t.inner.Commit(); err != nil {
		end(observe.Aborted, err)
		return err
	}
	if !inTx {
		_ = p.handoffStarted(ctx, req, end) // reported; the commit stands
		return nil
	}
	p.stats.handoffs.Add(1) // the request was committed with the data
	end(observe.Written, nil)
	if cl, ok := p.sink.(CommitListener); ok {
		_ = p.safely(func() error { cl.TxCommitted(t.ctx); return nil })
	}
	return nil
}

// suspensionContext returns the context whose suspension, if any, the
// transaction's request joins: the one the transaction was begun with, or,
// when that has none, one with the suspension a statement or PurgeTx in the
// transaction ran under (tx.WithContext(jobCtx) after db.Begin()).
func (t *trackedTx) suspensionContext() context.Context {
	ctx := t.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	p := t.pool.plugin
	if p.suspension(ctx) != nil {
		return ctx
	}
	if s := t.susp.Load(); s != nil {
		return context.WithValue(ctx, suspensionKey{p}, s)
	}
	return ctx
}

// noteSuspension remembers the suspension ctx carries, if any, for the
// commit: the first one seen wins.
func (t *trackedTx) noteSuspension(ctx context.Context) {
	if t.susp.Load() != nil || ctx == nil {
		return
	}
	if s, _ := ctx.Value(suspensionKey{t.pool.plugin}).(*Suspension); s != nil {
		t.susp.CompareAndSwap(nil, s)
	}
}

// Rollback rolls the real transaction back and drops what was collected.
func (t *trackedTx) Rollback() error {
	t.done.Store(true)
	t.c.reset()
	return t.inner.Rollback()
}

// guardName is the savepoint the plugin's own statements run in. Savepoints
// with the plugin's prefix are not tracked as the user's.
const guardName = "gormpurge_guard"

// guard runs fn, which executes the plugin's own statements in the
// transaction, so that their failure leaves the transaction usable: on
// PostgreSQL inside a savepoint that is rolled back when fn fails.
func (t *trackedTx) guard(ctx context.Context, fn func() error) error {
	if !t.pool.abortsOnError {
		return fn()
	}
	if _, err := t.inner.ExecContext(ctx, "SAVEPOINT "+guardName); err != nil {
		return fmt.Errorf("setting a savepoint to run in: %w", err)
	}
	err := fn()
	if err != nil {
		if _, rbErr := t.inner.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+guardName); rbErr != nil {
			return errors.Join(err, fmt.Errorf("rolling back to the plugin's savepoint: %w", rbErr))
		}
	}
	if _, relErr := t.inner.ExecContext(ctx, "RELEASE SAVEPOINT "+guardName); relErr != nil {
		return errors.Join(err, fmt.Errorf("releasing the plugin's savepoint: %w", relErr))
	}
	return err
}

// GetDBConn returns the *sql.DB beneath, so that tx.DB() keeps working.
func (t *trackedTx) GetDBConn() (*sql.DB, error) { return t.pool.GetDBConn() }

// Ping checks the database beneath.
func (t *trackedTx) Ping() error { return t.pool.Ping() }

// Unwrap returns the transaction the plugin wraps, usually a *sql.Tx.
func (t *trackedTx) Unwrap() gorm.Tx { return t.inner }

// trackedTxOf returns the tracked transaction behind a statement's
// connection pool, or nil when there is none.
func trackedTxOf(cp gorm.ConnPool) *trackedTx {
	switch c := cp.(type) {
	case *trackedTx:
		return c
	case *gorm.PreparedStmtTX:
		t, _ := c.Tx.(*trackedTx)
		return t
	}
	return nil
}

// SQLTx returns the *sql.Tx behind db's current transaction, looking through
// the plugin's wrapper and GORM's prepared-statement wrapper. Use it where
// code asserted db.Statement.ConnPool.(*sql.Tx) before the plugin was added.
func SQLTx(db *gorm.DB) (*sql.Tx, bool) {
	if db == nil || db.Statement == nil {
		return nil, false
	}
	cp := db.Statement.ConnPool
	if p, ok := cp.(*gorm.PreparedStmtTX); ok {
		cp = p.Tx
	}
	if t, ok := cp.(*trackedTx); ok {
		cp = t.inner
	}
	tx, ok := cp.(*sql.Tx)
	return tx, ok
}
