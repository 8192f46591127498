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

// ErrUnknownBackend is matched by the error Submit returns when
// [WithBackends] names a backend that the Dispatcher was not created with.
var ErrUnknownBackend = errors.New("dispatcher: unknown backend")

// A SubmitOption configures one call to [Dispatcher.Submit].
type SubmitOption func(*submitConfig)

type submitConfig struct {
	only  bool     // WithBackends was given
	names []string // the backends WithBackends named
}

// WithBackends limits a Submit to the backends named, for example to hand a
// request again to the backends that did not take it the first time.
// Several WithBackends options add up. Submit returns an error matching
// [ErrUnknownBackend] and naming any name that is not a backend's, and an
// error if no name is given; either way it returns no Ticket. Defaults to
// every backend.
func WithBackends(names ...string) SubmitOption {
	return func(c *submitConfig) {
		c.only = true
		c.names = append(c.names, names...)
	}
}

// Submit hands r to the backends like [Dispatcher.Enqueue], with the same
// full-queue policy and the same error, and returns a [Ticket] that is done
// once every targeted backend (all of them, or those named with
// [WithBackends]) has
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
	asked, invalid := d.canonical(ctx, r)
	if asked.Empty() {
		return newTicket(nil, asked), invalid
	}
	t := newTicket(lanes, asked)
	err = d.offer(ctx, withFormSpellings(asked), lanes, t.parts)
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
		if opt == nil {
			return nil, errors.New("dispatcher: Submit: a SubmitOption is nil: remove it, or pass one made by WithBackends")
		}
		opt(&cfg)
	}
	if !cfg.only {
		return d.lanes, nil
	}
	if len(cfg.names) == 0 {
		return nil, errors.New("dispatcher: Submit: WithBackends() names no backend: name at least one, or leave the option out for every backend")
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
		return nil, fmt.Errorf("%w: Submit: WithBackends(%q): the backends are %q", ErrUnknownBackend, unknown, known)
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
	parts   []ticketPart     // one per targeted backend, in New's order
	asked   backends.Request // the request in canonical form, without form spellings
}

// ticketPart is one backend's share of a Ticket. The lane that holds the
// request settles it exactly once.
type ticketPart struct {
	t        *Ticket
	settled  atomic.Bool
	replaced bool           // the lane got another request instead (WithEscalation to tags)
	outcome  BackendOutcome // written once, before the part is counted settled
	// objects says how each object ended that was not delivered; nil when
	// every object ended as outcome says. Written with outcome.
	objects map[objKey]objEnd
}

// objEnd is how one object ended.
type objEnd struct {
	outcome Outcome
	err     error
}

