package outbox

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/internal/lifecycle"
)

// Relay moves pending rows from the outbox table to a dispatcher: it claims
// rows with a lease, submits each row's request to the backends that have
// not accepted it yet, and records the outcome on the row once every
// backend has settled it. Start one with [Outbox.Relay] and stop it with
// [Relay.Close] before closing the dispatcher.
//
// Any number of relays, in one process or many, may work on one table: a
// row is claimed by one relay at a time, and a relay that dies loses its
// leases when they run out, so another relay delivers its rows. Delivery is
// at least once: a relay that dies after a backend accepted a row and
// before the row was marked makes another relay send it again.
type Relay struct {
	o     *Outbox
	d     *dispatcher.Dispatcher
	names []string // the dispatcher's backends
	owner string

	lc        *lifecycle.Lifecycle // owns every goroutine of the relay
	ctx       context.Context      // lc.Context(): cancelled when Close gives up, then when it ends
	stopping  <-chan struct{}      // lc.Stopping(): closed when Close begins: claim no more
	wake      chan struct{}        // capacity 1: rows may be waiting
	slots     chan struct{}        // one per batch in flight
	claimDone chan struct{}        // closed when the claim loop has returned
	batches   sync.WaitGroup       // batches in flight; added to only by the claim loop

	heldMu sync.Mutex
	held   map[int64]struct{} // rows claimed and not yet recorded

	stats relayCounters
}

type relayCounters struct {
	claimed, delivered, retried, dead, released, lostLeases, errors atomic.Uint64
}

// RelayStats is a snapshot of a relay's counters, in rows.
type RelayStats struct {
	// Claimed is the number of rows this relay claimed.
	Claimed uint64
	// Delivered is the number of rows every backend accepted.
	Delivered uint64
	// Retried is the number of rows put back to be tried again later.
	Retried uint64
	// Dead is the number of rows that failed for good: their attempts ran
	// out, or a backend refused them permanently.
	Dead uint64
	// Released is the number of rows given back unsettled, without
	// counting an attempt, because the relay or the dispatcher was closing.
	Released uint64
	// LostLeases is the number of rows this relay settled after its lease
	// had run out and another relay had claimed them: they may have been
	// delivered twice.
	LostLeases uint64
	// Errors is the number of errors reported to the error handler.
	Errors uint64
	// Held is the number of rows claimed and not yet settled (a gauge).
	Held int64
}

// Stats returns the relay's counters.
func (r *Relay) Stats() RelayStats {
	return RelayStats{
		Claimed:    r.stats.claimed.Load(),
		Delivered:  r.stats.delivered.Load(),
		Retried:    r.stats.retried.Load(),
		Dead:       r.stats.dead.Load(),
		Released:   r.stats.released.Load(),
		LostLeases: r.stats.lostLeases.Load(),
		Errors:     r.stats.errors.Load(),
		Held:       int64(r.heldCount()),
	}
}

// Relay starts a relay that delivers the outbox's rows through d, and
// returns it. It starts goroutines (a claim loop, a lease keeper, a pruner
// and, on PostgreSQL, a listener) that [Relay.Close] stops; close the relay
// before d. A relay is configured by the options given to [New]
// ([WithBatchSize], [WithConcurrency], [WithLease], [WithRetry], ...).
//
// On PostgreSQL the relay keeps one connection of db's pool for LISTEN:
// leave room for it (SetMaxOpenConns of at least 2), or use [WithoutListen].
//
// Relay returns an error, and starts nothing, if d is nil or has no
// backends (the zero Dispatcher): pass the *dispatcher.Dispatcher that
// dispatcher.New returned.
func (o *Outbox) Relay(d *dispatcher.Dispatcher) (*Relay, error) {
	if d == nil {
		return nil, errors.New("outbox: Relay(nil): pass the *dispatcher.Dispatcher that delivers to your backends, made by dispatcher.New")
	}
	var names []string
	for _, b := range d.Stats().Backends {
		names = append(names, b.Backend)
	}
	if len(names) == 0 {
		return nil, errors.New("outbox: Relay: the dispatcher has no backends (a zero Dispatcher?): pass one made by dispatcher.New")
	}
	r := &Relay{
		o:     o,
		d:     d,
		names: names,
		owner: newOwner(),
		wake:  make(chan struct{}, 1),
		slots: make(chan struct{}, o.cfg.concurrency),
		held:  make(map[int64]struct{}),

		claimDone: make(chan struct{}),
	}
	r.lc = lifecycle.New(lifecycle.Hooks{Drain: r.drain, Stopped: r.stopped})
	r.ctx, r.stopping = r.lc.Context(), r.lc.Stopping()
	o.addRelay(r)
	r.lc.Go(r.claimLoop)
	r.lc.Go(r.leaseLoop)
	r.lc.Go(r.pruneLoop)
	if o.d.name == "postgres" && o.cfg.listen {
		r.lc.Go(r.listenLoop)
	}
	return r, nil
}

