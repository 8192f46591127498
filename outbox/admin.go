package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/gormpurge/gormpurge/backends"
)

// State is where a row is in its life.
type State string

const (
	// Pending rows wait to be claimed, are held by a relay, or wait for a
	// retry.
	Pending State = "pending"
	// Delivered rows were accepted by every backend. They are pruned after
	// the retention time (see [WithRetention]).
	Delivered State = "delivered"
	// Dead rows failed for good. They stay until re-driven
	// ([Outbox.Redrive]) or deleted by hand.
	Dead State = "dead"
)

// Status is a snapshot of the outbox table, for operators and health
// checks.
type Status struct {
	// Pending counts the pending rows, including those held and those
	// waiting for a retry.
	Pending int64
	// Held counts the pending rows a relay holds right now.
	Held int64
	// Retrying counts the pending rows that failed before and wait for
	// their next attempt.
	Retrying int64
	// Delivered counts the delivered rows not yet pruned.
	Delivered int64
	// Dead counts the dead rows.
	Dead int64
	// OldestPending is when the oldest pending row was written; zero when
	// there is none. A growing age means the relays do not keep up or do
	// not run.
	OldestPending time.Time
}

// Status counts the table's rows by state.
func (o *Outbox) Status(ctx context.Context) (Status, error) {
	now := time.Now().UnixMilli()
	q := fmt.Sprintf(`SELECT state,
		COUNT(*),
		COALESCE(SUM(CASE WHEN lease_owner IS NOT NULL AND available_at > %s THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN lease_owner IS NULL AND attempts > 0 THEN 1 ELSE 0 END), 0),
		COALESCE(MIN(created_at), 0)
		FROM %s GROUP BY state`, o.d.ph(1), o.d.quote(o.table))
	rows, err := o.db.QueryContext(ctx, q, now)
	if err != nil {
		return Status{}, fmt.Errorf("outbox: status of table %s: %w", o.table, err)
	}
	defer rows.Close()
	var s Status
	for rows.Next() {
		var (
			state                  string
			n, held, retry, oldest int64
		)
		if err := rows.Scan(&state, &n, &held, &retry, &oldest); err != nil {
			return Status{}, fmt.Errorf("outbox: status of table %s: %w", o.table, err)
		}
		switch State(state) {
		case Pending:
			s.Pending, s.Held, s.Retrying = n, held, retry
			if oldest > 0 {
				s.OldestPending = time.UnixMilli(oldest)
			}
		case Delivered:
			s.Delivered = n
		case Dead:
			s.Dead = n
		}
	}
	if err := rows.Err(); err != nil {
		return Status{}, fmt.Errorf("outbox: status of table %s: %w", o.table, err)
	}
	return s, nil
}

// Row is one row of the outbox table, as [Outbox.Rows] returns it.
type Row struct {
	// ID is the row's id.
	ID int64
	// State is the row's state.
	State State
	// Created is when the row was written.
	Created time.Time
	// Available is, for a pending row, when it may next be claimed (the end
	// of its lease, or its next retry); for a settled row, when it settled.
	Available time.Time
	// Attempts is the number of hand-offs to the dispatcher.
	Attempts int
	// LeaseOwner names the relay holding or last holding the row, if any.
	LeaseOwner string
	// Request is what the row purges.
	Request backends.Request
	// DoneBackends lists the backends that already accepted the request.
	DoneBackends []string
	// LastError says why the last hand-off failed, if it did.
	LastError string
	// TraceParent is the W3C traceparent of the handoff that wrote the
	// row, "" when it was not traced: look the transaction up in your
	// tracing system by its trace id.
	TraceParent string
}

