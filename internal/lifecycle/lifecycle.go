// Package lifecycle is the start and stop bookkeeping shared by every
// gormpurge type that owns goroutines: the dispatcher, the outbox relay, the
// warmer and httppurge's node discovery. It replaces the closed, done and
// stopping fields each of them used to keep by hand.
//
// A Lifecycle owns goroutines started with [Lifecycle.Go]. Its Close tells
// them to stop ([Lifecycle.Stopping]), lets its owner drain the work in
// hand within the caller's context, cancels [Lifecycle.Context] and waits
// for every goroutine to return.
package lifecycle

import (
	"context"
	"sync"
)

// Hooks say how a Lifecycle's owner stops. Every field may be nil.
type Hooks struct {
	// Drain waits for the work accepted before Close to finish, and
	// returns ctx's cause if ctx ends first. It runs after Stopping is
	// closed and before Context is cancelled, so the owned goroutines are
	// still running. Without Drain, Close cancels Context at once.
	Drain func(ctx context.Context) error
	// Stopped runs once every owned goroutine has returned, with Close's
	// ctx and Drain's error, and returns Close's error: release what the
	// goroutines used and report what they left undone here.
	Stopped func(ctx context.Context, drainErr error) error
}

// Lifecycle owns goroutines and stops them once. Make one with [New]. A nil
// *Lifecycle is something never started: Close returns nil. It is safe for
// concurrent use.
type Lifecycle struct {
	hooks    Hooks
	ctx      context.Context
	cancel   context.CancelFunc
	stopping chan struct{} // closed when Close begins
	closed   chan struct{} // closed when the first Close has finished

	mu      sync.Mutex
	began   bool  // a Close has begun
	running Group // owned goroutines not yet returned
}

// New returns a Lifecycle that stops as hooks say.
func New(hooks Hooks) *Lifecycle {
	ctx, cancel := context.WithCancel(context.Background())
	return &Lifecycle{
		hooks:    hooks,
		ctx:      ctx,
		cancel:   cancel,
		stopping: make(chan struct{}),
		closed:   make(chan struct{}),
	}
}

// Go runs fn on a goroutine that l owns: Close waits for it to return. fn
// must return soon after Context is done; it should also stop taking new
// work once Stopping is closed. Call Go before Close, or from a goroutine
// l owns.
func (l *Lifecycle) Go(fn func()) {
	l.running.Add()
	go func() {
		defer l.running.Done()
		fn()
	}()
}

// Context returns the context of the owned goroutines' work. It is
// cancelled when Close stops waiting for that work: after Drain, or at once
// without one.
func (l *Lifecycle) Context() context.Context { return l.ctx }

// Done is shorthand for l.Context().Done(): closed when the goroutines must
// return.
func (l *Lifecycle) Done() <-chan struct{} { return l.ctx.Done() }

// Stopping returns a channel closed when Close begins: take no new work.
func (l *Lifecycle) Stopping() <-chan struct{} { return l.stopping }

// Wait waits until no owned goroutine is running, or returns ctx's cause if
// ctx ends first. Goroutines that have already returned count as done even
// when ctx has ended. It is a ready-made [Hooks.Drain] for owners whose
// goroutines finish their work and return once Stopping is closed.
func (l *Lifecycle) Wait(ctx context.Context) error { return l.running.Wait(ctx) }

// Close stops l once: it closes Stopping, runs Hooks.Drain with ctx,
// cancels Context, waits for every owned goroutine to return (however long
// that takes: a goroutine that ignores Context holds Close up) and returns
// what Hooks.Stopped returns, or Drain's error without it.
//
// Close may be called more than once and concurrently: the first call does
// the work even if ctx has already ended; the others wait for it and return
// nil, or ctx's cause if ctx ends first. On a nil Lifecycle, Close returns
// nil.
func (l *Lifecycle) Close(ctx context.Context) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	first := !l.began
	l.began = true
	l.mu.Unlock()
	if first {
		close(l.stopping)
		var err error
		if l.hooks.Drain != nil {
			err = l.hooks.Drain(ctx)
		}
		l.cancel()
		_ = l.Wait(context.Background())
		if l.hooks.Stopped != nil {
			err = l.hooks.Stopped(ctx, err)
		}
		close(l.closed)
		return err
	}
	select {
	case <-l.closed: // already closed: even an ended ctx is no error
		return nil
	default:
	}
	select {
	case <-l.closed:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Group counts work in flight, like a sync.WaitGroup whose Wait takes a
// context: an owner's drain waits with it for the work it started (a
// Lifecycle counts its goroutines with one). The zero Group is empty and
// ready to use; a Group must not be copied after first use. It is safe for
// concurrent use.
type Group struct {
	mu      sync.Mutex
	n       int           // work in flight
	stopped bool          // Stop was called: Add takes no more
	idle    chan struct{} // closed when n drops to 0; nil while n is 0
}

// Add counts one more piece of work in flight and returns true; once Stop
// has been called it counts nothing and returns false.
func (g *Group) Add() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return false
	}
	if g.n == 0 {
		g.idle = make(chan struct{})
	}
	g.n++
	return true
}

// Done ends one piece of work counted by Add. It panics if none is in
// flight.
func (g *Group) Done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n == 0 {
		panic("lifecycle: Group.Done without Add")
	}
	g.n--
	if g.n == 0 {
		close(g.idle)
		g.idle = nil
	}
}

// Stop makes every later Add return false. The work already counted goes
// on: Wait still waits for it. Checking Add's result tells a goroutine,
// without a race, whether its owner's drain will wait for what it starts.
func (g *Group) Stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopped = true
}

// Len returns the number of pieces of work in flight.
func (g *Group) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

// Wait waits until no work is in flight and returns nil, or returns ctx's
// cause if ctx ends first. Work that has already ended counts as done even
// when ctx has ended: with nothing in flight, Wait returns nil at once,
// whatever ctx.
func (g *Group) Wait(ctx context.Context) error {
	g.mu.Lock()
	idle := g.idle
	g.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle: // done meanwhile: even an ended ctx is no error
		return nil
	default:
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