// newOwner names a relay in lease_owner: host, process and a random part,
// so that an operator can tell who holds a row.
func newOwner() string {
	host, _ := os.Hostname()
	host = clip(host, 64, "")
	var b [6]byte
	_, _ = crand.Read(b[:])
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Owner returns the name this relay writes in the lease_owner column of the
// rows it holds.
func (r *Relay) Owner() string { return r.owner }

// signal wakes the claim loop if it is not already due to wake.
func (r *Relay) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Close stops claiming rows, waits until the rows the relay holds have been
// settled by the dispatcher and recorded, and stops the relay's goroutines.
// If ctx ends first, Close stops waiting, gives the rows it still holds back
// to the table unsettled (another relay, or this one after a restart, sends
// them again) and returns an error wrapping ctx's cause.
//
// Close then gives back any row whose outcome it could not record. Recording
// a batch's outcome gets up to 10 seconds of its own, so Close can return
// that long after ctx ends. Close does not close the dispatcher; close it
// after the relay. Close may be called more than once and concurrently:
// the first call does the work; the others wait for it (or for their own
// ctx) and return nil.
func (r *Relay) Close(ctx context.Context) error {
	return r.lc.Close(ctx)
}

// drain is the Close hook that waits, within ctx, for the claim loop to stop
// and the batches in flight to be recorded. The claim loop stops first, so
// that no batch starts while drain waits for the batches.
func (r *Relay) drain(ctx context.Context) error {
	r.o.removeRelay(r)
	waitFor := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if waitFor(r.claimDone) {
		batchesDone := make(chan struct{})
		r.lc.Go(func() { // ends with the batches, which end once r.ctx is cancelled
			r.batches.Wait()
			close(batchesDone)
		})
		if waitFor(batchesDone) {
			return nil
		}
	}
	// The lifecycle cancels r.ctx next: the claim stops, and batches give
	// their rows back.
	return fmt.Errorf("outbox: relay closed with %d rows unsettled: %w", r.heldCount(), context.Cause(ctx))
}

// stopped is the Close hook that runs once every goroutine has returned.
// Rows whose outcome could not be recorded are still leased to this relay:
// it gives them back now rather than when the lease runs out.
func (r *Relay) stopped(_ context.Context, err error) error {
	rctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	if _, rerr := r.o.db.ExecContext(rctx, r.o.q.release, time.Now().UnixMilli(), r.owner); rerr != nil {
		r.report(rctx, &Error{Op: "release leases", Table: r.o.table, Err: rerr})
	}
	return err
}

// claimLoop claims batches while there are due rows and free slots, and
// waits for a wake-up or the poll interval when there are none.
func (r *Relay) claimLoop() {
	defer close(r.claimDone)
	poll := time.NewTimer(0)
	defer poll.Stop()
	wait := func() bool {
		poll.Reset(r.o.cfg.pollInterval)
		select {
		case <-r.wake:
			return true
		case <-poll.C:
			return true
		case <-r.stopping:
			return false
		}
	}
	<-poll.C
	for {
		select {
		case r.slots <- struct{}{}:
		case <-r.stopping:
			return
		}
		select {
		case <-r.stopping:
			<-r.slots
			return
		default:
		}
		rows, err := r.claim(r.ctx)
		if err == nil {
			rows = r.hold(rows)
		}
		if err != nil {
			<-r.slots
			if r.ctx.Err() == nil {
				r.report(r.ctx, &Error{Op: "claim", Table: r.o.table, Err: err})
			}
			if !wait() {
				return
			}
			continue
		}
		if len(rows) == 0 {
			<-r.slots
			if !wait() {
				return
			}
			continue
		}
		r.stats.claimed.Add(uint64(len(rows)))
		r.batches.Add(1)
		r.lc.Go(func() { r.deliver(rows) })
		if len(rows) < r.o.cfg.batchSize && !wait() {
			return
		}
	}
}

// claimedRow is a row this relay holds.
type claimedRow struct {
	id       int64
	attempts int
	req      backends.Request
	done     []string // backends that accepted the row on an earlier attempt
	bad      error    // the row could not be decoded
	release  error    // the dispatcher refused it before any backend saw it
}

// claim leases up to a batch of due rows to this relay.
func (r *Relay) claim(ctx context.Context) ([]claimedRow, error) {
	o := r.o
	now := time.Now()
	leaseEnd := now.Add(o.cfg.lease).UnixMilli()
	type scanner interface{ Scan(...any) error }
	var out []claimedRow
	scan := func(s scanner) error {
		// The text columns are read as nullable: a row written by hand
		// with a NULL is one bad row, not a claim that fails for the whole
		// batch at every poll.
		var (
			c                 claimedRow
			urls, tags, dones sql.NullString
		)
		if err := s.Scan(&c.id, &c.attempts, &urls, &tags, &dones); err != nil {
			return err
		}
		u, err1 := decodeList(urls.String)
		t, err2 := decodeList(tags.String)
		dn, err3 := decodeList(dones.String)
		if err := errors.Join(err1, err2, err3); err != nil {
			c.bad = fmt.Errorf("outbox: row %d of %s does not hold a valid request (urls, tags and done_backends must be JSON arrays of strings): %w", c.id, o.table, err)
		}
		c.req, c.done = backends.Request{URLs: u, Tags: t}, dn
		out = append(out, c)
		return nil
	}
	if o.q.claimUpdate != "" {
		rows, err := o.db.QueryContext(ctx, o.q.claimUpdate, r.owner, leaseEnd, now.UnixMilli(), o.cfg.batchSize)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return out, err
			}
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		slices.SortFunc(out, func(a, b claimedRow) int { return int(a.id - b.id) })
		return out, nil
	}
	// MySQL and MariaDB: lock the due rows, skipping those another relay is
	// claiming, then lease them. READ COMMITTED takes no gap locks, so the
	// claim never makes a user's insert wait.
	tx, err := o.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }()
	rows, err := tx.QueryContext(ctx, o.q.claimSelect, now.UnixMilli(), o.cfg.batchSize)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		if err := scan(rows); err != nil {
			rows.Close()
			return nil, err
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
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
		q := fmt.Sprintf("UPDATE %s SET lease_owner = ?, available_at = ? WHERE id IN (%s)", o.d.quote(o.table), o.d.phs(3, len(chunk)))
		if _, err := tx.ExecContext(ctx, q, idArgs(chunk, r.owner, leaseEnd)...); err != nil {
			return nil, err
		}
	}
	return out, tx.Commit()
}

