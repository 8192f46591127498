package localcache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/gormpurge/gormpurge/internal/nilcheck"
)

// A Suspender is a [Store] that can stop answering and storing for a while,
// as [MemoryStore] can. [Follow] suspends such a store while its bus may be
// losing events. A store that is not a Suspender is cleared instead, which
// leaves a window in which it may store pages again before the bus is back.
type Suspender interface {
	// Suspend empties the store and makes it answer and store nothing
	// until Resume.
	Suspend()
	// Resume ends Suspend: the store answers and stores again, and a page
	// rendered while it was suspended is not stored.
	Resume()
}

// A FollowOption configures [Follow].
type FollowOption func(*followConfig)

type followConfig struct {
	logger  *slog.Logger
	backoff time.Duration
	errs    []error
}

// WithFollowLogger sets the logger [Follow] reports to: bus state changes
// at Warn and Info, failures at Error. Defaults to [slog.Default]; nil is an
// error.
func WithFollowLogger(l *slog.Logger) FollowOption {
	return func(c *followConfig) {
		if l == nil {
			c.errs = append(c.errs, errors.New("WithFollowLogger(nil): pass a logger, or slog.New(slog.DiscardHandler) to silence Follow"))
			return
		}
		c.logger = l
	}
}

// WithResubscribeDelay sets how long [Follow] waits before subscribing
// again after a subscription fails; it doubles up to 30 seconds while
// failures go on. Defaults to 100 milliseconds; it must be positive.
func WithResubscribeDelay(d time.Duration) FollowOption {
	return func(c *followConfig) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("WithResubscribeDelay(%v): the delay must be positive, such as 100*time.Millisecond", d))
			return
		}
		c.backoff = d
	}
}

// maxResubscribeDelay bounds Follow's backoff between subscriptions.
const maxResubscribeDelay = 30 * time.Second

// maxOrigins bounds the instances whose sequence numbers Follow remembers.
const maxOrigins = 4096

// Follow applies to store the purges and clears other instances publish on
// bus, until ctx is done; run it on its own goroutine on every instance
// that keeps pages in a store of its own, for as long as it serves them:
//
//	go localcache.Follow(ctx, store, bus)
//
// Given a [Suspender], as a [MemoryStore] is, Follow never lets store serve
// a page whose purge it may have missed: the store is suspended (empty,
// answering nothing, every request rendering its page) until the
// subscription is up, and again whenever the bus says events may be lost
// (a broken connection, messages dropped for a slow consumer, a health
// check unanswered); when the subscription is up again the store resumes,
// empty. A sequence number that skips one (a message lost without the bus
// noticing) clears the store; the first message heard from an instance
// sets where its numbers stand, so a silent loss of the very messages
// before it goes unnoticed (a bus reports broken connections and dropped
// messages itself; only a fault inside the bus's own servers, such as a
// partition between Redis Cluster nodes, loses messages silently). When Follow returns, the store stays
// suspended, since nothing applies others' purges any more: run Follow
// again to resume it. A store that is not a Suspender is only cleared at
// those times, so it may fill again, and serve what it stored, while the
// bus is down: wrap a MemoryStore only in a type that is a Suspender too.
//
// Pages stored before Follow's subscription is up are dropped when it
// comes up. To serve nothing from the cache until then, call Suspend on
// the store before starting Follow and the server.
//
// How stale can a page be? A purge committed on another instance removes
// the page here one bus delivery later: typically under a millisecond on a
// local network for Redis pub/sub and NATS (see the README's figures).
// A page may be served stale for longer only while a broken connection is
// not yet noticed, which the bus's health check bounds. A purge the bus
// refuses fails the [Backend]'s Purge, which the dispatcher retries; one
// it gives up on is sent again with the Backend's next publish.
//
// Follow returns an error at once if store or bus is nil or an option is
// invalid; otherwise it retries failed subscriptions, with backoff, and
// returns ctx's error when ctx is done.
func Follow(ctx context.Context, store Store, bus Bus, opts ...FollowOption) error {
	c := followConfig{logger: slog.Default(), backoff: 100 * time.Millisecond}
	if err := storeProblem("Follow", store, passTheStore); err != nil {
		c.errs = append(c.errs, err)
	}
	switch {
	case bus == nil:
		c.errs = append(c.errs, errors.New("Follow(ctx, store, nil): pass the Bus given to NewBackend with WithBus"))
	case nilcheck.IsNil(bus):
		c.errs = append(c.errs, fmt.Errorf("Follow: the Bus is a nil %T: pass one from its constructor", bus))
	}
	for _, opt := range opts {
		if opt == nil {
			c.errs = append(c.errs, errors.New("a FollowOption is nil: remove it, or pass one made by a With... function"))
			continue
		}
		opt(&c)
	}
	if err := errors.Join(c.errs...); err != nil {
		return fmt.Errorf("localcache: invalid Follow configuration:\n%w", err)
	}
	origins, _ := simplelru.NewLRU[string, uint64](maxOrigins, nil)
	f := &follower{store: store, bus: bus, log: c.logger, origins: origins}
	f.down(ctx, "starting")
	defer f.down(context.WithoutCancel(ctx), "Follow returned")

	delay := c.backoff
	for {
		err := f.follow(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("localcache: follow: %w", context.Cause(ctx))
		}
		if f.served {
			delay = c.backoff
		}
		f.log.LogAttrs(ctx, slog.LevelError, "localcache: bus subscription failed; subscribing again",
			slog.Duration("after", delay), slog.Any("error", err))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("localcache: follow: %w", context.Cause(ctx))
		case <-t.C:
		}
		delay = min(2*delay, maxResubscribeDelay)
	}
}

