package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
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

// errClosed is returned by Next after Close.
var errClosed = errors.New("redisstore: subscription closed")

// subscription is a Bus's Subscription. Its goroutine, run, subscribes,
// reads messages, pings and subscribes again through [link]s; Close stops
// it.
type subscription struct {
	bus    *Bus
	cancel context.CancelFunc
	events chan localcache.Event
	done   chan struct{} // closed by Close
	exited chan struct{} // closed when run returns

	closeOnce sync.Once
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
// goroutine to return, which it does at once. It does not wait for a
// connection being made: go-redis cannot cut a handshake with Redis short
// (it ends within the client's DialTimeout and ReadTimeout, and the
// connection is closed then).
func (s *subscription) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.cancel() // ends a dial in progress, and the reads of links
	})
	select {
	case <-s.exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("redisstore: close subscription: %w", context.Cause(ctx))
	}
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

// received is what a reader got from one Receive.
type received struct {
	msg any
	err error
}

// link is one PubSub of a subscription, on its own connection, with the
// goroutines that use it: a reader, and at most one ping at a time. go-redis
// holds a PubSub's lock while it connects (when subscribing, and on its
// own after a read failed), for as long as its dial and read timeouts
// allow, and Close and Ping wait for that lock: so run calls neither
// itself, and never waits for one once the subscription is closed.
type link struct {
	ps      *redis.PubSub
	in      chan received // from the reader
	pinged  chan error    // from the ping
	pinging bool          // a ping was sent and pinged not yet read; run's
	stop    chan struct{} // closed by close
	wg      sync.WaitGroup
}

// connect subscribes on a new connection, in a goroutine that hands the
// PubSub over to run, or closes it if the subscription was closed
// meanwhile (then connect returns errClosed at once).
func (s *subscription) connect(ctx context.Context) (*link, error) {
	type result struct {
		ps  *redis.PubSub
		err error
	}
	res := make(chan result)
	go func() {
		ps := s.bus.rdb.Subscribe(ctx) // no channel: no connection yet
		err := ps.Subscribe(ctx, s.bus.channel)
		if err != nil {
			_ = ps.Close()
			ps = nil
		}
		select {
		case res <- result{ps, err}:
		case <-s.done:
			if ps != nil {
				_ = ps.Close()
			}
		}
	}()
	var r result
	select {
	case r = <-res:
	case <-s.done:
		return nil, errClosed
	}
	if r.err != nil {
		return nil, r.err
	}
	l := &link{ps: r.ps, in: make(chan received), pinged: make(chan error), stop: make(chan struct{})}
	l.wg.Go(func() { l.read(ctx) })
	return l, nil
}

