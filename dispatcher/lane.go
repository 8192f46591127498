package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/gormpurge/gormpurge/backends"
)

// errWouldBlock tells Enqueue that a lane under the Block policy is full.
var errWouldBlock = errors.New("dispatcher: would block")

// lane is one backend's queue, batcher and workers: the dispatcher's core.
// It queues requests, merges those of a linger window into a group, cuts
// the group into batches, paces and retries them, and isolates the backend
// from the others. Policies are layers around it (layers.go): admitters
// decide what it queues for a request, observers consume how its batches
// ended; a new policy is a new layer, not a change here.
//
// Its verbs, each with one meaning: a lane admits a request (its layers
// decide what to queue for it), accepts it into its queue (push) or drops
// it (drop: it never reaches the backend, counted and reported); takes the
// queue into a group of batches (take); delivers each batch (deliver:
// calls the backend until the batch is delivered or fails for good);
// finishes it (finish: counts and reports how it ended and tells the
// observers); and settles what ended (settle, settleGroup, settleTickets:
// the batch, then its group, then the tickets of the group's requests). A
// batch the stop interrupts is abandoned (abandon), and Close drops it
// with what is still queued (leftovers).
type lane struct {
	d          *Dispatcher
	backend    backends.Backend
	name       string
	limits     backends.Limits
	maxObjects int                 // per batch: the backend's limit and the rate limiter's burst; 0 means none
	pace       pacing              // rate limits and the backend's own pacing
	purgeAller backends.PurgeAller // nil unless the backend purges everything
	admitters  []admitter          // in order: each sees what the previous one made of the request
	observers  []observer
	work       chan *batch   // batcher to workers, unbuffered
	wake       chan struct{} // capacity 1: something for the batcher to look at

	mu         sync.Mutex
	queue      []item
	queuedObjs int
	nextSeq    uint64
	groups     []*group      // unsettled groups, oldest first
	inFlight   int           // objects taken from the queue and not settled
	flushers   int           // Flush calls waiting on this lane
	draining   bool          // Close has begun: accept nothing, linger no more
	space      chan struct{} // closed and replaced when the queue shrinks
	progress   chan struct{} // closed and replaced when items settle
	abandoned  []backends.Request

	n laneCounters
}

// laneCounters are a lane's counters of objects, and of retried calls.
type laneCounters struct {
	enqueued, coalesced, delivered, failed, dropped, retriedObjects atomic.Uint64
	retried                                                         atomic.Uint64 // calls
}

// pacing is what makes a lane wait before a call: its rate limits and the
// backend's own pacing.
type pacing struct {
	requests *rate.Limiter     // nil when unlimited
	objects  *rate.Limiter     // nil when unlimited
	pacer    backends.Pacer    // nil unless the backend paces itself
	allPacer backends.AllPacer // nil unless the backend paces its purges of everything
}

// newLane returns the lane of b, without layers.
func newLane(d *Dispatcher, b backends.Backend) *lane {
	l := &lane{
		d:        d,
		backend:  b,
		name:     b.Name(),
		limits:   b.Limits(),
		work:     make(chan *batch),
		wake:     make(chan struct{}, 1),
		space:    make(chan struct{}),
		progress: make(chan struct{}),
	}
	l.maxObjects = l.limits.MaxObjects
	l.pace.pacer, _ = b.(backends.Pacer)
	l.purgeAller, _ = b.(backends.PurgeAller)
	l.pace.allPacer, _ = b.(backends.AllPacer)
	if r, ok := d.cfg.rates[l.name]; ok {
		if r.requests > 0 {
			l.pace.requests = rate.NewLimiter(rate.Limit(r.requests), 1)
		}
		if r.objects > 0 {
			burst := int(math.Max(1, math.Floor(r.objects)))
			l.pace.objects = rate.NewLimiter(rate.Limit(r.objects), burst)
			if l.maxObjects == 0 || burst < l.maxObjects {
				l.maxObjects = burst
			}
		}
	}
	return l
}

// signal wakes the batcher if it is not already due to wake.
func (l *lane) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// broadcastLocked closes *ch to wake everyone waiting on it and replaces it.
// l.mu must be held.
func broadcastLocked(ch *chan struct{}) {
	close(*ch)
	*ch = make(chan struct{})
}

// admit returns what the lane queues for it, as its admitters decide.
func (l *lane) admit(ctx context.Context, it item) item {
	for _, a := range l.admitters {
		it = a.admit(ctx, it)
	}
	return it
}

