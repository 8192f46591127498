package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/internal/nilcheck"
)

// DefaultHealthCheck is how long a [Bus] subscription waits for a message
// before it pings Redis, when [WithHealthCheck] is not given.
const DefaultHealthCheck = time.Second

// maxMessageBytes is the largest message the bus publishes; larger purges
// are split. Redis queues a subscriber's messages in an output buffer
// limited by client-output-buffer-limit pubsub (by default 32 MiB at
// once, or 8 MiB for a minute) and disconnects a subscriber over it: small
// messages keep a burst of large purges well under that limit, and each
// under the 512 MiB of Redis's largest value.
const maxMessageBytes = 512 << 10

// eventQueue bounds the events a subscription reads ahead of Next. When it
// is full, the subscription stops reading, and Redis buffers the messages
// (see maxMessageBytes); if the subscriber falls so far behind that Redis
// disconnects it, the bus reports EventDown, and Follow clears the store.
const eventQueue = 256

// Backoff between attempts to reach Redis again after a subscription's
// connection broke.
const (
	minRetry = 100 * time.Millisecond
	maxRetry = time.Second
)

// Bus is a [localcache.Bus] on Redis pub/sub: every instance publishes its
// purges and clears on one channel and follows the others' there. Create
// it with [NewBus]; it is safe for concurrent use and does not own its
// Redis client (close that yourself, after the subscriptions).
//
// Redis does not keep messages for a subscriber that is not connected: a
// [localcache.Subscription] of the bus yields [localcache.EventDown]
// whenever its connection breaks or a health check goes unanswered, and
// [localcache.EventUp] once it is subscribed again, so that
// [localcache.Follow] empties the store in between.
type Bus struct {
	rdb         redis.UniversalClient
	channel     string
	wire        *localcache.Wire
	healthCheck time.Duration
	log         *slog.Logger
}

var _ localcache.Bus = (*Bus)(nil)

// A BusOption configures a [Bus]; pass it to [NewBus], which checks every
// option and reports each invalid one.
type BusOption func(*busConfig)

type busConfig struct {
	healthCheck time.Duration
	log         *slog.Logger
	errs        []error
}

// WithHealthCheck sets how long a subscription waits for a message before
// it pings Redis; when the ping is not answered within as long again, the
// connection is taken as broken: the subscription yields EventDown and
// connects again. This bounds how long an instance may serve a page whose
// purge it missed after a network failure that resets nothing (a broken
// connection that is reset is noticed at once): about 2*d. d must be
// positive. Defaults to [DefaultHealthCheck].
func WithHealthCheck(d time.Duration) BusOption {
	return func(c *busConfig) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("WithHealthCheck(%v): the interval must be positive, such as time.Second", d))
			return
		}
		c.healthCheck = d
	}
}

// WithBusLogger sets the logger the bus reports to: messages it cannot
// read (from another version of this package, or not from it at all) and
// lost connections. Defaults to [slog.Default]; nil is an error.
func WithBusLogger(l *slog.Logger) BusOption {
	return func(c *busConfig) {
		if l == nil {
			c.errs = append(c.errs, errors.New("WithBusLogger(nil): pass a logger, or slog.New(slog.DiscardHandler) to silence the bus"))
			return
		}
		c.log = l
	}
}

// NewBus returns a Bus publishing on, and subscribing to, the Redis
// pub/sub channel named channel (every instance of an application uses
// the same; different applications on one Redis use different ones). It
// returns an error naming every invalid option and saying how to fix it.
func NewBus(rdb redis.UniversalClient, channel string, opts ...BusOption) (*Bus, error) {
	c := busConfig{healthCheck: DefaultHealthCheck, log: slog.Default()}
	switch {
	case rdb == nil:
		c.errs = append(c.errs, errors.New("NewBus(nil, ...): pass a Redis client, such as redis.NewClient(&redis.Options{Addr: addr})"))
	case nilcheck.IsNil(rdb):
		c.errs = append(c.errs, fmt.Errorf("NewBus((%T)(nil), ...): the client is a nil %T: pass one from its constructor", rdb, rdb))
	}
	if channel == "" {
		c.errs = append(c.errs, errors.New(`NewBus(rdb, ""): pass the channel every instance of the application uses, such as "mysite:purges"`))
	}
	for _, opt := range opts {
		if opt == nil {
			c.errs = append(c.errs, errors.New("a BusOption is nil: remove it, or pass one made by a With... function"))
			continue
		}
		opt(&c)
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, fmt.Errorf("redisstore: invalid bus configuration:\n%w", err)
	}
	w, err := localcache.NewWire()
	if err != nil {
		return nil, err
	}
	return &Bus{rdb: rdb, channel: channel, wire: w, healthCheck: c.healthCheck, log: c.log}, nil
}

// Publish sends e, an EventPurge or EventClear, to the other instances
// with PUBLISH, in messages of at most 512 KiB. It returns nil once Redis
// has accepted every message, and an error otherwise.
func (b *Bus) Publish(ctx context.Context, e localcache.Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: publish: %w", err)
	}
	return b.wire.Publish(e, maxMessageBytes, func(msg []byte) error {
		if err := b.rdb.Publish(ctx, b.channel, msg).Err(); err != nil {
			return fmt.Errorf("redisstore: publish on %q: %w", b.channel, err)
		}
		return nil
	})
}

