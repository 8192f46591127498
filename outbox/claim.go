package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/observe"
)

// claimedRow is a row this relay holds.
type claimedRow struct {
	id       int64
	attempts int
	req      backends.Request
	done     []string       // backends that accepted the row on an earlier attempt
	origin   observe.Origin // when the row was written, and its traceparent
	bad      error          // the row could not be decoded
	release  error          // the dispatcher refused it before any backend saw it
}

// claimTries bounds the claims tried at once when the database answers a
// deadlock or a serialization failure: such an answer means another
// transaction (a user's insert, this or another relay's bookkeeping) held
// the same rows for a moment, and the next try normally goes through.
const claimTries = 3

// claim leases up to a batch of due rows to this relay, trying again at once
// when the database chose the claim as a deadlock's victim.
func (r *Relay) claim(ctx context.Context) (rows []claimedRow, err error) {
	for try := 1; ; try++ {
		rows, err = r.claimOnce(ctx)
		if err == nil || try == claimTries || !isLockConflict(err) || ctx.Err() != nil {
			return rows, err
		}
		r.o.cfg.logger.LogAttrs(ctx, slog.LevelDebug, "outbox: claim lost a lock conflict, trying again",
			slog.Int("try", try), slog.Any("error", err))
	}
}

// isLockConflict reports whether err is the database's answer to a deadlock
// or a serialization failure, which a new try of the same statement may
// not meet: SQLSTATE 40001 or 40P01 (PostgreSQL), MySQL/MariaDB errors
// 1213 (deadlock) and 1205 (lock wait timeout). The drivers are matched by
// their error text and SQLSTATE method, so that the outbox imports none.
func isLockConflict(err error) bool {
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		switch st.SQLState() {
		case "40001", "40P01":
			return true
		}
	}
	msg := err.Error()
	for _, s := range []string{"Error 1213 ", "Error 1205 ", "(40001)", "(40P01)", "SQLSTATE 40001", "SQLSTATE 40P01"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// claimOnce leases up to a batch of due rows to this relay.
func (r *Relay) claimOnce(ctx context.Context) ([]claimedRow, error) {
	now := time.Now()
	leaseEnd := now.Add(r.o.cfg.lease).UnixMilli()
	if r.o.q.claimUpdate != "" {
		return r.claimReturning(ctx, now, leaseEnd)
	}
	return r.claimLocked(ctx, now, leaseEnd)
}

// claimReturning claims in one UPDATE ... RETURNING: PostgreSQL and SQLite.
func (r *Relay) claimReturning(ctx context.Context, now time.Time, leaseEnd int64) ([]claimedRow, error) {
	o := r.o
	rows, err := o.db.QueryContext(ctx, o.q.claimUpdate, r.owner, leaseEnd, now.UnixMilli(), o.cfg.batchSize)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out, err := r.readClaimed(rows)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b claimedRow) int { return int(a.id - b.id) })
	return out, nil
}

// claimLocked claims on MySQL and MariaDB: lock the due rows, skipping
// those another relay is claiming, then lease them. READ COMMITTED takes no
// gap locks, so the claim never makes a user's insert wait.
func (r *Relay) claimLocked(ctx context.Context, now time.Time, leaseEnd int64) ([]claimedRow, error) {
	o := r.o
	tx, err := o.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }()
	rows, err := tx.QueryContext(ctx, o.q.claimSelect, now.UnixMilli(), o.cfg.batchSize)
	if err != nil {
		return nil, err
	}
	out, err := r.readClaimed(rows)
	rows.Close()
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, tx.Commit()
	}
	ids := make([]int64, len(out))
	for i, c := range out {
		ids[i] = c.id
	}
	for chunk := range slices.Chunk(ids, idChunk) {
		if _, err := tx.ExecContext(ctx, o.leaseQuery(len(chunk)), idArgs(chunk, r.owner, leaseEnd)...); err != nil {
			return nil, err
		}
	}
	return out, tx.Commit()
}

// readClaimed reads the rows a claim returned. The text columns are read as
// nullable: a row written by hand with a NULL is one bad row, not a claim
// that fails for the whole batch at every poll.
func (r *Relay) readClaimed(rows *sql.Rows) ([]claimedRow, error) {
	var out []claimedRow
	for rows.Next() {
		var (
			c                        claimedRow
			urls, tags, dones, trace sql.NullString
			created                  int64
		)
		if err := rows.Scan(&c.id, &c.attempts, &urls, &tags, &dones, &created, &trace); err != nil {
			return nil, err
		}
		c.origin = originOf(created, trace.String)
		u, err1 := decodeList(urls.String)
		t, err2 := decodeList(tags.String)
		dn, err3 := decodeList(dones.String)
		if err := errors.Join(err1, err2, err3); err != nil {
			c.bad = fmt.Errorf("outbox: row %d of %s does not hold a valid request (urls, tags and done_backends must be JSON arrays of strings): %w", c.id, r.o.table, err)
		}
		c.req, c.done = backends.Request{URLs: u, Tags: t}, dn
		out = append(out, c)
	}
	return out, rows.Err()
}

// hold adds rows to the set this relay holds and returns those it did not
// hold already: a row whose lease ran out while this relay was still
// delivering it (renewals failed) must not be sent twice by this relay.
func (r *Relay) hold(rows []claimedRow) []claimedRow {
	r.heldMu.Lock()
	defer r.heldMu.Unlock()
	out := rows[:0]
	for _, c := range rows {
		if _, dup := r.held[c.id]; dup {
			continue
		}
		r.held[c.id] = struct{}{}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (r *Relay) unhold(rows []claimedRow) {
	r.heldMu.Lock()
	defer r.heldMu.Unlock()
	for _, c := range rows {
		delete(r.held, c.id)
	}
}

func (r *Relay) heldCount() int {
	r.heldMu.Lock()
	defer r.heldMu.Unlock()
	return len(r.held)
}

// heldIDs returns the ids of the rows this relay holds.
func (r *Relay) heldIDs() []int64 {
	r.heldMu.Lock()
	defer r.heldMu.Unlock()
	ids := make([]int64, 0, len(r.held))
	for id := range r.held {
		ids = append(ids, id)
	}
	return ids
}
