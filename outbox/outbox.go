package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/internal/nilcheck"
)

// Outbox is the durable Sink: it writes each committed transaction's purge
// request as a row of its table, inside that transaction, and its relays
// ([Outbox.Relay]) deliver the rows through a dispatcher. Hand it to
// gormpurge.New in place of the dispatcher.
//
// An Outbox is safe for concurrent use. It starts no goroutine itself;
// relays do, and [Relay.Close] stops them.
type Outbox struct {
	db    *sql.DB
	cfg   config
	d     dialect
	table string
	q     queries
	// rowBytes bounds the JSON of one row's URLs and tags together: a
	// larger request is written as several rows.
	rowBytes int

	mu     sync.Mutex
	relays map[*Relay]struct{} // relays in this process, woken by commits

	written, writeErrors atomic.Uint64
}

// New returns an Outbox on db's database, creating its table and index if
// they are missing and adding any column an older version of the table
// lacks; with [WithoutMigrate] it only checks that the table has every
// column it needs. It supports PostgreSQL, MySQL 8 / MariaDB 10.6 and later (older
// versions work without SKIP LOCKED: relays then wait on each other's
// claims) and SQLite.
//
// New runs its statements on db's connection pool, outside the plugin's
// view; db may have the plugin installed or not. Options are validated here:
// New returns an error naming every invalid one (a nil one included), and a
// nil db, before it touches the database.
func New(db *gorm.DB, opts ...Option) (*Outbox, error) {
	return NewContext(context.Background(), db, opts...)
}

// NewContext is [New] with a context for the migration's statements.
func NewContext(ctx context.Context, db *gorm.DB, opts ...Option) (*Outbox, error) {
	var errs []error
	switch {
	case db == nil:
		errs = append(errs, errors.New("db is nil: pass the *gorm.DB that gorm.Open returned"))
	case db.Config == nil || nilcheck.IsNil(db.Dialector):
		errs = append(errs, errors.New("db has no dialector: pass the *gorm.DB that gorm.Open returned, not one built by hand"))
	}
	if ctx == nil {
		errs = append(errs, errors.New("NewContext(nil, ...): pass a context, such as context.Background()"))
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			cfg.errs = append(cfg.errs, errors.New("an Option is nil: remove it, or pass one made by a With... function"))
			continue
		}
		o(&cfg)
	}
	if err := errors.Join(append(errs, cfg.validate())...); err != nil {
		return nil, fmt.Errorf("outbox: New: invalid configuration:\n%w", err)
	}
	d, err := dialectOf(db)
	if err != nil {
		return nil, err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("outbox: New: reaching the database pool: %w", err)
	}
	// The migration runs without the plugin's callbacks or the caller's
	// session settings.
	mdb := db.Session(&gorm.Session{NewDB: true, SkipDefaultTransaction: true})
	// Processes starting together race to create the table: the loser's
	// statement fails, and a second look finds the table made.
	hasTrace := true
	for try := 1; ; try++ {
		if cfg.noMigrate {
			if hasTrace, err = checkSchema(ctx, mdb, d, cfg.table, cfg.logger); err != nil {
				return nil, err
			}
			break
		}
		err := migrate(ctx, mdb, d, cfg.table)
		if err == nil {
			break
		}
		if try == 3 || ctx.Err() != nil {
			return nil, fmt.Errorf("outbox: New: %w", err)
		}
		select {
		case <-time.After(time.Duration(try) * 100 * time.Millisecond):
		case <-ctx.Done():
			return nil, fmt.Errorf("outbox: New: %w (gave up waiting: %w)", err, context.Cause(ctx))
		}
	}
	rowBytes := maxRowBytes
	if d.name == "mysql" {
		d.skipLocked = probeSkipLocked(ctx, sqlDB, d, cfg.table)
		rowBytes = rowBytesFor(packetLimit(ctx, sqlDB))
	}
	return &Outbox{
		db:       sqlDB,
		cfg:      cfg,
		d:        d,
		table:    cfg.table,
		q:        buildQueries(d, cfg.table, hasTrace),
		rowBytes: rowBytes,
		relays:   make(map[*Relay]struct{}),
	}, nil
}

// maxRowBytes bounds the JSON of one row's URLs and tags together, on every
// database: a request larger than that (a bulk update of a few hundred
// thousand rows) is written as several rows, so that no statement comes
// near MySQL's max_allowed_packet, whose smallest default is 4 MiB (16 MiB
// on MariaDB), and no row makes a claim hold tens of megabytes.
const maxRowBytes = 1 << 20

// packetLimit returns MySQL's max_allowed_packet, or 0 if it cannot be read.
func packetLimit(ctx context.Context, db *sql.DB) int64 {
	var n int64
	if err := db.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&n); err != nil {
		return 0
	}
	return n
}

// rowBytesFor returns the row bound for a server whose packets are limited
// to packet bytes (0: unknown): a statement carries the row's two JSON
// values, which the driver may escape to twice their size, plus the SQL.
func rowBytesFor(packet int64) int {
	if packet <= 0 {
		return maxRowBytes
	}
	return int(max(min(int64(maxRowBytes), (packet-4096)/4), 256))
}