// Subscribe subscribes to the channel. The subscription's first event is
// EventUp, once Redis has confirmed it; while Redis cannot be reached, it
// keeps trying, and Next waits. Close the subscription when done.
func (b *Bus) Subscribe(ctx context.Context) (localcache.Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("redisstore: subscribe: %w", err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &subscription{
		bus:    b,
		cancel: cancel,
		events: make(chan localcache.Event, eventQueue),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	s.ps = b.rdb.Subscribe(rctx, b.channel)
	go s.run(rctx)
	return s, nil
}

// errClosed is returned by Next after Close.
var errClosed = errors.New("redisstore: subscription closed")

// subscription is a Bus's Subscription. Its goroutine, run, owns the
// PubSub: it reads messages, pings, and reconnects; Close stops it.
type subscription struct {
	bus    *Bus
	cancel context.CancelFunc
	events chan localcache.Event
	done   chan struct{} // closed by Close
	exited chan struct{} // closed when run returns

	closeOnce sync.Once
	mu        sync.Mutex // guards ps and closed, for Close
	ps        *redis.PubSub
	closed    bool
}

// Next returns the next event, an error once ctx is done or after Close.
func (s *subscription) Next(ctx context.Context) (localcache.Event, error) {
	select {
	case <-s.done:
		return localcache.Event{}, errClosed
	default:
	}
	select {
	case e := <-s.events:
		return e, nil
	case <-s.done:
		return localcache.Event{}, errClosed
	case <-ctx.Done():
		return localcache.Event{}, fmt.Errorf("redisstore: next: %w", context.Cause(ctx))
	}
}

// Close ends the subscription and waits, until ctx is done, for its
// goroutine to return.
func (s *subscription) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.cancel() // ends a dial in progress
		s.mu.Lock()
		s.closed = true
		ps := s.ps
		s.mu.Unlock()
		_ = ps.Close() // ends a read in progress
	})
	select {
	case <-s.exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("redisstore: close subscription: %w", context.Cause(ctx))
	}
}

// pubsub returns the current PubSub.
func (s *subscription) pubsub() *redis.PubSub {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ps
}

// renew replaces the PubSub with a new one, on a new connection, unless
// the subscription is closed.
func (s *subscription) renew(ctx context.Context) {
	old := s.pubsub()
	_ = old.Close()
	ps := s.bus.rdb.Subscribe(ctx, s.bus.channel)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = ps.Close()
		return
	}
	s.ps = ps
}

// emit queues e for Next; it returns false once the subscription is
// closed.
func (s *subscription) emit(e localcache.Event) bool {
	select {
	case s.events <- e:
		return true
	case <-s.done:
		return false
	}
}

// run reads the subscription's messages until Close. go-redis's PubSub
// reconnects and subscribes again on the Receive after one that failed;
// Redis confirms the new subscription before delivering messages on it,
// and that confirmation is EventUp.
func (s *subscription) run(ctx context.Context) {
	defer close(s.exited)
	defer func() { _ = s.pubsub().Close() }()
	var (
		up     bool // EventUp was the last state change emitted
		pinged bool // a ping is unanswered
		retry  = minRetry
	)
	down := func(reason string) bool {
		pinged = false
		if !up {
			return true
		}
		up = false
		s.bus.log.LogAttrs(ctx, slog.LevelWarn, "redisstore: bus subscription lost; reconnecting",
			slog.String("channel", s.bus.channel), slog.String("reason", reason))
		return s.emit(localcache.Event{Kind: localcache.EventDown, Reason: reason})
	}
	for {
		msg, err := s.pubsub().ReceiveTimeout(ctx, s.bus.healthCheck)
		select {
		case <-s.done:
			return
		default:
		}
		var ne net.Error
		switch {
		case err != nil && errors.As(err, &ne) && ne.Timeout() && !pinged:
			// Idle: make sure Redis is still there.
			if perr := s.pubsub().Ping(ctx); perr != nil {
				if !down("health check ping failed: " + perr.Error()) {
					return
				}
				continue
			}
			pinged = true
			continue
		case err != nil && errors.As(err, &ne) && ne.Timeout():
			if !down(fmt.Sprintf("health check ping unanswered for %v", s.bus.healthCheck)) {
				return
			}
			s.renew(ctx) // the connection may be stuck: start afresh
			continue
		case err != nil:
			if !down(err.Error()) {
				return
			}
			// The next Receive dials again; wait first, as Redis may
			// refuse connections for a while.
			t := time.NewTimer(retry)
			select {
			case <-s.done:
				t.Stop()
				return
			case <-t.C:
			}
			retry = min(2*retry, maxRetry)
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == s.bus.channel && !up {
				up, retry = true, minRetry
				if !s.emit(localcache.Event{Kind: localcache.EventUp}) {
					return
				}
			}
		case *redis.Message:
			if !up {
				continue // cannot happen: Redis confirms a subscription first
			}
			e, others, err := s.bus.wire.Decode([]byte(m.Payload))
			if err != nil {
				s.bus.log.LogAttrs(ctx, slog.LevelWarn, "redisstore: dropping a bus message that is not an event",
					slog.String("channel", s.bus.channel), slog.Any("error", err))
				continue
			}
			if others && !s.emit(e) {
				return
			}
		}
	}
}