// push appends it to the queue if there is room, or applies the full-queue
// policy. It returns errWouldBlock under Block when the queue is full.
func (l *lane) push(it item) error {
	l.mu.Lock()
	if l.draining {
		l.mu.Unlock()
		l.drop(it, ErrClosed)
		return ErrClosed
	}
	var oldest item
	if len(l.queue) >= l.d.cfg.queueSize {
		switch l.d.cfg.policy {
		case Block:
			l.mu.Unlock()
			return errWouldBlock
		case Reject:
			l.mu.Unlock()
			err := fmt.Errorf("%w: backend %q holds %d requests", ErrQueueFull, l.name, l.d.cfg.queueSize)
			l.drop(it, err)
			return err
		case DropOldest:
			oldest = l.queue[0]
			l.queue[0] = item{} // let the collector have it
			l.queue = l.queue[1:]
			l.queuedObjs -= oldest.req.Len()
		}
	}
	l.appendLocked(it)
	l.mu.Unlock()
	l.signal()
	if !oldest.req.Empty() {
		l.drop(oldest, fmt.Errorf("%w: backend %q dropped its oldest request", ErrQueueFull, l.name))
		// Flush may be waiting on the dropped request; tell it after the
		// report, as finish does.
		l.mu.Lock()
		broadcastLocked(&l.progress)
		l.mu.Unlock()
	}
	return nil
}

// pushWait waits for room in the queue until ctx is done or Close begins.
func (l *lane) pushWait(ctx context.Context, it item) error {
	for {
		l.mu.Lock()
		space := l.space
		l.mu.Unlock()
		if err := l.push(it); !errors.Is(err, errWouldBlock) {
			return err
		}
		select {
		case <-space:
		case <-l.d.lc.Stopping():
			l.drop(it, ErrClosed)
			return ErrClosed
		case <-ctx.Done():
			err := fmt.Errorf("%w: backend %q: %w", ErrQueueFull, l.name, context.Cause(ctx))
			l.drop(it, err)
			return err
		}
	}
}

func (l *lane) appendLocked(it item) {
	l.queue = append(l.queue, it)
	l.nextSeq++
	l.queuedObjs += it.req.Len()
	l.n.enqueued.Add(uint64(it.req.Len()))
}

// drop counts, logs and reports an item whose request will not reach the
// backend, then settles its ticket part, if any, and its origin as Dropped
// with err.
func (l *lane) drop(it item, err error) {
	l.dropped(it.req, err)
	it.tk.settle(BackendOutcome{Backend: l.name, Outcome: Dropped, Err: err})
	l.settleOrigin(it.org, Dropped)
}

// dropped counts, logs and reports r, which will not reach the backend.
func (l *lane) dropped(r backends.Request, err error) {
	l.n.dropped.Add(uint64(r.Len()))
	l.d.report(Report{Backend: l.name, Outcome: Dropped, Request: r, Err: err})
}

// urgentLocked reports whether the batcher should stop lingering.
func (l *lane) urgentLocked() bool {
	return l.flushers > 0 || l.draining ||
		len(l.queue) >= l.d.cfg.queueSize ||
		(l.maxObjects > 0 && l.queuedObjs >= l.maxObjects)
}

func (l *lane) urgent() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.urgentLocked()
}

// batchLoop is the lane's batcher: it waits for requests, lingers, merges
// them and hands the batches to the workers, until the dispatcher stops.
func (l *lane) batchLoop() {
	for {
		select {
		case <-l.wake:
		case <-l.d.lc.Done():
			return
		}
		if !l.linger() {
			return
		}
		batches := l.take()
		for i, b := range batches {
			select {
			case l.work <- b:
			case <-l.d.lc.Done():
				for _, b := range batches[i:] {
					l.abandon(b, Report{})
				}
				return
			}
		}
	}
}

// linger waits for the linger window to pass or to be cut short. It returns
// false if the dispatcher stopped meanwhile.
func (l *lane) linger() bool {
	if l.d.cfg.linger <= 0 || l.urgent() {
		return true
	}
	t := time.NewTimer(l.d.cfg.linger)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case <-l.wake:
			if l.urgent() {
				return true
			}
		case <-l.d.lc.Done():
			return false
		}
	}
}

// take empties the queue into a new group and returns its batches.
func (l *lane) take() []*batch {
	l.mu.Lock()
	items := l.queue
	l.queue = nil
	if len(items) == 0 {
		l.mu.Unlock()
		return nil
	}
	l.queuedObjs = 0
	g := &group{first: l.nextSeq - uint64(len(items))}
	l.groups = append(l.groups, g)
	broadcastLocked(&l.space)
	l.mu.Unlock()

	// Merge and cut outside the lock: Limits.Size may be slow.
	batches, objects := l.batches(g, items)
	l.trackOrigins(g, items, batches)
	var tickets []item // items, if one has a ticket
	if slices.ContainsFunc(items, func(it item) bool { return it.tk != nil }) {
		tickets = items
	}

	l.mu.Lock()
	g.open = len(batches)
	g.tickets = tickets
	l.inFlight += objects
	l.mu.Unlock()
	if len(batches) == 0 {
		l.settleGroup(g) // only for empty requests, which are never queued
	}
	return batches
}