// read receives from the PubSub, with no read deadline, and hands every
// reply to run until Receive fails or the link is closed. A read deadline
// must not be used: go-redis keeps a connection whose read timed out
// part-way through a reply, and would read the rest of the reply as new
// replies.
func (l *link) read(ctx context.Context) {
	for {
		msg, err := l.ps.Receive(ctx)
		select {
		case l.in <- received{msg, err}:
		case <-l.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

// ping sends a ping, with a timeout of d, unless one is in flight; its
// error comes on pinged.
func (l *link) ping(ctx context.Context, d time.Duration) {
	if l.pinging {
		return
	}
	l.pinging = true
	l.wg.Go(func() {
		pctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		err := l.ps.Ping(pctx)
		select {
		case l.pinged <- err:
		case <-l.stop:
		}
	})
}

// close closes the PubSub, which ends the reader's Receive, and waits for
// the link's goroutines, or until done is closed: a goroutine that waits
// for go-redis to give up a connection ends after done, by itself.
func (l *link) close(done <-chan struct{}) {
	close(l.stop)
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_ = l.ps.Close()
		l.wg.Wait()
	}()
	select {
	case <-closed:
	case <-done:
	}
}

// run owns the subscription's links until Close. It pings Redis whenever
// nothing (a message, a confirmation or a pong) has come for the health
// check interval, and takes the connection as broken when nothing comes
// within twice the interval of the ping (see [healthCheck]). On a broken
// connection, or any error from Receive, it reports EventDown and starts
// again on a new PubSub, whose confirmation by Redis is EventUp: it never
// lets go-redis reconnect a PubSub on its own, so that no reply read
// part-way is ever read on.
func (s *subscription) run(ctx context.Context) {
	defer close(s.exited)
	var (
		up    bool // EventUp was the last state change emitted
		retry = minRetry
	)
	for {
		// A failed connect needs no EventDown: the last link's end
		// reported it.
		l, err := s.connect(ctx)
		if errors.Is(err, errClosed) {
			return
		}
		var reason string
		if err == nil {
			var ok bool
			reason, ok = s.receive(ctx, l, &up, &retry)
			l.close(s.done)
			if !ok {
				return
			}
		}
		if up {
			up = false
			s.bus.log.LogAttrs(ctx, slog.LevelWarn, "redisstore: bus subscription lost; subscribing again on a new connection",
				slog.String("channel", s.bus.channel), slog.String("reason", reason))
			if !s.emit(localcache.Event{Kind: localcache.EventDown, Reason: reason}) {
				return
			}
		}
		t := time.NewTimer(retry) // Redis may refuse connections for a while
		select {
		case <-s.done:
			t.Stop()
			return
		case <-t.C:
		}
		retry = min(2*retry, maxRetry)
	}
}

// receive handles one link's replies until its connection must be given
// up, and returns why; it returns false once the subscription is closed.
func (s *subscription) receive(ctx context.Context, l *link, up *bool, retry *time.Duration) (string, bool) {
	hc := healthCheck{interval: s.bus.healthCheck}
	hc.replied(time.Now()) // the PubSub was just made: its confirmation is due
	timer := time.NewTimer(s.bus.healthCheck)
	defer timer.Stop()
	for {
		var r received
		select {
		case <-s.done:
			return "", false
		case err := <-l.pinged:
			l.pinging = false
			if err != nil {
				return "health check ping failed: " + err.Error(), !s.isDone()
			}
			continue
		case r = <-l.in:
		case <-timer.C:
			select {
			case r = <-l.in: // a reply came meanwhile: it counts first
			default:
				switch hc.due(time.Now()) {
				case checkPing:
					l.ping(ctx, s.bus.healthCheck)
					hc.pinged(time.Now())
				case checkFailed:
					return fmt.Sprintf("health check: no reply from Redis within %v of a ping, sent after %v without a reply",
						2*s.bus.healthCheck, s.bus.healthCheck), !s.isDone()
				}
				timer.Reset(hc.wait(time.Now()))
				continue
			}
		}
		if r.err != nil {
			if s.isDone() {
				return "", false
			}
			return receiveFailure(r.err), true
		}
		if !s.handle(ctx, r.msg, up, retry) {
			return "", false
		}
		hc.replied(time.Now()) // after handle, which may have waited for Next
		timer.Reset(hc.wait(time.Now()))
	}
}

// checkAction is what a [healthCheck] says is due.
type checkAction int

const (
	checkNothing checkAction = iota // wait: see healthCheck.wait
	checkPing                       // send a ping, then call pinged
	checkFailed                     // the ping went unanswered: give the connection up
)

// healthCheck decides when a subscription pings Redis and when it gives
// a connection up: a ping is due once nothing has come from Redis for the
// interval since its last reply, and the connection has failed once
// nothing has come for twice the interval since the ping was sent (the
// pong comes after the messages Redis sent before it, which a busy
// instance may take a while to read). It takes the
// time from its caller, so that tests can drive it.
type healthCheck struct {
	interval time.Duration
	pingAt   time.Time // when a ping is due, unless one was sent
	deadline time.Time // when the ping sent fails, if not zero
}

// replied records a reply from Redis (any: a message, a confirmation or a
// pong) at now.
func (h *healthCheck) replied(now time.Time) {
	h.pingAt, h.deadline = now.Add(h.interval), time.Time{}
}

// pinged records that a ping was sent at now.
func (h *healthCheck) pinged(now time.Time) {
	h.deadline = now.Add(2 * h.interval)
}

// due returns what is due at now.
func (h *healthCheck) due(now time.Time) checkAction {
	switch {
	case !h.deadline.IsZero():
		if now.Before(h.deadline) {
			return checkNothing
		}
		return checkFailed
	case now.Before(h.pingAt):
		return checkNothing
	default:
		return checkPing
	}
}

// wait returns how long after now something may be due.
func (h *healthCheck) wait(now time.Time) time.Duration {
	if !h.deadline.IsZero() {
		return max(h.deadline.Sub(now), 0)
	}
	return max(h.pingAt.Sub(now), 0)
}

// isDone reports whether Close was called.
func (s *subscription) isDone() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// handle acts on one reply from Redis; it returns false once the
// subscription is closed.
func (s *subscription) handle(ctx context.Context, msg any, up *bool, retry *time.Duration) bool {
	switch m := msg.(type) {
	case *redis.Subscription:
		if m.Kind == "subscribe" && m.Channel == s.bus.channel && !*up {
			*up, *retry = true, minRetry
			return s.emit(localcache.Event{Kind: localcache.EventUp})
		}
	case *redis.Message:
		if !*up {
			return true // cannot happen: Redis confirms a subscription first
		}
		e, others, err := s.bus.wire.Decode([]byte(m.Payload))
		if err != nil {
			// It may be a purge from another version of this package: the
			// cache must go off and come back empty, as after a lost one.
			// Neither the log nor the reason quotes err: it may quote the
			// message (its kind), from anyone who can publish on the channel.
			s.bus.unreadable.Do(func() {
				s.bus.log.LogAttrs(ctx, slog.LevelWarn, "redisstore: a bus message is not an event of this version; "+
					"the store is emptied, as if a purge was lost (logged at most every 10s)",
					slog.String("channel", s.bus.channel), slog.Int("bytes", len(m.Payload)))
			})
			reason := fmt.Sprintf("a message of %d bytes on the channel could not be read (from another version of gormpurge, "+
				"or another publisher): it may have been a purge", len(m.Payload))
			if !s.emit(localcache.Event{Kind: localcache.EventDown, Reason: reason}) {
				return false
			}
			return s.emit(localcache.Event{Kind: localcache.EventUp})
		}
		if others {
			return s.emit(e)
		}
	}
	return true
}

// receiveFailure says why Receive failed, for EventDown's Reason and logs:
// the error of a network failure, but never the text of a reply, which
// could quote a message.
func receiveFailure(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, redis.ErrClosed):
		return "connection lost: " + err.Error()
	default:
		return fmt.Sprintf("unexpected reply from Redis (%T)", err)
	}
}
