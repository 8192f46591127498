package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync/atomic"

	"github.com/gormpurge/gormpurge/backends"
)

// ErrUnknownBackend is matched by the error Submit returns when [Only] names
// a backend that the Dispatcher was not created with.
var ErrUnknownBackend = errors.New("dispatcher: unknown backend")

// A SubmitOption configures one call to [Dispatcher.Submit].
type SubmitOption func(*submitConfig)

type submitConfig struct {
	only  bool     // Only was given
	names []string // the backends Only named
}

// Only limits a Submit to the backends named, for example to hand a request
// again to the backends that did not take it the first time. Several Only
// options add up. Submit returns an error matching [ErrUnknownBackend] and
// naming any name that is not a backend's, and an error if no name is given;
// either way it returns no Ticket.
func Only(names ...string) SubmitOption {
	return func(c *submitConfig) {
		c.only = true
		c.names = append(c.names, names...)
	}
}

// Submit hands r to the backends like [Dispatcher.Enqueue], with the same
// full-queue policy and the same error, and returns a [Ticket] that is done
// once every targeted backend (all of them, or those named with [Only]) has
// settled r: delivered it, failed for good, or dropped it. Use it when the
// caller must know what became of each request, as a durable outbox does
// before it marks a row delivered; Enqueue is cheaper when it need not.
//
// Submit returns a Ticket whenever r was offered to the backends, also
// with an error saying that some backend's queue refused it: that backend's
// outcome is then already settled as [Dropped] with that error. An empty r
// gets a Ticket that is already done, with no outcomes. After Close has
// begun, Submit returns [ErrClosed] and a done Ticket whose outcomes are
// Dropped with ErrClosed. The zero Dispatcher returns no Ticket and
// ErrClosed.
//
// By the time a Flush returns nil, the Tickets of the requests submitted
// before it are done; by the time Close returns, every Ticket that Submit
// has returned is done.
func (d *Dispatcher) Submit(ctx context.Context, r backends.Request, opts ...SubmitOption) (*Ticket, error) {
	if d.lanes == nil {
		return nil, ErrClosed
	}
	lanes, err := d.targets(opts)
	if err != nil {
		return nil, err
	}
	r, invalid := d.canonical(ctx, r)
	if r.Empty() {
		return newTicket(nil), invalid
	}
	t := newTicket(lanes)
	err = d.offer(ctx, r, lanes, t.parts)
	if invalid != nil {
		err = errors.Join(invalid, err)
	}
	return t, err
}

// targets returns the lanes opts select, in New's order.
func (d *Dispatcher) targets(opts []SubmitOption) ([]*lane, error) {
	if len(opts) == 0 {
		return d.lanes, nil
	}
	var cfg submitConfig // on the heap, as opts take its address: only now
	for _, opt := range opts {
		opt(&cfg)
	}
	if !cfg.only {
		return d.lanes, nil
	}
	if len(cfg.names) == 0 {
		return nil, errors.New("dispatcher: Submit: Only names no backend")
	}
	var unknown []string
	for _, name := range cfg.names {
		if !slices.ContainsFunc(d.lanes, func(l *lane) bool { return l.name == name }) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		known := make([]string, len(d.lanes))
		for i, l := range d.lanes {
			known[i] = l.name
		}
		return nil, fmt.Errorf("%w: Submit: Only(%q): the backends are %q", ErrUnknownBackend, unknown, known)
	}
	lanes := make([]*lane, 0, len(d.lanes))
	for _, l := range d.lanes {
		if slices.Contains(cfg.names, l.name) {
			lanes = append(lanes, l)
		}
	}
	return lanes, nil
}

// Ticket follows one request given to [Dispatcher.Submit] until every
// targeted backend has settled it. It is safe for concurrent use. Only
// Submit makes Tickets.
type Ticket struct {
	done    chan struct{} // closed when pending reaches 0
	pending atomic.Int64
	parts   []ticketPart // one per targeted backend, in New's order
}

// ticketPart is one backend's share of a Ticket. The lane that holds the
// request settles it exactly once.
type ticketPart struct {
	t       *Ticket
	settled atomic.Bool
	outcome BackendOutcome // written once, before the part is counted settled
}