// Rows returns up to limit rows in the given state, oldest first: for
// example the dead rows, to see why they died before re-driving them.
func (o *Outbox) Rows(ctx context.Context, state State, limit int) ([]Row, error) {
	if limit <= 0 {
		limit = 100
	}
	q := fmt.Sprintf("SELECT id, state, created_at, available_at, attempts, lease_owner, urls, tags, done_backends, last_error, %s FROM %s WHERE state = %s ORDER BY available_at, id LIMIT %s",
		o.q.traceExpr, o.d.quote(o.table), o.d.ph(1), o.d.ph(2))
	rows, err := o.db.QueryContext(ctx, q, string(state), limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: listing %s rows of table %s: %w", state, o.table, err)
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		// Text columns are read as nullable: one row written by hand with
		// a NULL must not hide the others.
		var (
			r                 Row
			rowState          string
			created, avail    int64
			owner, lastErr    sql.NullString
			urls, tags, dones sql.NullString
			trace             sql.NullString
		)
		if err := rows.Scan(&r.ID, &rowState, &created, &avail, &r.Attempts, &owner, &urls, &tags, &dones, &lastErr, &trace); err != nil {
			return nil, fmt.Errorf("outbox: listing %s rows of table %s: %w", state, o.table, err)
		}
		r.State, r.LeaseOwner, r.LastError = State(rowState), owner.String, lastErr.String
		r.Created, r.Available = time.UnixMilli(created), time.UnixMilli(avail)
		r.TraceParent = originOf(created, trace.String).TraceParent
		r.Request.URLs, _ = decodeList(urls.String)
		r.Request.Tags, _ = decodeList(tags.String)
		r.DoneBackends, _ = decodeList(dones.String)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: listing %s rows of table %s: %w", state, o.table, err)
	}
	return out, nil
}

// Redrive makes dead rows pending again, with their attempts reset, so that
// the relays send them at once to the backends that have not accepted them
// yet. With no ids it re-drives every dead row. It returns how many rows it
// changed. Use it once the cause (credentials, an ACL, an outage) is fixed.
//
// Many ids are re-driven a few hundred at a time, so that no statement
// passes a database's limit on placeholders; on an error, the rows of the
// statements before it stay re-driven and are counted in the result.
func (o *Outbox) Redrive(ctx context.Context, ids ...int64) (int64, error) {
	q := fmt.Sprintf("UPDATE %s SET state = 'pending', attempts = 0, available_at = %s, lease_owner = NULL, last_error = '' WHERE state = 'dead'",
		o.d.quote(o.table), o.d.ph(1))
	now := time.Now().UnixMilli()
	var total int64
	defer func() {
		if total > 0 {
			o.wakeRelays()
		}
	}()
	exec := func(q string, args ...any) error {
		res, err := o.db.ExecContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("outbox: re-driving dead rows of table %s: %w", o.table, err)
		}
		n, _ := res.RowsAffected()
		total += n
		return nil
	}
	if len(ids) == 0 {
		return total, exec(q, now)
	}
	for chunk := range slices.Chunk(ids, idChunk) {
		if err := exec(q+fmt.Sprintf(" AND id IN (%s)", o.d.phs(2, len(chunk))), idArgs(chunk, now)...); err != nil {
			return total, err
		}
	}
	return total, nil
}

// pruneChunk is how many rows one prune statement deletes, so that pruning
// a large backlog does not hold long locks.
const pruneChunk = 1000

// Prune deletes delivered rows that settled more than the retention time
// ago (see [WithRetention]) and returns how many it deleted. Relays call it
// every minute; call it yourself from a job if you run no relay.
func (o *Outbox) Prune(ctx context.Context) (int64, error) {
	cutoff := time.Now().Add(-o.cfg.retention).UnixMilli()
	t := o.d.quote(o.table)
	var q string
	switch o.d.name {
	case "mysql":
		q = fmt.Sprintf("DELETE FROM %s WHERE state = 'delivered' AND available_at < ? ORDER BY available_at LIMIT ?", t)
	default:
		q = fmt.Sprintf("DELETE FROM %s WHERE id IN (SELECT id FROM %s WHERE state = 'delivered' AND available_at < %s LIMIT %s)", t, t, o.d.ph(1), o.d.ph(2))
	}
	var total int64
	for {
		res, err := o.db.ExecContext(ctx, q, cutoff, pruneChunk)
		if err != nil {
			return total, fmt.Errorf("outbox: pruning table %s: %w", o.table, err)
		}
		n, _ := res.RowsAffected()
		total += n
		if n < pruneChunk {
			return total, nil
		}
	}
}
