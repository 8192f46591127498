package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// item is one accepted request in a lane's queue. tk is the request's
// share of a Ticket, nil unless it came from Submit; esc is nil unless the
// request was escalated.
//
// The lane numbers items in the order it accepts them, and Flush waits on
// those numbers. The queue holds them without gaps, the newest being
// nextSeq-1, so an item's number is not stored: that keeps Enqueue's items
// small. For the same reason what only an escalated request needs lives
// behind esc.
type item struct {
	req backends.Request
	tk  *ticketPart
	esc *escalated
}

// escalated is what an item escalated by WithEscalation carries besides its
// request: for a Tags escalation req holds the tags, for All it holds the
// handoff as it was.
type escalated struct {
	all  bool     // purge everything: the item's group becomes one batch calling PurgeAll
	urls []string // with a Warmer: what to warm of the handoff's URLs, at most Above of them
}

// group is the set of queued items one linger window merged. It settles when
// its last batch does.
type group struct {
	first uint64 // seq of the group's first item
	open  int    // batches not yet settled

	// Only for a group holding an item from Submit, nil otherwise; guarded
	// by lane.mu until open reaches 0.
	tickets []item     // the group's items, some with a ticket
	ends    []batchEnd // how each of its batches ended, settled or abandoned
}

// batch is one call's worth of objects, cut to the backend's limits, or a
// purge of everything (all) that subsumes its group's objects, in req.
type batch struct {
	g    *group
	req  backends.Request
	err  error    // set when the objects can never fit: fail without calling
	all  bool     // call PurgeAll instead of Purge
	warm []string // what the Warmer gets once delivered: besides req's URLs, or instead of them when all
}

// lane is one backend's queue, batcher and workers.
type lane struct {
	d          *Dispatcher
	backend    backends.Backend
	name       string
	limits     backends.Limits
	maxObjects int             // per batch: the backend's limit and the rate limiter's burst; 0 means none
	reqLimit   *rate.Limiter   // nil when unlimited
	objLimit   *rate.Limiter   // nil when unlimited
	pacer      backends.Pacer  // nil unless the backend paces itself
	esc        *laneEscalation // nil unless WithEscalation names the backend
	warmer     Warmer          // nil unless WithWarmup names the backend
	work       chan *batch     // batcher to workers, unbuffered
	wake       chan struct{}   // capacity 1: something for the batcher to look at

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

	enqueued, coalesced, delivered, failed, dropped, retried atomic.Uint64
	escalatedHandoffs, escalatedURLs                         atomic.Uint64
}

// laneEscalation is a lane's WithEscalation, ready to apply.
type laneEscalation struct {
	Escalation
	purgeAller backends.PurgeAller // for All
	tags       []string            // Tags, normalised
	to         string              // what handoffs escalate to, for the log
}

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
	l.pacer, _ = b.(backends.Pacer)
	l.warmer = d.cfg.warmers[l.name]
	if e, ok := d.cfg.escalations[l.name]; ok {
		l.esc = &laneEscalation{Escalation: e, to: "all"}
		if e.All {
			l.esc.purgeAller = b.(backends.PurgeAller) // checked by New
		} else {
			l.esc.tags = backends.NewRequest(nil, e.Tags).Tags
			l.esc.to = fmt.Sprintf("tags %v", l.esc.tags)
		}
	}
	if r, ok := d.cfg.rates[l.name]; ok {
		if r.requests > 0 {
			l.reqLimit = rate.NewLimiter(rate.Limit(r.requests), 1)
		}
		if r.objects > 0 {
			burst := int(math.Max(1, math.Floor(r.objects)))
			l.objLimit = rate.NewLimiter(rate.Limit(r.objects), burst)
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

// escalates reports whether the lane's escalation replaces r: whether r
// names more distinct URLs than it allows. If so, it returns r's URLs
// normalised: a Request built by hand may repeat a URL or hold empty ones.
// offer calls it only for a handoff of more than Above URLs as given, so
// that the common case costs one comparison.
func (l *lane) escalates(r backends.Request) ([]string, bool) {
	if l.esc == nil || len(r.URLs) <= l.esc.Above {
		return nil, false
	}
	norm := backends.NewRequest(r.URLs, nil).URLs
	return norm, len(norm) > l.esc.Above
}

// escalate returns the item that replaces r, whose normalised URLs are
// urls, as the lane's escalation says, and counts and logs it.
func (l *lane) escalate(ctx context.Context, r backends.Request, urls []string, tk *ticketPart) item {
	l.escalatedHandoffs.Add(1)
	l.escalatedURLs.Add(uint64(len(urls)))
	l.d.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "dispatcher: escalated",
		slog.String("backend", l.name),
		slog.Int("urls", len(urls)),
		slog.String("to", l.esc.to))
	var it item
	if l.esc.All {
		// The handoff travels whole: the purge of everything subsumes it,
		// and Close reports it if it is left.
		it = item{req: r, tk: tk, esc: &escalated{all: true}}
	} else {
		it = item{req: backends.NewRequest(nil, slices.Concat(l.esc.tags, r.Tags)), tk: tk, esc: &escalated{}}
		if tk != nil {
			tk.replaced = true // its URLs are settled as the tags that replace them
		}
	}
	if l.warmer != nil {
		// Warm no more of the handoff than Above allows one handoff to
		// purge, so that a bulk change does not turn into as many page
		// fetches. A copy lets the rest of urls go.
		it.esc.urls = slices.Clone(urls[:min(len(urls), l.esc.Above)])
	}
	return it
}

// push appends it to the queue if there is room, or applies the full-queue
// policy. It returns errWouldBlock under Block when the queue is full.
func (l *lane) push(it item) error {
	l.mu.Lock()
	if l.draining {
		l.mu.Unlock()
		l.drop(it.req, it.tk, ErrClosed)
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
			l.drop(it.req, it.tk, err)
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
		l.drop(oldest.req, oldest.tk, fmt.Errorf("%w: backend %q dropped its oldest request", ErrQueueFull, l.name))
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
			l.drop(it.req, it.tk, ErrClosed)
			return ErrClosed
		case <-ctx.Done():
			err := fmt.Errorf("%w: backend %q: %w", ErrQueueFull, l.name, context.Cause(ctx))
			l.drop(it.req, it.tk, err)
			return err
		}
	}
}

