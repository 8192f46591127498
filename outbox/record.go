package outbox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// verdict is what happens to a row after a hand-off.
type verdict int

const (
	vDelivered verdict = iota
	vRetry             // failed for now: count an attempt, try again later
	vDead              // failed for good, or out of attempts
	vRelease           // interrupted: give back without counting an attempt
)

type settled struct {
	row     claimedRow
	verdict verdict
	done    []string
	err     error
}

// judge decides what a row's outcomes mean.
func (r *Relay) judge(c claimedRow, t *dispatcher.Ticket) settled {
	s := settled{row: c, done: c.done}
	switch {
	case c.bad != nil:
		s.verdict, s.err = vDead, c.bad
		return s
	case c.release != nil:
		s.verdict, s.err = vRelease, c.release
		return s
	case t == nil:
		return s // nothing left to send
	}
	select {
	case <-t.Done():
	default:
		s.verdict, s.err = vRelease, context.Cause(r.ctx)
		return s
	}
	// Precedence: a backend that failed for now makes the row retry (the
	// backend that refused it for good is sent it again too, until the
	// attempts run out); otherwise a backend that never got the row
	// (dropped by the dispatcher, or the relay closing) makes the row go
	// back without an attempt counted; otherwise a permanent refusal
	// kills it.
	var (
		errs                       []error
		retry, permanent, released bool
	)
	for _, oc := range t.Outcomes() {
		switch {
		case oc.Outcome == dispatcher.Delivered:
			s.done = append(s.done, oc.Backend)
			continue
		case oc.Outcome == dispatcher.Dropped || r.ctx.Err() != nil:
			released = true
		case backends.IsPermanent(oc.Err):
			permanent = true
		default:
			retry = true
		}
		errs = append(errs, fmt.Errorf("%s: %s: %w", oc.Backend, oc.Outcome, oc.Err))
	}
	s.err = errors.Join(errs...)
	switch {
	case s.err == nil:
		s.verdict = vDelivered
	case retry && r.ctx.Err() == nil:
		s.verdict = vRetry
		if c.attempts+1 >= r.o.cfg.retry.MaxAttempts {
			s.verdict = vDead
		}
	case released || retry:
		s.verdict = vRelease
	case permanent:
		s.verdict = vDead // retrying cannot help; an operator may re-drive it
	}
	return s
}

// record writes the outcome of a batch to the table and reports whether it
// gave rows back without an attempt (the dispatcher did not take them).
// Each row's outcome is recorded whatever happens to the others': a row the
// database refuses to update is reported and left to its lease.
func (r *Relay) record(ctx context.Context, rows []claimedRow, tickets []*dispatcher.Ticket) (released bool) {
	now := time.Now()
	var delivered []int64
	var rest []settled
	for i, c := range rows {
		s := r.judge(c, tickets[i])
		released = released || s.verdict == vRelease
		if s.verdict == vDelivered {
			delivered = append(delivered, c.id)
			continue
		}
		rest = append(rest, s)
	}
	for chunk := range slices.Chunk(delivered, idChunk) {
		r.markDelivered(ctx, chunk, now)
	}
	if len(rest) > 0 {
		r.recordRest(ctx, rest, now)
	}
	return released
}

// markDelivered marks the rows ids delivered (or deletes them) in one
// statement; if that fails, it marks each on its own, so that a row the
// database refuses to change does not send the others again.
func (r *Relay) markDelivered(ctx context.Context, ids []int64, now time.Time) {
	n, err := r.execDelivered(ctx, ids, now)
	var failed []int64
	switch {
	case err != nil && len(ids) == 1:
		failed = ids
	case err != nil:
		r.o.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "outbox: marking a batch delivered failed; marking each row on its own",
			slog.Int("rows", len(ids)), slog.Any("error", err))
		n, err = 0, nil
		for _, id := range ids {
			m, rowErr := r.execDelivered(ctx, []int64{id}, now)
			if rowErr != nil {
				failed = append(failed, id)
				err = cmp.Or(err, rowErr)
				continue
			}
			n += m
		}
	}
	if len(failed) > 0 {
		r.report(ctx, &Error{Op: "mark delivered", Table: r.o.table, Err: fmt.Errorf("%s %v: %w (sent again when the lease runs out)", plural(len(failed), "row", "rows"), failed, err)})
	}
	r.stats.delivered.Add(uint64(n))
	// Rows neither marked nor failing were claimed by another relay.
	if lost := len(ids) - len(failed) - int(n); lost > 0 {
		r.lostLeases(ctx, lost)
	}
}

func (r *Relay) execDelivered(ctx context.Context, ids []int64, now time.Time) (int64, error) {
	o := r.o
	var args []any
	if o.cfg.deleteOnDone {
		args = idArgs(ids, r.owner)
	} else {
		args = idArgs(ids, now.UnixMilli(), r.owner)
	}
	res, err := o.db.ExecContext(ctx, o.deliveredQuery(len(ids)), args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return int64(len(ids)), nil // the statement ran; count every row
	}
	return n, nil
}

// change is what recording a row that was not delivered writes.
type change struct {
	s        settled
	state    State
	at       time.Time
	attempts int
	done     string
	msg      string // last_error, clipped and valid UTF-8
	recorded bool   // the row was updated
	lost     bool   // the row was not this relay's any more
}

