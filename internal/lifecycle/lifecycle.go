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
	began   bool          // a Close has begun
	running int           // owned goroutines not yet returned
	idle    chan struct{} // closed when running drops to 0; nil while running is 0
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
	l.mu.Lock()
	if l.running == 0 {
		l.idle = make(chan struct{})
	}
	l.running++
	l.mu.Unlock()
	go func() {
		defer l.exit()
		fn()
	}()
}

func (l *Lifecycle) exit() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running--
	if l.running == 0 {
		close(l.idle)
		l.idle = nil
	}
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
func (l *Lifecycle) Wait(ctx context.Context) error {
	l.mu.Lock()
	idle := l.idle
	l.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

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