// newTicket returns a Ticket with a part for each lane, done at once if
// there are none.
func newTicket(lanes []*lane) *Ticket {
	t := &Ticket{done: make(chan struct{}), parts: make([]ticketPart, len(lanes))}
	for i, l := range lanes {
		t.parts[i].t = t
		t.parts[i].outcome.Backend = l.name
	}
	t.pending.Store(int64(len(lanes)))
	if len(lanes) == 0 {
		close(t.done)
	}
	return t
}

// settle records o as the part's outcome, and closes the Ticket's Done
// channel if it was the last part. A nil part (a request from Enqueue) and
// a part already settled are ignored.
func (p *ticketPart) settle(o BackendOutcome) {
	if p == nil || !p.settled.CompareAndSwap(false, true) {
		return
	}
	p.outcome = o
	if p.t.pending.Add(-1) == 0 {
		close(p.t.done)
	}
}

// partAt returns &parts[i], or nil when parts is nil.
func partAt(parts []ticketPart, i int) *ticketPart {
	if parts == nil {
		return nil
	}
	return &parts[i]
}

// Done returns a channel that is closed once every targeted backend has
// settled the request. Select on it to wait for several Tickets at once.
func (t *Ticket) Done() <-chan struct{} { return t.done }

// Outcomes returns how each targeted backend settled the request, one
// entry per backend in the order given to [New]. It returns nil until Done
// is closed, and an empty slice for a request that targeted nothing, such
// as an empty one.
func (t *Ticket) Outcomes() []BackendOutcome {
	select {
	case <-t.done:
	default:
		return nil
	}
	out := make([]BackendOutcome, len(t.parts))
	for i := range t.parts {
		out[i] = t.parts[i].outcome
	}
	return out
}