// recordRest records rows that were not delivered: in one transaction, or,
// if any statement of it fails, each row on its own, so that a row whose
// outcome cannot be recorded does not hold back the others.
func (r *Relay) recordRest(ctx context.Context, rest []settled, now time.Time) {
	changes := make([]change, len(rest))
	for i, s := range rest {
		changes[i] = r.changeOf(s, now)
	}
	if err := r.recordTx(ctx, changes); err != nil {
		r.o.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "outbox: recording failed rows in one transaction failed; recording each row on its own",
			slog.Int("rows", len(changes)), slog.Any("error", err))
		r.recordEach(ctx, changes)
	}
	lost := 0
	for _, c := range changes {
		if c.lost {
			lost++
		}
		if !c.recorded {
			continue
		}
		switch c.s.verdict {
		case vRetry:
			r.stats.retried.Add(1)
			r.o.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "outbox: row failed, will retry",
				slog.Int64("row", c.s.row.id), slog.Int("attempts", c.attempts), slog.Time("next", c.at), slog.Any("error", c.s.err))
		case vDead:
			r.stats.dead.Add(1)
		case vRelease:
			r.stats.released.Add(1)
		}
	}
	if lost > 0 {
		r.lostLeases(ctx, lost)
	}
	for _, c := range changes {
		if c.recorded && c.s.verdict == vDead {
			r.report(ctx, &RowError{Table: r.o.table, ID: c.s.row.id, Attempts: c.attempts, Dead: true, Err: c.s.err})
		}
	}
}

// changeOf is what recording s writes, at now.
func (r *Relay) changeOf(s settled, now time.Time) change {
	c := change{s: s, state: Pending, at: now, attempts: s.row.attempts}
	switch s.verdict {
	case vRetry:
		c.attempts++
		c.at = now.Add(r.o.cfg.retry.Backoff(c.attempts))
	case vDead:
		c.attempts++
		c.state = Dead
	case vRelease:
		if r.ctx.Err() == nil {
			// The dispatcher did not take the row (full or closed):
			// come back after a poll, not at once.
			c.at = now.Add(r.o.cfg.pollInterval)
		}
	}
	c.done, _ = encodeList(s.done)
	if s.err != nil {
		c.msg = clip(s.err.Error(), maxErrorLen, "…")
	}
	return c
}

// recordTx records every change in one transaction, marking each recorded
// or lost once the transaction has committed.
func (r *Relay) recordTx(ctx context.Context, changes []change) error {
	tx, err := r.o.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	q := r.o.q.record
	gone := make([]bool, len(changes))
	for i, c := range changes {
		res, err := tx.ExecContext(ctx, q, string(c.state), c.at.UnixMilli(), c.attempts, c.done, c.msg, c.s.row.id, r.owner)
		if err != nil {
			return fmt.Errorf("row %d: %w", c.s.row.id, err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			gone[i] = true
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	for i := range changes {
		changes[i].recorded, changes[i].lost = !gone[i], gone[i]
	}
	return nil
}

// recordEach records each change in a statement of its own, once recordTx
// has failed, and reports the rows it could not record.
func (r *Relay) recordEach(ctx context.Context, changes []change) {
	var (
		failed []int64
		first  error
	)
	for i := range changes {
		changes[i].recorded, changes[i].lost = false, false
		if err := r.recordOne(ctx, &changes[i]); err != nil {
			failed = append(failed, changes[i].s.row.id)
			first = cmp.Or(first, err)
		}
	}
	if len(failed) > 0 {
		r.report(ctx, &Error{Op: "record failed rows", Table: r.o.table,
			Err: fmt.Errorf("%s %v: %w (sent again when the lease runs out)", plural(len(failed), "row", "rows"), failed, first)})
	}
}

// unrecordedError stands for an error text the database refused to store.
const unrecordedError = "outbox: the database refused this row's error text; the relay's log has it"

// recordOne records one change in a statement of its own. If the database
// refuses it, it tries again with the error text in ASCII, then with a
// placeholder, so that a text the column cannot hold (a character set
// without 4-byte characters, say) never keeps the row from its end. It
// returns the database's errors when every try failed.
func (r *Relay) recordOne(ctx context.Context, c *change) error {
	q := r.o.q.record
	msgs := []string{c.msg}
	if ascii := clip(asciiText(c.msg), maxErrorLen, "..."); ascii != c.msg {
		msgs = append(msgs, ascii)
	}
	if c.msg != "" {
		msgs = append(msgs, unrecordedError)
	}
	var errs []error
	for _, msg := range msgs {
		res, err := r.o.db.ExecContext(ctx, q, string(c.state), c.at.UnixMilli(), c.attempts, c.done, msg, c.s.row.id, r.owner)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			c.lost = true
			return nil
		}
		c.recorded = true
		if msg != c.msg {
			r.o.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "outbox: the database refused a row's error text; recorded in its place",
				slog.Int64("row", c.s.row.id), slog.String("recorded", msg), slog.Any("error", c.s.err), slog.Any("refusal", errors.Join(errs...)))
		}
		return nil
	}
	return errors.Join(errs...)
}

// lostLeases counts and logs n rows this relay settled after another relay
// had claimed them.
func (r *Relay) lostLeases(ctx context.Context, n int) {
	r.stats.lostLeases.Add(uint64(n))
	r.o.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "outbox: lease lost: another relay claimed rows this relay was delivering; they may be delivered twice (raise WithLease above the time the dispatcher takes)",
		slog.Int("rows", n), slog.String("owner", r.owner))
}