// newTicket returns a Ticket for asked with a part for each lane, done at
// once if there are none.
func newTicket(lanes []*lane, asked backends.Request) *Ticket {
	t := &Ticket{done: make(chan struct{}), parts: make([]ticketPart, len(lanes)), asked: asked}
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

// settle records o as the part's outcome, for every object of the
// request, and closes the Ticket's Done channel if it was the last part. A
// nil part (a request from Enqueue) and a part already settled are ignored.
func (p *ticketPart) settle(o BackendOutcome) { p.settleObjects(o, nil) }

// settleObjects is settle with how the objects that were not delivered
// ended, when they did not all end as o says.
func (p *ticketPart) settleObjects(o BackendOutcome, objects map[objKey]objEnd) {
	if p == nil || !p.settled.CompareAndSwap(false, true) {
		return
	}
	p.outcome, p.objects = o, objects
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

// Objects returns how each targeted backend settled each object of the
// request: for each backend in the order given to [New], the request's
// URLs, then its tags, each sorted, in canonical form
// ([backends.CanonicalRequest]). It returns nil until Done is closed. Use
// it to account for every object of a request, as a command that reports
// which URLs were not purged and why; [Ticket.Outcomes] sums each
// backend's up.
//
// An object is [Failed] when the batch holding it failed for good, unless
// the batch's error names the objects that failed ([backends.Partial]) and
// not this one; its Err is then the batch's error. It is [Dropped] when it
// never reached the backend, with Err saying why, and [Delivered]
// otherwise. A URL that is also purged as HTML forms spell it
// ([backends.FormSpelling]) is listed once, settled as the worse of its
// two purges. For a backend that [WithEscalation] made purge tags instead
// of the request's URLs, each URL is settled as the worst of those tags;
// for one that purged everything instead, as that purge. Objects that
// Submit refused for having no canonical form are not listed: Submit's
// error names them.
func (t *Ticket) Objects() []ObjectOutcome {
	select {
	case <-t.done:
	default:
		return nil
	}
	out := make([]ObjectOutcome, 0, len(t.parts)*t.asked.Len())
	for i := range t.parts {
		p := &t.parts[i]
		for k := range keys(t.asked) {
			e := p.end(k)
			out = append(out, ObjectOutcome{Backend: p.outcome.Backend, Object: k.s, Tag: k.tag, Outcome: e.outcome, Err: e.err})
		}
	}
	return out
}

// end returns how the object k of the Ticket's request ended for p's
// backend, p being settled.
func (p *ticketPart) end(k objKey) objEnd {
	if p.objects == nil {
		return objEnd{outcome: p.outcome.Outcome, err: p.outcome.Err}
	}
	e, ok := p.objects[k]
	if !ok {
		e = objEnd{outcome: Delivered}
	}
	if !k.tag {
		if f := backends.FormSpelling(k.s); f != "" {
			if fe, ok := p.objects[objKey{s: f}]; ok && severity(fe.outcome) > severity(e.outcome) {
				e = fe
			}
		}
	}
	return e
}

// ObjectOutcome is how one backend settled one object, a URL or a tag, of
// a request given to [Dispatcher.Submit]. [Ticket.Objects] returns them.
type ObjectOutcome struct {
	// Backend is the backend's name.
	Backend string
	// Object is the URL or the tag, in canonical form.
	Object string
	// Tag is set when Object is a cache tag, not a URL.
	Tag bool
	// Outcome says how the backend settled the object.
	Outcome Outcome
	// Err is nil when the object was delivered. Otherwise it is the error
	// of the batch that failed (for a partial failure, the batch's error,
	// on which [backends.FailedObjects] names the objects that failed), or
	// why the object was dropped: an error matching [ErrQueueFull] or
	// [ErrClosed].
	Err error
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
			o, objects := l.outcomeOf(it.req, g.ends, where, dropErr)
			if objects != nil && it.tk.replaced {
				objects = replacedEnds(it.tk.t.asked, it.req, objects)
			}
			it.tk.settleObjects(o, objects)
		}
	}
}

// outcomeOf returns how the batches in ends settled r, whose objects they
// hold, and how each object of r that was not delivered ended (nil when
// all ended alike); where maps each object to its batch when there are
// several.
func (l *lane) outcomeOf(r backends.Request, ends []batchEnd, where map[objKey]int, dropErr error) (BackendOutcome, map[objKey]objEnd) {
	if len(ends) == 1 && !ends[0].partial {
		return l.outcomeFrom(ends, 0, ends[0].outcome, dropErr), nil
	}
	var (
		seen    bool
		worst   = Delivered // for an empty request
		decided = -1        // index in ends of the batch that decides
		objects map[objKey]objEnd
	)
	for k := range keys(r) {
		i, o := locate(k, ends, where)
		if !seen || severity(o) > severity(worst) {
			seen, worst, decided = true, o, i
		}
		if o == Delivered {
			continue
		}
		if objects == nil {
			objects = make(map[objKey]objEnd)
		}
		e := objEnd{outcome: o, err: dropErr}
		if o == Failed {
			e.err = ends[i].err
		}
		objects[k] = e
	}
	return l.outcomeFrom(ends, decided, worst, dropErr), objects
}

// replacedEnds adds to objects, how the objects of a lane's request r
// ended, an end for each object of asked that r does not hold: the worst
// end of r's objects that asked does not hold, the request that replaced
// them.
func replacedEnds(asked, r backends.Request, objects map[objKey]objEnd) map[objKey]objEnd {
	held := func(list []string, s string) bool { _, ok := slices.BinarySearch(list, s); return ok }
	var repl objEnd
	for k := range keys(r) {
		if k.tag && held(asked.Tags, k.s) || !k.tag && held(asked.URLs, k.s) {
			continue
		}
		if e, ok := objects[k]; ok && severity(e.outcome) > severity(repl.outcome) {
			repl = e
		}
	}
	if repl.outcome == 0 {
		return objects // the replacement was delivered
	}
	for k := range keys(asked) {
		if k.tag && !held(r.Tags, k.s) || !k.tag && !held(r.URLs, k.s) {
			objects[k] = repl
		}
	}
	return objects
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