func (l *lane) appendLocked(it item) {
	l.queue = append(l.queue, it)
	l.nextSeq++
	l.queuedObjs += it.req.Len()
	l.enqueued.Add(uint64(it.req.Len()))
}

// drop counts, logs and reports a request that will not reach the backend,
// then settles its ticket part tk, if any, as Dropped with err.
func (l *lane) drop(r backends.Request, tk *ticketPart, err error) {
	l.dropped.Add(uint64(r.Len()))
	l.report(Report{Backend: l.name, Outcome: Dropped, Request: r, Err: err})
	tk.settle(BackendOutcome{Backend: l.name, Outcome: Dropped, Err: err})
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
	var (
		urls, tags []string
		tickets    []item   // items, if one has a ticket
		all        bool     // an item asks to purge everything
		warm       []string // what the Warmer gets of the escalated handoffs
	)
	offered := 0
	for _, it := range items {
		urls = append(urls, it.req.URLs...)
		tags = append(tags, it.req.Tags...)
		offered += it.req.Len()
		if it.tk != nil {
			tickets = items
		}
		if it.esc != nil {
			all = all || it.esc.all
			warm = append(warm, it.esc.urls...)
		}
	}
	merged := backends.NewRequest(urls, tags)
	l.coalesced.Add(uint64(offered - merged.Len()))
	if all && l.warmer != nil {
		// A purge of everything warms what its escalated handoffs allow,
		// and the URLs of the others in full, as a batch of them would.
		for _, it := range items {
			if it.esc == nil {
				warm = append(warm, it.req.URLs...)
			}
		}
	}
	if len(warm) > 0 {
		warm = backends.NewRequest(warm, nil).URLs
	}

	var batches []*batch
	if all {
		// One purge of everything, sent after every item of the group was
		// queued, covers them all.
		batches = []*batch{{g: g, req: merged, all: true, warm: warm}}
	} else {
		batches = l.cutBatches(g, merged, warm)
	}

	l.mu.Lock()
	g.open = len(batches)
	g.tickets = tickets
	l.inFlight += merged.Len()
	l.mu.Unlock()
	if len(batches) == 0 {
		l.settleGroup(g) // only for empty requests, which are never queued
	}
	return batches
}

// cutBatches cuts merged, the objects of g, into batches. warm, the URLs of
// g's handoffs escalated to tags, goes with the batch that holds the
// escalation's first tag: they are warmed when it is delivered.
func (l *lane) cutBatches(g *group, merged backends.Request, warm []string) []*batch {
	parts, tooBig := cut(merged, l.limits, l.maxObjects)
	batches := make([]*batch, 0, len(parts)+len(tooBig))
	for _, p := range parts {
		batches = append(batches, &batch{g: g, req: p})
	}
	for _, p := range tooBig {
		err := backends.Permanent(fmt.Errorf("dispatcher: object of %d bytes exceeds backend %q's MaxBytes of %d",
			l.limits.SizeOf(p), l.name, l.limits.MaxBytes))
		batches = append(batches, &batch{g: g, req: p, err: err})
	}
	if len(warm) > 0 {
		for _, b := range batches {
			if _, ok := slices.BinarySearch(b.req.Tags, l.esc.tags[0]); ok {
				b.warm = warm
				break
			}
		}
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
		l.resolve(g, nil)
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
		l.drop(left, nil, err)
	}
	for _, it := range queued {
		it.tk.settle(BackendOutcome{Backend: l.name, Outcome: Dropped, Err: err})
	}
	for _, g := range groups {
		if g.tickets != nil {
			l.resolve(g, err)
		}
	}
	return left
}

func (l *lane) stats() BackendStats {
	l.mu.Lock()
	queued, inFlight := l.queuedObjs, l.inFlight
	l.mu.Unlock()
	return BackendStats{
		Backend:   l.name,
		Queued:    queued,
		InFlight:  inFlight,
		Enqueued:  l.enqueued.Load(),
		Coalesced: l.coalesced.Load(),
		Delivered: l.delivered.Load(),
		Failed:    l.failed.Load(),
		Dropped:   l.dropped.Load(),
		Retried:   l.retried.Load(),

		Escalated:     l.escalatedHandoffs.Load(),
		EscalatedURLs: l.escalatedURLs.Load(),
	}
}