// probeSkipLocked reports whether the server understands SKIP LOCKED.
func probeSkipLocked(ctx context.Context, db *sql.DB, d dialect, table string) bool {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false
	}
	defer func() { _ = tx.Rollback() }()
	rows, err := tx.QueryContext(ctx, "SELECT id FROM "+d.quote(table)+" WHERE 1 = 0 FOR UPDATE SKIP LOCKED")
	if err != nil {
		return false
	}
	rows.Close()
	return true
}

// Table returns the name of the outbox table.
func (o *Outbox) Table() string { return o.table }

// EnqueueTx writes r as a pending row through tx, the user's open
// transaction, so that the row is committed or rolled back with the data.
// The gormpurge plugin calls it just before the commit; it implements
// gormpurge.TxSink. The traceparent of the Origin ctx carries
// (observe.ContextWithOrigin), when it is a well-formed W3C traceparent,
// is written into every row the request takes, so that the relay links
// its deliveries to the transaction; any other is written as "".
func (o *Outbox) EnqueueTx(ctx context.Context, tx gorm.ConnPool, r backends.Request) error {
	if r.Empty() {
		return nil
	}
	if tx == nil {
		return fmt.Errorf("outbox: EnqueueTx: tx is nil")
	}
	return o.insert(ctx, tx, r)
}

// Enqueue writes r as a pending row at once, in a statement of its own, and
// wakes the relays of this process. The plugin calls it for statements run
// outside any transaction (SkipDefaultTransaction) and when EnqueueTx
// failed; call it yourself to purge durably from outside a transaction.
// It implements gormpurge.Sink. It keeps ctx's Origin's traceparent as
// EnqueueTx does.
func (o *Outbox) Enqueue(ctx context.Context, r backends.Request) error {
	if r.Empty() {
		return nil
	}
	if err := o.insert(ctx, o.db, r); err != nil {
		return err
	}
	o.wakeRelays()
	return nil
}

// TxCommitted wakes the relays of this process after a transaction that
// EnqueueTx wrote into has committed. It implements
// gormpurge.CommitListener.
func (o *Outbox) TxCommitted(context.Context) { o.wakeRelays() }

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// insert writes r as one row, or as several when it is larger than a row
// may be (see maxRowBytes). Several rows written outside a transaction are
// written in one of their own, so that a request is kept whole or not at
// all.
func (o *Outbox) insert(ctx context.Context, x execer, r backends.Request) error {
	rows, err := splitRows(r, o.rowBytes)
	if err != nil {
		return fmt.Errorf("outbox: encoding the request: %w", err)
	}
	if db, ok := x.(*sql.DB); ok && len(rows) > 1 {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			o.writeErrors.Add(uint64(len(rows)))
			return fmt.Errorf("outbox: writing to table %s: %w", o.table, err)
		}
		defer func() { _ = tx.Rollback() }()
		if err := o.insertRows(ctx, tx, rows); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			o.writeErrors.Add(uint64(len(rows)))
			return fmt.Errorf("outbox: writing to table %s: %w", o.table, err)
		}
		return nil
	}
	return o.insertRows(ctx, x, rows)
}

func (o *Outbox) insertRows(ctx context.Context, x execer, rows []encodedRow) error {
	now := time.Now().UnixMilli()
	trace := traceOf(ctx)
	for i, row := range rows {
		args := []any{now, now, row.urls, row.tags}
		if o.q.trace {
			args = append(args, trace)
		}
		if o.d.name == "postgres" {
			args = append(args, o.channel())
		}
		if _, err := x.ExecContext(ctx, o.q.insert, args...); err != nil {
			o.writeErrors.Add(uint64(len(rows) - i))
			if len(rows) > 1 {
				return fmt.Errorf("outbox: writing to table %s (row %d of the %d the request takes): %w", o.table, i+1, len(rows), err)
			}
			return fmt.Errorf("outbox: writing to table %s: %w", o.table, err)
		}
		o.written.Add(1)
	}
	return nil
}

// channel is the PostgreSQL notification channel of the table.
func (o *Outbox) channel() string { return "gormpurge:" + o.table }

func (o *Outbox) wakeRelays() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for r := range o.relays {
		r.signal()
	}
}

func (o *Outbox) addRelay(r *Relay) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.relays[r] = struct{}{}
}

func (o *Outbox) removeRelay(r *Relay) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.relays, r)
}

// Stats counts the rows this Outbox value wrote, for metrics.
type Stats struct {
	// Written is the number of rows written, in transactions or not. A
	// row written in a transaction that then rolled back is counted too.
	Written uint64
	// WriteErrors is the number of rows that could not be written.
	WriteErrors uint64
}

// Stats returns the outbox's counters. See [Outbox.Status] for what the
// table holds and [Relay.Stats] for deliveries.
func (o *Outbox) Stats() Stats {
	return Stats{Written: o.written.Load(), WriteErrors: o.writeErrors.Load()}
}
