package outbox

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/internal/lifecycle"
	"github.com/gormpurge/gormpurge/observe"
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

	lc       *lifecycle.Lifecycle // owns every goroutine of the relay
	ctx      context.Context      // lc.Context(): cancelled when Close gives up, then when it ends
	stopping <-chan struct{}      // lc.Stopping(): closed when Close begins: claim no more
	wake     chan struct{}        // capacity 1: rows may be waiting
	slots    chan struct{}        // one per batch in flight
	busy     lifecycle.Group      // the claim in progress, if any, and the batches in flight; added to only by the claim loop
	claims   atomic.Uint64        // claims that have returned, counted before busy ends their count; for tests

	heldMu sync.Mutex
	held   map[int64]struct{} // rows claimed and not yet recorded

	stats relayCounters

	unwatch      func()       // removes the relay's Source from the observer; nil without one
	statusWarned atomic.Int64 // when the Source last logged at Warn, Unix ns
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
// ([WithBatchSize], [WithConcurrency], [WithLease], [WithRetry], ...);
// with [WithObserver] it registers its observe.Source with the observer.
// Each row is submitted with its Origin (observe.ContextWithOrigin): when
// it was written and the traceparent it carries.
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
	}
	r.lc = lifecycle.New(lifecycle.Hooks{Drain: r.drain, Stopped: r.stopped})
	r.ctx, r.stopping = r.lc.Context(), r.lc.Stopping()
	o.addRelay(r)
	r.watch()
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
// them again) and returns an error wrapping ctx's cause. A Close that finds
// no row held and no claim in progress returns nil, even if ctx has ended.
//
// Close then gives back any row whose outcome it could not record. Recording
// a batch's outcome gets up to 10 seconds of its own, so Close can return
// that long after ctx ends. Close does not close the dispatcher; close it
// after the relay. Close may be called more than once and concurrently:
// the first call does the work; the others wait for it (or for their own
// ctx) and return nil. With [WithObserver], Close removes the relay's
// Source from the observer once its goroutines have stopped.
func (r *Relay) Close(ctx context.Context) error {
	return r.lc.Close(ctx)
}

// drain is the Close hook that waits, within ctx, for the claim in progress,
// if any, and the batches in flight to be recorded. It stops busy first, so
// that no claim starts while drain waits: a claim is counted in busy before
// it starts, and its batch takes its place there. With nothing in flight
// drain returns nil at once, even if ctx has ended.
func (r *Relay) drain(ctx context.Context) error {
	r.o.removeRelay(r)
	r.busy.Stop()
	if err := r.busy.Wait(ctx); err == nil {
		return nil
	}
	// The lifecycle cancels r.ctx next: the claim stops, and batches give
	// their rows back.
	return fmt.Errorf("outbox: relay closed with %d rows unsettled: %w", r.heldCount(), context.Cause(ctx))
}

// stopped is the Close hook that runs once every goroutine has returned.
// Rows whose outcome could not be recorded are still leased to this relay:
// it gives them back now rather than when the lease runs out.
func (r *Relay) stopped(_ context.Context, err error) error {
	if r.unwatch != nil {
		r.unwatch()
	}
	rctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	if _, rerr := r.o.db.ExecContext(rctx, r.o.q.release, time.Now().UnixMilli(), r.owner); rerr != nil {
		r.report(rctx, &Error{Op: "release leases", Table: r.o.table, Err: rerr})
	}
	return err
}

// claimLoop claims batches while there are due rows and free slots, and
// waits for a wake-up or the poll interval when there are none. Each claim
// is counted in busy, and the batch it claims, if any, ends the count.
func (r *Relay) claimLoop() {
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
		if !r.busy.Add() { // drain has begun (Stopping alone could race with its check)
			<-r.slots
			return
		}
		rows, err := r.claim(r.ctx)
		if err == nil {
			rows = r.hold(rows)
		}
		r.claims.Add(1)
		if err != nil || len(rows) == 0 {
			r.busy.Done()
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
		r.lc.Go(func() { r.deliver(rows) }) // ends the claim's count in busy
		if len(rows) < r.o.cfg.batchSize && !wait() {
			return
		}
	}
}

// deliver submits a claimed batch, waits for every backend to settle each
// row, and records the outcomes. It ends the count in busy of the claim
// that claimed rows.
func (r *Relay) deliver(rows []claimedRow) {
	defer r.busy.Done()
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
		// The dispatcher links its attempts to the transaction that
		// wrote the row, and measures the latency from its write.
		ctx := observe.ContextWithOrigin(r.ctx, c.origin)
		t, err := r.d.Submit(ctx, c.req, dispatcher.WithBackends(todo...))
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
		if _, err := r.o.db.ExecContext(ctx, r.o.renewQuery(len(chunk)), idArgs(chunk, end, r.owner)...); err != nil {
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
