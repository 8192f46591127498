package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/internal/lifecycle"
	"github.com/gormpurge/gormpurge/internal/nilcheck"
)

// Dispatcher delivers purge requests to a fixed set of backends in the
// background. Create one with [New], hand it to the gormpurge plugin as its
// Sink, and Close it on shutdown. It is safe for concurrent use.
//
// The zero value has no backends: Enqueue, Submit and Flush return
// [ErrClosed] and Close returns nil.
type Dispatcher struct {
	cfg   config
	lanes []*lane
	lc    *lifecycle.Lifecycle // owns the batchers and workers; its Context is the parent of every call to a backend

	closed  atomic.Bool // set at the start of Close
	unwatch func()      // removes the dispatcher's Source from the Observer; nil without one
}

// New returns a Dispatcher that delivers to bs and starts its goroutines:
// for each backend a batcher and [WithWorkers] workers. Stop them with
// [Dispatcher.Close], which also closes the backends that implement
// [backends.Closer].
//
// New returns an error, and starts nothing, if bs is empty, holds a nil
// Backend or two with the same Name, or if an option is invalid: the error
// names each problem (the option at fault, such as "WithWorkers(0)") and
// says how to fix it.
func New(bs []backends.Backend, opts ...Option) (*Dispatcher, error) {
	cfg := defaultConfig()
	for _, opt := range opts {
		if opt == nil {
			cfg.errs = append(cfg.errs, errors.New("an Option is nil: remove it, or pass one made by a With... function"))
			continue
		}
		opt(&cfg)
	}
	byName := make(map[string]backends.Backend, len(bs))
	var errs []error
	if len(bs) == 0 {
		errs = append(errs, errors.New("pass at least one backend"))
	}
	for i, b := range bs {
		if nilcheck.IsNil(b) {
			errs = append(errs, fmt.Errorf("backend %d is nil: pass one made by its constructor", i))
			continue
		}
		if _, dup := byName[b.Name()]; dup {
			errs = append(errs, fmt.Errorf("two backends are named %q; give each a unique Name", b.Name()))
			continue
		}
		byName[b.Name()] = b
	}
	if err := errors.Join(append(errs, cfg.validate(byName))...); err != nil {
		return nil, fmt.Errorf("dispatcher: invalid configuration:\n%w", err)
	}

	d := &Dispatcher{cfg: cfg}
	d.lc = lifecycle.New(lifecycle.Hooks{Drain: d.drain, Stopped: d.stopped})
	for _, b := range bs {
		d.lanes = append(d.lanes, newLane(d, b))
	}
	d.addLayers()
	if cfg.obs != nil {
		d.unwatch = cfg.obs.Watch(d.readings)
	}
	for _, l := range d.lanes {
		d.lc.Go(l.batchLoop)
		for range cfg.workers {
			d.lc.Go(l.workLoop)
		}
	}
	return d, nil
}

// Enqueue hands r to every backend's queue and returns without waiting on
// any backend. An empty r is ignored. To learn what became of r, use
// [Dispatcher.Submit] instead.
//
// When a queue is full, the [FullPolicy] decides: under [Block] (the
// default) Enqueue first gives r to every backend that has room, then waits
// for the others until ctx is done. The error, if any, names each backend
// that did not get r and matches [ErrQueueFull]; r still reached the
// others. After Close has begun, Enqueue returns [ErrClosed].
//
// URLs and tags are delivered in their canonical form
// ([backends.CanonicalRequest]), so every backend receives the same names
// for the same page; a URL whose query holds a space is also purged as HTML
// forms spell it, with "+" ([backends.FormSpelling]). Objects that have
// none are not delivered: the error
// then joins one *backends.ObjectError per refused object, and the rest of
// r is delivered.
//
// *Dispatcher implements the gormpurge Sink interface with this method.
func (d *Dispatcher) Enqueue(ctx context.Context, r backends.Request) error {
	if d.lanes == nil {
		return ErrClosed
	}
	r, invalid := d.canonical(ctx, r)
	if r.Empty() {
		return invalid
	}
	err := d.offer(ctx, withFormSpellings(r), d.lanes, nil)
	if invalid != nil {
		return errors.Join(invalid, err)
	}
	return err
}

// canonical returns r in canonical form and the error naming the objects
// that have none, which it also logs.
func (d *Dispatcher) canonical(ctx context.Context, r backends.Request) (backends.Request, error) {
	r, err := backends.CanonicalRequest(r)
	if err != nil {
		d.cfg.logger.LogAttrs(ctx, slog.LevelError, "dispatcher: objects refused", slog.Any("error", err))
	}
	return r, err
}

// withFormSpellings returns r, canonical, with the form spelling of each
// URL whose query holds a space ([backends.FormSpelling]).
func withFormSpellings(r backends.Request) backends.Request {
	var extra []string
	for _, u := range r.URLs {
		if f := backends.FormSpelling(u); f != "" {
			extra = append(extra, f)
		}
	}
	if extra != nil {
		r = r.Merge(backends.Request{URLs: extra})
	}
	return r
}