// deliver submits a claimed batch, waits for every backend to settle each
// row, and records the outcomes.
func (r *Relay) deliver(rows []claimedRow) {
	defer r.batches.Done()
	released := false
	defer func() {
		r.unhold(rows)
		<-r.slots
		if !released {
			r.signal() // a slot is free: there may be more rows
		}
	}()
	tickets := make([]*dispatcher.Ticket, len(rows))
	for i, c := range rows {
		if c.bad != nil {
			continue
		}
		todo := r.remaining(c.done)
		if len(todo) == 0 {
			continue // every backend accepted it before: mark it delivered
		}
		t, err := r.d.Submit(r.ctx, c.req, dispatcher.Only(todo...))
		if t == nil {
			// The dispatcher is closed: give the row back without
			// counting an attempt.
			rows[i].release = err
			continue
		}
		tickets[i] = t
	}
	for _, t := range tickets {
		if t == nil {
			continue
		}
		select {
		case <-t.Done():
		case <-r.ctx.Done():
		}
	}
	// Record the outcome even when Close gave up: a delivered row recorded
	// now is a row not sent twice. The statements get a bounded time.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), recordTimeout)
	defer cancel()
	released = r.record(ctx, rows, tickets)
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

// recordTimeout bounds the statements that record a batch's outcome.
const recordTimeout = 10 * time.Second

// remaining returns the dispatcher's backends not in done.
func (r *Relay) remaining(done []string) []string {
	if len(done) == 0 {
		return r.names
	}
	var out []string
	for _, n := range r.names {
		if !slices.Contains(done, n) {
			out = append(out, n)
		}
	}
	return out
}

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

// idChunk bounds the ids in one IN list, far below every database's limit
// on placeholders (999 in old SQLite builds), whatever the batch size.
const idChunk = 500

// idArgs returns the arguments first followed by ids.
func idArgs(ids []int64, first ...any) []any {
	args := make([]any, 0, len(first)+len(ids))
	args = append(args, first...)
	for _, id := range ids {
		args = append(args, id)
	}
	return args
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
	t := o.d.quote(o.table)
	var res sql.Result
	var err error
	if o.cfg.deleteOnDone {
		q := fmt.Sprintf("DELETE FROM %s WHERE lease_owner = %s AND id IN (%s)", t, o.d.ph(1), o.d.phs(2, len(ids)))
		res, err = o.db.ExecContext(ctx, q, idArgs(ids, r.owner)...)
	} else {
		q := fmt.Sprintf("UPDATE %s SET state = 'delivered', available_at = %s, attempts = attempts + 1, lease_owner = NULL, last_error = '' WHERE lease_owner = %s AND id IN (%s)",
			t, o.d.ph(1), o.d.ph(2), o.d.phs(3, len(ids)))
		res, err = o.db.ExecContext(ctx, q, idArgs(ids, now.UnixMilli(), r.owner)...)
	}
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
		changes[i] = c
	}
	if err := r.recordTx(ctx, changes); err != nil {
		r.o.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "outbox: recording failed rows in one transaction failed; recording each row on its own",
			slog.Int("rows", len(changes)), slog.Any("error", err))
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

func (r *Relay) recordQuery() string {
	o := r.o
	return fmt.Sprintf("UPDATE %s SET state = %s, available_at = %s, attempts = %s, done_backends = %s, last_error = %s, lease_owner = NULL WHERE id = %s AND lease_owner = %s",
		o.d.quote(o.table), o.d.ph(1), o.d.ph(2), o.d.ph(3), o.d.ph(4), o.d.ph(5), o.d.ph(6), o.d.ph(7))
}

// recordTx records every change in one transaction, marking each recorded
// or lost once the transaction has committed.
func (r *Relay) recordTx(ctx context.Context, changes []change) error {
	tx, err := r.o.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	q := r.recordQuery()
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

// unrecordedError stands for an error text the database refused to store.
const unrecordedError = "outbox: the database refused this row's error text; the relay's log has it"

// recordOne records one change in a statement of its own. If the database
// refuses it, it tries again with the error text in ASCII, then with a
// placeholder, so that a text the column cannot hold (a character set
// without 4-byte characters, say) never keeps the row from its end. It
// returns the database's errors when every try failed.
func (r *Relay) recordOne(ctx context.Context, c *change) error {
	q := r.recordQuery()
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

// maxErrorLen bounds last_error, in bytes, so that a failure naming ten
// thousand URLs does not bloat the table.
const maxErrorLen = 4000

// clip returns s as valid UTF-8 without NUL bytes (which PostgreSQL's text
// refuses), cut to at most n bytes on a character boundary, with tail
// appended when it was cut. Every database refuses a string cut in the
// middle of a character, or holding invalid UTF-8, in a UTF-8 column.
func clip(s string, n int, tail string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + tail
}

// asciiText returns s with every character outside printable ASCII
// escaped as Go would quote it.
func asciiText(s string) string {
	q := strconv.QuoteToASCII(s)
	return q[1 : len(q)-1]
}

func (r *Relay) lostLeases(ctx context.Context, n int) {
	r.stats.lostLeases.Add(uint64(n))
	r.o.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "outbox: lease lost: another relay claimed rows this relay was delivering; they may be delivered twice (raise WithLease above the time the dispatcher takes)",
		slog.Int("rows", n), slog.String("owner", r.owner))
}

// leaseLoop renews the leases of the rows this relay holds every third of
// the lease, so that a batch the dispatcher is still retrying is not
// claimed by another relay.
func (r *Relay) leaseLoop() {
	tick := time.NewTicker(r.o.cfg.lease / 3)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-r.ctx.Done():
			return
		}
		if err := r.renew(r.ctx); err != nil && r.ctx.Err() == nil {
			r.report(r.ctx, &Error{Op: "renew leases", Table: r.o.table, Err: err})
		}
	}
}