// settle records that b has ended as end says, and settles its group if b
// was the group's last batch.
func (l *lane) settle(b *batch, end batchEnd) {
	g := b.g
	l.mu.Lock()
	l.inFlight -= b.req.Len()
	g.open--
	last := g.open == 0
	if g.tickets == nil {
		if last {
			l.settleGroupLocked(g)
		}
		l.mu.Unlock()
		return
	}
	g.ends = append(g.ends, end)
	l.mu.Unlock()
	if last {
		l.settleGroup(g) // nothing writes to g any more
	}
}

// settleGroup settles g, whose batches have all ended: first the tickets of
// its items, without the lock, which their waiters may want; then g itself,
// so that a Flush that returns has seen the tickets done.
func (l *lane) settleGroup(g *group) {
	if g.tickets != nil {
		l.settleTickets(g, nil)
	}
	l.mu.Lock()
	l.settleGroupLocked(g)
	l.mu.Unlock()
}

// settleGroupLocked removes g, settled, from the lane and wakes Flush and
// Close. l.mu must be held.
func (l *lane) settleGroupLocked(g *group) {
	if i := slices.Index(l.groups, g); i >= 0 {
		l.groups = slices.Delete(l.groups, i, i+1)
	}
	broadcastLocked(&l.progress)
}

// abandon records a batch that the stop interrupted, for Close to report;
// rep holds what its attempts so far achieved. Its group never settles:
// leftovers settles the group's tickets.
func (l *lane) abandon(b *batch, rep Report) {
	l.mu.Lock()
	l.inFlight -= b.req.Len()
	l.abandoned = append(l.abandoned, b.req)
	if b.g.tickets != nil {
		b.g.ends = append(b.g.ends, batchEnd{req: b.req, outcome: Dropped, attempts: rep.Attempts, result: rep.Result})
	}
	l.mu.Unlock()
	l.endOrigins(b, nil)
}

// settledBelowLocked returns the lowest seq not yet settled: every item with
// a smaller seq was delivered, failed or dropped.
func (l *lane) settledBelowLocked() uint64 {
	w := l.nextSeq - uint64(len(l.queue)) // the oldest queued item, or nextSeq
	for _, g := range l.groups {
		w = min(w, g.first)
	}
	return w
}

// startFlush registers a Flush and returns the seq it waits for.
func (l *lane) startFlush() uint64 {
	l.mu.Lock()
	l.flushers++
	target := l.nextSeq
	l.mu.Unlock()
	l.signal()
	return target
}

func (l *lane) endFlush() {
	l.mu.Lock()
	l.flushers--
	l.mu.Unlock()
}

// startDrain makes the lane refuse new requests and stop lingering.
func (l *lane) startDrain() {
	l.mu.Lock()
	l.draining = true
	l.mu.Unlock()
	l.signal()
}

func (l *lane) lastSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nextSeq
}

// waitSettled waits until every item with a seq below target has settled.
func (l *lane) waitSettled(ctx context.Context, target uint64) error {
	for {
		l.mu.Lock()
		done := l.settledBelowLocked() >= target
		progress := l.progress
		l.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-progress: // progress first, even with ctx ended: look again
			continue
		default:
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-l.d.lc.Done():
			return ErrClosed
		}
	}
}

// leftovers returns, once the goroutines have stopped, everything the lane
// did not deliver, and counts and reports it as dropped. It settles the
// tickets of the requests still queued, and those of the groups that an
// abandoned batch kept from settling.
func (l *lane) leftovers(cause error) backends.Request {
	l.mu.Lock()
	var urls, tags []string
	queued, groups := l.queue, l.groups
	for _, it := range queued {
		urls = append(urls, it.req.URLs...)
		tags = append(tags, it.req.Tags...)
	}
	for _, r := range l.abandoned {
		urls = append(urls, r.URLs...)
		tags = append(tags, r.Tags...)
	}
	l.queue, l.abandoned, l.groups, l.queuedObjs, l.inFlight = nil, nil, nil, 0, 0
	l.mu.Unlock()
	left := backends.NewRequest(urls, tags)
	err := ErrClosed
	if cause != nil {
		err = fmt.Errorf("%w before delivery: %w", ErrClosed, cause)
	}
	if !left.Empty() {
		l.dropped(left, err)
	}
	for _, it := range queued {
		it.tk.settle(BackendOutcome{Backend: l.name, Outcome: Dropped, Err: err})
		l.settleOrigin(it.org, Dropped)
	}
	for _, g := range groups {
		if g.tickets != nil {
			l.settleTickets(g, err)
		}
	}
	return left
}
