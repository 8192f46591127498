package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/internal/nilcheck"
)

// DefaultHealthCheck is how often a quiet [Bus] subscription pings Redis,
// when [WithHealthCheck] is not given.
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

// unreadableLogInterval is the least time between two logs of messages
// the bus cannot read.
const unreadableLogInterval = 10 * time.Second

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
// [localcache.Follow] empties the store in between. A message it cannot
// read (from another version of this package during a rolling deploy, or
// from another publisher) may have been a purge: the subscription yields
// EventDown then EventUp for it, so that Follow empties the store.
type Bus struct {
	rdb         redis.UniversalClient
	channel     string
	wire        *localcache.Wire
	healthCheck time.Duration
	log         *slog.Logger
	unreadable  rate.Sometimes // limits the logs of messages that are not events
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

// WithHealthCheck sets the health check interval d of a subscription:
// whenever nothing (a message, a pong) has come from Redis for d, the
// subscription pings it, and when nothing comes within 2*d of sending the
// ping, it takes the connection as broken: it closes it, yields
// EventDown, and subscribes again on a new one. So a connection that stops
// answering after a network failure that resets nothing (a broken
// connection that is reset is noticed at once) is noticed 3*d after
// Redis's last reply, plus the time it takes to schedule the
// subscription's goroutine and write the ping: this bounds how long an
// instance may serve a page whose purge it missed. Redis must answer a
// ping within 2*d, however busy it, the network or the instance is (the
// pong waits behind the messages sent before it), or the store is emptied
// for nothing. The subscription reads with no deadline, so that a message
// slowed part-way by the network is read whole, or not at all. d must be
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
// read (from another version of this package, or not from it at all; at
// most one log every 10 seconds) and lost connections. Defaults to [slog.Default]; nil is an error.
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
	return &Bus{rdb: rdb, channel: channel, wire: w, healthCheck: c.healthCheck, log: c.log,
		unreadable: rate.Sometimes{First: 1, Interval: unreadableLogInterval}}, nil
}

// Publish sends e, an EventPurge or EventClear, to the other instances
// with PUBLISH, in messages of at most 512 KiB. It returns nil once Redis
// has accepted every message, and an error otherwise. On a Redis Cluster,
// every message goes to one node, the master of the channel's hash slot,
// which relays it to the others in the order it got them.
func (b *Bus) Publish(ctx context.Context, e localcache.Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: publish: %w", err)
	}
	return b.wire.Publish(e, maxMessageBytes, func(msg []byte) error {
		if err := b.publish(ctx, msg); err != nil {
			return fmt.Errorf("redisstore: publish on %q: %w", b.channel, err)
		}
		return nil
	})
}

// publish sends one message. A cluster client would send each PUBLISH,
// which names no key, to a node of its choice, and a subscriber gets the
// messages that reached its node through another one after those sent to
// it directly: out of order, which the subscriber must take as a lost
// purge. So on a cluster every message goes to the master of the
// channel's slot, where the subscriptions are too.
func (b *Bus) publish(ctx context.Context, msg []byte) error {
	cc, ok := b.rdb.(*redis.ClusterClient)
	if !ok {
		return b.rdb.Publish(ctx, b.channel, msg).Err()
	}
	node, err := cc.MasterForKey(ctx, b.channel)
	if err != nil {
		return err
	}
	return node.Publish(ctx, b.channel, msg).Err()
}

// Subscribe subscribes to the channel. It returns at once (an error only
// if ctx is already done): the subscription connects to Redis in the
// background, and its first event is EventUp, once Redis has confirmed
// it; while Redis cannot be reached, it keeps trying, and Next waits.
// Whenever the connection fails (an error, or no reply to health checks),
// the subscription yields EventDown, gives the connection up and
// subscribes on a new one, and yields EventUp once Redis confirms that.
// Close the subscription when done.
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
	go s.run(rctx)
	return s, nil
}
