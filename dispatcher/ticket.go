package dispatcher

import (
	"context"
	"errors"
	"fmt"
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
	t       *Ticket
	settled atomic.Bool
	outcome BackendOutcome // written once, before the part is counted settled
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