// offer hands r to lanes as Enqueue describes, as each lane's admitters
// (such as [WithEscalation]) decide. parts, unless nil, holds r's ticket part
// for each lane, in the same order.
func (d *Dispatcher) offer(ctx context.Context, r backends.Request, lanes []*lane, parts []ticketPart) error {
	org := d.originOf(ctx)
	if d.closed.Load() {
		for i, l := range lanes {
			l.drop(item{req: r, tk: partAt(parts, i), org: org}, ErrClosed) // counted and reported like every other drop
		}
		return ErrClosed
	}
	type waiting struct {
		l  *lane
		it item
	}
	var (
		errs []error
		full []waiting // lanes with no room under Block
	)
	for i, l := range lanes {
		it := l.admit(ctx, item{req: r, tk: partAt(parts, i), org: org})
		err := l.push(it)
		switch {
		case errors.Is(err, errWouldBlock):
			full = append(full, waiting{l, it})
		case err != nil:
			errs = append(errs, err)
		}
	}
	for _, w := range full {
		if err := w.l.pushWait(ctx, w.it); err != nil {
			errs = append(errs, err)
		}
	}
	err := errors.Join(errs...)
	if errors.Is(err, ErrClosed) {
		return ErrClosed
	}
	return err
}

// Flush waits until every request enqueued before the call has been
// delivered, has failed for good or was dropped. It cuts linger windows
// short. It returns an error wrapping ctx's cause, and naming the backends
// still busy, if ctx ends first; [ErrClosed] if the dispatcher stops first.
// Requests enqueued during the call may be delivered too but are not waited
// for.
func (d *Dispatcher) Flush(ctx context.Context) error {
	if d.lanes == nil {
		return ErrClosed
	}
	select {
	case <-d.lc.Done():
		return ErrClosed
	default:
	}
	targets := make([]uint64, len(d.lanes))
	for i, l := range d.lanes {
		targets[i] = l.startFlush()
	}
	defer func() {
		for _, l := range d.lanes {
			l.endFlush()
		}
	}()
	var busy []string
	for i, l := range d.lanes {
		if err := l.waitSettled(ctx, targets[i]); err != nil {
			if errors.Is(err, ErrClosed) {
				return err
			}
			busy = append(busy, l.name)
		}
	}
	if len(busy) > 0 {
		return fmt.Errorf("dispatcher: flush: backends %q not done: %w", busy, context.Cause(ctx))
	}
	return nil
}

// Close stops accepting requests, waits until everything queued has been
// delivered or has failed for good, stops every goroutine it started, then
// closes each backend given to [New] that implements [backends.Closer]
// (httppurge's and akamai's do), with ctx. A shutdown is therefore: the
// HTTP server, the outbox relay if any, then the dispatcher.
//
// If ctx ends first, Close cancels the calls in flight and the retries
// waiting, stops, and returns an [*UndeliveredError] holding what was left;
// it wraps ctx's cause. Close waits for the backends' Purge calls to
// return, so a Backend that ignores cancellation holds it up. Errors from
// the backends' Close are joined to the result.
//
// Close may be called more than once and concurrently: the first call does
// the work, even with a ctx already done; the others wait for it (or for
// their own ctx) and return nil. On the zero Dispatcher, Close returns nil.
func (d *Dispatcher) Close(ctx context.Context) error {
	return d.lc.Close(ctx)
}

// drain is the Close hook that refuses new requests and waits for those
// queued to settle, within ctx.
func (d *Dispatcher) drain(ctx context.Context) error {
	d.closed.Store(true)
	for _, l := range d.lanes {
		l.startDrain()
	}
	for _, l := range d.lanes {
		if err := l.waitSettled(ctx, l.lastSeq()); err != nil {
			return context.Cause(ctx)
		}
	}
	return nil
}

// stopped is the Close hook that runs once the goroutines have stopped: it
// reports what was left undelivered, then closes the backends.
func (d *Dispatcher) stopped(ctx context.Context, cause error) error {
	left := make(map[string]backends.Request)
	for _, l := range d.lanes {
		if r := l.leftovers(cause); !r.Empty() {
			left[l.name] = r
		}
	}
	var err error
	if len(left) > 0 {
		if cause == nil {
			// Only reachable if a request slipped past the drain; report it
			// rather than lose it silently.
			cause = ErrClosed
		}
		err = &UndeliveredError{Requests: left, Err: cause}
	}
	if d.unwatch != nil {
		d.observe("", d.unwatch)
	}
	return errors.Join(err, d.closeBackends(ctx))
}

// closeBackends closes every backend that implements [backends.Closer],
// in the order given to New, and joins their errors.
func (d *Dispatcher) closeBackends(ctx context.Context) error {
	var errs []error
	for _, l := range d.lanes {
		if c, ok := l.backend.(backends.Closer); ok {
			if err := c.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("dispatcher: closing backend %q: %w", l.name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Stats returns a snapshot of every backend's counters.
func (d *Dispatcher) Stats() Stats {
	s := Stats{Backends: make([]BackendStats, 0, len(d.lanes))}
	for _, l := range d.lanes {
		s.Backends = append(s.Backends, l.stats())
	}
	return s
}