// Wait waits until Done is closed, then returns Outcomes. If ctx ends
// first, it returns context.Cause(ctx); the request is still on its way.
func (t *Ticket) Wait(ctx context.Context) ([]BackendOutcome, error) {
	select {
	case <-t.done:
		return t.Outcomes(), nil
	default:
	}
	select {
	case <-t.done:
		return t.Outcomes(), nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// BackendOutcome is how one backend settled a request given to Submit.
//
// The backend merges requests into batches and cuts batches to its limits,
// so one request's objects may travel in several batches, shared with
// other requests. Outcome is [Failed] when a batch holding one of the
// request's objects failed for good; when that batch's error names the
// objects that failed ([backends.Partial]), only if one of them is the
// request's. Otherwise it is [Dropped] when the request, or a batch holding
// one of its objects, never reached the backend: refused or dropped by the
// full-queue policy, or left when Close ran out of time. Otherwise it is
// [Delivered]. A request that [WithEscalation] replaced for the backend is
// settled by the batches that purged the tags, or everything, instead; so
// is a request that a purge of everything subsumed.
type BackendOutcome struct {
	// Backend is the backend's name.
	Backend string
	// Outcome says how the backend settled the request.
	Outcome Outcome
	// Err is nil when the request was delivered. Otherwise it is the error
	// of the batch that failed, or why the request was dropped: an error
	// matching [ErrQueueFull] or [ErrClosed].
	Err error
	// Attempts is the number of calls to Purge made for the batch that
	// decided the outcome: one that failed, else one that delivered some of
	// the request's objects.
	Attempts int
	// Result is the backend's answer to that batch's last attempt; the zero
	// value when the backend was never called.
	Result backends.Result
}

// batchEnd is how one batch of a group holding tickets ended.
type batchEnd struct {
	req      backends.Request
	outcome  Outcome // Dropped for a batch abandoned at Close
	err      error   // nil for Dropped: leftovers supplies it
	attempts int
	result   backends.Result
	// When partial, the batch failed and failed holds the objects of req
	// that its error names, normalised; the others were delivered.
	partial bool
	failed  backends.Request
}

// fails reports whether the object k of e's batch failed, e having
// failed.
func (e *batchEnd) fails(k objKey) bool {
	if !e.partial {
		return true
	}
	list := e.failed.URLs
	if k.tag {
		list = e.failed.Tags
	}
	_, found := slices.BinarySearch(list, k.s)
	return found
}

// objKey identifies an object: a URL, or a tag when tag is set.
type objKey struct {
	tag bool
	s   string
}

// severity orders outcomes for a request whose objects ended differently:
// one object failed for good decides, then one dropped.
func severity(o Outcome) int {
	switch o {
	case Failed:
		return 2
	case Dropped:
		return 1
	default:
		return 0
	}
}

// resolve settles the tickets of g's items from how g's batches ended. dropErr is the error of abandoned batches. It runs
// without the lane's lock, once nothing writes to g.
func (l *lane) resolve(g *group, dropErr error) {
	if dropErr == nil {
		dropErr = ErrClosed
	}
	// where says which batch holds each object; with one batch, there is
	// no need to look.
	var where map[objKey]int
	if len(g.ends) > 1 {
		n := 0
		for _, e := range g.ends {
			n += e.req.Len()
		}
		where = make(map[objKey]int, n)
		for i, e := range g.ends {
			for _, u := range e.req.URLs {
				where[objKey{s: u}] = i
			}
			for _, t := range e.req.Tags {
				where[objKey{tag: true, s: t}] = i
			}
		}
	}
	for _, it := range g.tickets {
		if it.tk != nil {
			it.tk.settle(l.outcomeOf(it.req, g.ends, where, dropErr))
		}
	}
}

// outcomeOf returns how the batches in ends settled r, whose objects they
// hold; where maps each object to its batch when there are several.
func (l *lane) outcomeOf(r backends.Request, ends []batchEnd, where map[objKey]int, dropErr error) BackendOutcome {
	if len(ends) == 1 && !ends[0].partial {
		return l.outcomeFrom(ends, 0, ends[0].outcome, dropErr)
	}
	var (
		seen    bool
		worst   = Delivered // for an empty request
		decided = -1        // index in ends of the batch that decides
	)
	for k := range keys(r) {
		i, o := locate(k, ends, where)
		if !seen || severity(o) > severity(worst) {
			seen, worst, decided = true, o, i
		}
		if o == Failed {
			break // nothing is worse
		}
	}
	return l.outcomeFrom(ends, decided, worst, dropErr)
}

// locate returns the index in ends of the batch holding k, or -1 if none
// does, and how k ended in it.
func locate(k objKey, ends []batchEnd, where map[objKey]int) (int, Outcome) {
	i := 0
	if where != nil {
		var ok bool
		if i, ok = where[k]; !ok {
			return -1, Dropped
		}
	}
	if i >= len(ends) {
		return -1, Dropped
	}
	if e := &ends[i]; e.outcome != Failed || e.fails(k) {
		return i, e.outcome
	}
	return i, Delivered // not among the objects a partial failure names
}

// keys yields r's objects.
func keys(r backends.Request) iter.Seq[objKey] {
	return func(yield func(objKey) bool) {
		for _, u := range r.URLs {
			if !yield(objKey{s: u}) {
				return
			}
		}
		for _, t := range r.Tags {
			if !yield(objKey{tag: true, s: t}) {
				return
			}
		}
	}
}

// outcomeFrom returns outcome o for a request, with the attempts and
// result of ends[i], the batch that decided it (none when i < 0).
func (l *lane) outcomeFrom(ends []batchEnd, i int, o Outcome, dropErr error) BackendOutcome {
	bo := BackendOutcome{Backend: l.name, Outcome: o}
	if i >= 0 {
		bo.Attempts, bo.Result = ends[i].attempts, ends[i].result
	}
	switch {
	case o == Dropped:
		bo.Err = dropErr
	case o == Failed:
		bo.Err = ends[i].err
	}
	return bo
}

// intersect returns the objects of f that r holds, normalised. r must be
// normalised, as every batch is.
func intersect(r, f backends.Request) backends.Request {
	var urls, tags []string
	for _, u := range f.URLs {
		if _, ok := slices.BinarySearch(r.URLs, u); ok {
			urls = append(urls, u)
		}
	}
	for _, t := range f.Tags {
		if _, ok := slices.BinarySearch(r.Tags, t); ok {
			tags = append(tags, t)
		}
	}
	return backends.NewRequest(urls, tags)
}