// renew extends the leases of the rows this relay holds, by id, so that a
// row whose outcome could not be recorded is not kept alive with them.
func (r *Relay) renew(ctx context.Context) error {
	ids := r.heldIDs()
	slices.Sort(ids) // a fixed lock order: renewals of two relays cannot deadlock
	end := time.Now().Add(r.o.cfg.lease).UnixMilli()
	for chunk := range slices.Chunk(ids, idChunk) {
		q := r.o.q.renew + fmt.Sprintf(" AND id IN (%s)", r.o.d.phs(3, len(chunk)))
		if _, err := r.o.db.ExecContext(ctx, q, idArgs(chunk, end, r.owner)...); err != nil {
			return err
		}
	}
	return nil
}

// pruneEvery is how often a relay deletes delivered rows past retention.
const pruneEvery = time.Minute

func (r *Relay) pruneLoop() {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-r.ctx.Done():
			return
		}
		if _, err := r.o.Prune(r.ctx); err != nil && r.ctx.Err() == nil {
			r.report(r.ctx, &Error{Op: "prune", Table: r.o.table, Err: err})
		}
		t.Reset(pruneEvery)
	}
}

// report logs err and passes it to the error handler.
func (r *Relay) report(ctx context.Context, err error) {
	r.stats.errors.Add(1)
	r.o.report(ctx, err)
}