// follower is the state of one Follow.
type follower struct {
	store   Store
	bus     Bus
	log     *slog.Logger
	origins *simplelru.LRU[string, uint64] // origin -> last Seq seen
	up      bool                           // the store serves
	served  bool                           // the last subscription came up
}

// follow runs one subscription until it fails or ctx is done.
func (f *follower) follow(ctx context.Context) error {
	f.served = false
	sub, err := f.bus.Subscribe(ctx)
	if err != nil {
		return err
	}
	defer func() {
		f.down(context.WithoutCancel(ctx), "subscription ended")
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = sub.Close(cctx)
	}()
	for {
		e, err := sub.Next(ctx)
		if err != nil {
			return err
		}
		if err := f.apply(ctx, e); err != nil {
			return err
		}
	}
}

// apply applies one event to the store. It returns an error when the
// store could not be made safe to serve, so that Follow subscribes again.
func (f *follower) apply(ctx context.Context, e Event) error {
	switch e.Kind {
	case EventUp:
		// The origins' numbers are kept: the store is empty now, so a gap
		// an origin's next message shows costs a clear of next to nothing,
		// and a message lost right after Up is noticed.
		f.served = true
		return f.resume(ctx)
	case EventDown:
		f.down(ctx, e.Reason)
	case EventPurge, EventClear:
		last, known := f.origins.Get(e.Origin)
		if !known || e.Seq > last {
			f.origins.Add(e.Origin, e.Seq)
		}
		if known && e.Seq > last+1 {
			f.log.LogAttrs(ctx, slog.LevelWarn, "localcache: bus messages lost; clearing the store",
				slog.String("origin", e.Origin), slog.Uint64("expected", last+1), slog.Uint64("got", e.Seq))
			if err := f.clear(ctx); err != nil {
				return err
			}
		}
		if e.Kind == EventClear {
			return f.clear(ctx)
		}
		if _, err := f.store.Purge(ctx, e.Indexes); err != nil {
			f.log.LogAttrs(ctx, slog.LevelError, "localcache: purge from the bus failed; clearing the store",
				slog.Int("indexes", len(e.Indexes)), slog.Any("error", err))
			return f.clear(ctx)
		}
	}
	return nil
}

// down stops the store serving until the next EventUp.
func (f *follower) down(ctx context.Context, reason string) {
	if f.up {
		f.log.LogAttrs(ctx, slog.LevelWarn, "localcache: bus down; the cache is off until it is back",
			slog.String("reason", reason))
	}
	f.up = false
	if s, ok := f.store.(Suspender); ok {
		s.Suspend()
		return
	}
	_ = f.clear(ctx) // logged; EventUp clears again
}

// resume lets the store serve again, empty.
func (f *follower) resume(ctx context.Context) error {
	if s, ok := f.store.(Suspender); ok {
		s.Resume()
	} else if err := f.clear(ctx); err != nil {
		return err
	}
	if !f.up {
		f.log.LogAttrs(ctx, slog.LevelInfo, "localcache: bus up; the cache is on")
	}
	f.up = true
	return nil
}

// clear empties the store.
func (f *follower) clear(ctx context.Context) error {
	if _, err := f.store.Clear(ctx); err != nil {
		f.log.LogAttrs(ctx, slog.LevelError, "localcache: clearing the store failed", slog.Any("error", err))
		return fmt.Errorf("localcache: clear the store: %w", err)
	}
	return nil
}
