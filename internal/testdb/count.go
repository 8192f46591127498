package testdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	gmysql "gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Counter records every statement that reaches the database driver through
// a pool opened with [OpenCounted]: each Exec and Query (SAVEPOINT and
// RELEASE included), and BEGIN, COMMIT and ROLLBACK. Preparing a statement
// is not counted; executing it is. Use it to assert how many round trips a
// write costs.
type Counter struct {
	mu    sync.Mutex
	stmts []string
}

// Reset forgets the statements recorded so far.
func (c *Counter) Reset() {
	c.mu.Lock()
	c.stmts = c.stmts[:0]
	c.mu.Unlock()
}

// Statements returns the statements recorded since the last Reset, in order.
func (c *Counter) Statements() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.stmts...)
}

func (c *Counter) add(query string) {
	c.mu.Lock()
	c.stmts = append(c.stmts, query)
	c.mu.Unlock()
}

// driverNames are the database/sql driver names GORM's dialectors register.
var driverNames = map[string]string{"sqlite": "sqlite3", "postgres": "pgx", "mysql": "mysql"}

// OpenCounted opens dsn, a DSN of the given kind (see [DSN]), through a
// driver that records every statement in the returned Counter, and closes
// the pool when t ends. A nil cfg, or one without a logger, logs nothing.
func OpenCounted(t testing.TB, kind, dsn string, cfg *gorm.Config) (*gorm.DB, *Counter) {
	t.Helper()
	name, ok := driverNames[kind]
	if !ok {
		t.Fatalf("testdb: unknown database kind %q", kind)
	}
	probe, err := sql.Open(name, dsn)
	require.NoError(t, err)
	drv := probe.Driver()
	require.NoError(t, probe.Close())
	c := &Counter{}
	var conn driver.Connector = dsnConnector{drv: drv, dsn: dsn}
	if dc, ok := drv.(driver.DriverContext); ok {
		conn, err = dc.OpenConnector(dsn)
		require.NoError(t, err)
	}
	sqlDB := sql.OpenDB(&countingConnector{inner: conn, c: c})
	var d gorm.Dialector
	switch kind {
	case "postgres":
		d = postgres.New(postgres.Config{Conn: sqlDB})
	case "mysql":
		d = gmysql.New(gmysql.Config{Conn: sqlDB})
	default:
		d = &sqlite.Dialector{DSN: dsn, Conn: sqlDB}
	}
	if cfg == nil {
		cfg = &gorm.Config{}
	}
	if cfg.Logger == nil {
		cfg.Logger = logger.Discard
	}
	db, err := gorm.Open(d, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { sqlDB.Close() })
	c.Reset()
	return db, c
}

// dsnConnector is a connector for drivers without one of their own.
type dsnConnector struct {
	drv driver.Driver
	dsn string
}

func (d dsnConnector) Connect(context.Context) (driver.Conn, error) { return d.drv.Open(d.dsn) }
func (d dsnConnector) Driver() driver.Driver                        { return d.drv }

type countingConnector struct {
	inner driver.Connector
	c     *Counter
}

func (cc *countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := cc.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{inner: conn, c: cc.c}, nil
}

func (cc *countingConnector) Driver() driver.Driver { return cc.inner.Driver() }

// countingConn forwards every optional interface database/sql looks for,
// answering driver.ErrSkip (use the fallback) where the driver has none.
type countingConn struct {
	inner driver.Conn
	c     *Counter
}

func (cn *countingConn) Prepare(query string) (driver.Stmt, error) {
	return cn.PrepareContext(context.Background(), query)
}

func (cn *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	var (
		st  driver.Stmt
		err error
	)
	if p, ok := cn.inner.(driver.ConnPrepareContext); ok {
		st, err = p.PrepareContext(ctx, query)
	} else {
		st, err = cn.inner.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	return &countingStmt{inner: st, query: query, c: cn.c}, nil
}

func (cn *countingConn) Close() error { return cn.inner.Close() }

func (cn *countingConn) Begin() (driver.Tx, error) {
	return cn.BeginTx(context.Background(), driver.TxOptions{})
}

func (cn *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	var (
		tx  driver.Tx
		err error
	)
	if b, ok := cn.inner.(driver.ConnBeginTx); ok {
		tx, err = b.BeginTx(ctx, opts)
	} else {
		//lint:ignore SA1019 the fallback database/sql uses too
		tx, err = cn.inner.Begin()
	}
	if err != nil {
		return nil, err
	}
	cn.c.add("BEGIN")
	return &countingTx{inner: tx, c: cn.c}, nil
}

func (cn *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := cn.inner.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	res, err := e.ExecContext(ctx, query, args)
	if !errors.Is(err, driver.ErrSkip) {
		cn.c.add(query)
	}
	return res, err
}

func (cn *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := cn.inner.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	rows, err := q.QueryContext(ctx, query, args)
	if !errors.Is(err, driver.ErrSkip) {
		cn.c.add(query)
	}
	return rows, err
}

func (cn *countingConn) Ping(ctx context.Context) error {
	if p, ok := cn.inner.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (cn *countingConn) ResetSession(ctx context.Context) error {
	if r, ok := cn.inner.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (cn *countingConn) IsValid() bool {
	if v, ok := cn.inner.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (cn *countingConn) CheckNamedValue(nv *driver.NamedValue) error {
	if c, ok := cn.inner.(driver.NamedValueChecker); ok {
		return c.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

type countingTx struct {
	inner driver.Tx
	c     *Counter
}

func (tx *countingTx) Commit() error {
	tx.c.add("COMMIT")
	return tx.inner.Commit()
}

func (tx *countingTx) Rollback() error {
	tx.c.add("ROLLBACK")
	return tx.inner.Rollback()
}

type countingStmt struct {
	inner driver.Stmt
	query string
	c     *Counter
}

func (s *countingStmt) Close() error  { return s.inner.Close() }
func (s *countingStmt) NumInput() int { return s.inner.NumInput() }

func (s *countingStmt) Exec(args []driver.Value) (driver.Result, error) {
	s.c.add(s.query)
	//lint:ignore SA1019 the fallback database/sql uses too
	return s.inner.Exec(args)
}

func (s *countingStmt) Query(args []driver.Value) (driver.Rows, error) {
	s.c.add(s.query)
	//lint:ignore SA1019 the fallback database/sql uses too
	return s.inner.Query(args)
}

func (s *countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	e, ok := s.inner.(driver.StmtExecContext)
	if !ok {
		return s.Exec(namedToValues(args))
	}
	s.c.add(s.query)
	return e.ExecContext(ctx, args)
}

func (s *countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := s.inner.(driver.StmtQueryContext)
	if !ok {
		return s.Query(namedToValues(args))
	}
	s.c.add(s.query)
	return q.QueryContext(ctx, args)
}

func (s *countingStmt) CheckNamedValue(nv *driver.NamedValue) error {
	if c, ok := s.inner.(driver.NamedValueChecker); ok {
		return c.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

func namedToValues(args []driver.NamedValue) []driver.Value {
	out := make([]driver.Value, len(args))
	for i, a := range args {
		out[i] = a.Value
	}
	return out
}