func (o *Outbox) report(ctx context.Context, err error) {
	o.cfg.logger.LogAttrs(ctx, slog.LevelError, "outbox: "+errorKind(err), slog.Any("error", err))
	if o.cfg.onError != nil {
		func() {
			defer func() {
				if v := recover(); v != nil {
					o.cfg.logger.LogAttrs(ctx, slog.LevelError, "outbox: error handler panicked", slog.Any("panic", v))
				}
			}()
			o.cfg.onError(ctx, err)
		}()
	}
}

func errorKind(err error) string {
	var re *RowError
	if errors.As(err, &re) {
		return "row dead"
	}
	return "database statement failed"
}

// Error is a database statement of the outbox or a relay that failed. The
// relay goes on; rows it could not record are sent again when their lease
// runs out.
type Error struct {
	// Op says what the statement was for: "claim", "mark delivered",
	// "record failed rows", "renew leases", "prune" or "listen"; "check
	// schema" for a table that New with [WithoutMigrate] finds unfit.
	Op string
	// Table is the outbox table.
	Table string
	// Err is the driver's error.
	Err error
}

func (e *Error) Error() string {
	return fmt.Sprintf("outbox: %s on table %s: %v", e.Op, e.Table, e.Err)
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// RowError reports a row that will not be delivered without an operator: a
// backend refused it for good, its attempts ran out, or it could not be
// decoded. The row stays in the table as dead; [Outbox.Redrive] sends it
// again.
type RowError struct {
	// Table is the outbox table.
	Table string
	// ID is the row's id.
	ID int64
	// Attempts is the number of hand-offs made.
	Attempts int
	// Dead is true when the row was marked dead.
	Dead bool
	// Err says what each failing backend answered.
	Err error
}

func (e *RowError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "outbox: row %d of %s failed after %d attempts", e.ID, e.Table, e.Attempts)
	if e.Dead {
		b.WriteString(" and is dead (re-drive it with Outbox.Redrive once the cause is fixed)")
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

// Unwrap returns Err.
func (e *RowError) Unwrap() error { return e.Err }
