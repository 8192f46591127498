package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gormpurge/gormpurge/backends/localcache"
)

// Defaults of the options.
const (
	// DefaultFlushTimeout is how long Publish waits, at most, for the
	// server to confirm a message, when [WithFlushTimeout] is not given.
	DefaultFlushTimeout = 5 * time.Second
	// DefaultHealthCheck is how often an idle subscription checks its
	// connection, when [WithHealthCheck] is not given.
	DefaultHealthCheck = time.Second
	// DefaultPendingMsgs and DefaultPendingBytes bound the messages a
	// subscription holds for [localcache.Follow] when [WithPendingLimits]
	// is not given: nats.go's own defaults for a subscription.
	DefaultPendingMsgs  = 65536
	DefaultPendingBytes = 64 << 20
)

// defaultMaxPayload is the size of a message when the connection does not
// know the server's max_payload yet: the server's default.
const defaultMaxPayload = 1 << 20

// Bus is a [localcache.Bus] over core NATS: every instance of the
// application publishes its purges and clears on one subject and
// subscribes to it. Make one per instance with [New] and give it both to
// [localcache.NewBackend] (with [localcache.WithBus]) and to
// [localcache.Follow]: the instance recognises its own messages by the
// Bus they came from. It is safe for concurrent use. It does not own its connection: close the *nats.Conn
// after the Bus's subscriptions are closed.
type Bus struct {
	nc           *nats.Conn
	pub          publisher // nc; a test replaces it to time a reconnect
	subject      string
	wire         *localcache.Wire
	flushTimeout time.Duration
	health       time.Duration
	pendingMsgs  int
	pendingBytes int
	log          *slog.Logger
}

var _ localcache.Bus = (*Bus)(nil)

// publisher is what Publish uses of a *nats.Conn.
type publisher interface {
	Status() nats.Status
	Stats() nats.Statistics
	MaxPayload() int64
	Publish(subject string, data []byte) error
	FlushWithContext(ctx context.Context) error
}

// An Option configures a [Bus]; pass it to [New], which checks every
// option and reports each invalid one.
type Option func(*config)

type config struct {
	flushTimeout time.Duration
	health       time.Duration
	pendingMsgs  int
	pendingBytes int
	log          *slog.Logger
	errs         []error
}

// WithFlushTimeout sets how long Publish waits, at most, for the server to
// confirm that it received the event (a NATS flush: PING, then PONG), never
// longer than Publish's context allows. Publish returns an error when the
// confirmation does not come in time, so that the dispatcher retries the
// purge. Defaults to [DefaultFlushTimeout]; it must be positive.
func WithFlushTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("WithFlushTimeout(%v): the timeout must be positive, such as 5*time.Second", d))
			return
		}
		c.flushTimeout = d
	}
}

// WithHealthCheck sets how often a subscription that receives nothing
// checks its connection with a flush (PING, then PONG), and how long it
// waits for the answer: a connection that stops answering without
// breaking (a silent partition) is reported as EventDown within about
// twice d. Shorter is quicker to notice, at the cost of a PING per d per
// instance. Defaults to [DefaultHealthCheck]; it must be positive.
func WithHealthCheck(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("WithHealthCheck(%v): the interval must be positive, such as time.Second", d))
			return
		}
		c.health = d
	}
}

// WithPendingLimits bounds the messages, and their bytes, that a
// subscription holds between the connection and [localcache.Follow]. When
// Follow falls behind by more than that, nats.go drops the messages that
// do not fit and the subscription reports EventDown (so that Follow
// clears its store), then EventUp: memory stays bounded and no purge is
// lost unnoticed. Defaults to [DefaultPendingMsgs] and
// [DefaultPendingBytes]; both must be positive. The connection's
// nats.SyncQueueLen also bounds the messages.
func WithPendingLimits(msgs, bytes int) Option {
	return func(c *config) {
		if msgs <= 0 || bytes <= 0 {
			c.errs = append(c.errs, fmt.Errorf("WithPendingLimits(%d, %d): both limits must be positive, such as 65536 messages and 64<<20 bytes", msgs, bytes))
			return
		}
		c.pendingMsgs, c.pendingBytes = msgs, bytes
	}
}

// WithLogger sets the logger a subscription reports malformed messages
// to, at Warn. Defaults to [slog.Default]; nil is an error.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.errs = append(c.errs, errors.New("WithLogger(nil): pass a logger, or slog.New(slog.DiscardHandler) to silence the bus"))
			return
		}
		c.log = l
	}
}

// New returns a Bus that publishes and subscribes on subject over nc, a
// connection the caller keeps and closes. Give every instance of the
// application the same subject, and a subject of its own to each
// application (or site) sharing the NATS server. Configure nc to reconnect
// for ever (nats.MaxReconnects(-1)): a subscription whose connection is
// closed ends, and [localcache.Follow] keeps the cache off until it can
// subscribe again.
//
// New returns an error if nc is nil or closed, if subject is not a plain
// NATS subject (empty, with wildcards, white space or empty tokens), or if
// an option is invalid, naming every problem and how to fix it.
func New(nc *nats.Conn, subject string, opts ...Option) (*Bus, error) {
	c := config{
		flushTimeout: DefaultFlushTimeout,
		health:       DefaultHealthCheck,
		pendingMsgs:  DefaultPendingMsgs,
		pendingBytes: DefaultPendingBytes,
		log:          slog.Default(),
	}
	switch {
	case nc == nil:
		c.errs = append(c.errs, errors.New("New(nil, ...): pass a connection from nats.Connect"))
	case nc.IsClosed():
		c.errs = append(c.errs, errors.New("New: the connection is closed: pass an open one from nats.Connect"))
	}
	if err := checkSubject(subject); err != nil {
		c.errs = append(c.errs, err)
	}
	for _, opt := range opts {
		if opt == nil {
			c.errs = append(c.errs, errors.New("an Option is nil: remove it, or pass one made by a With... function"))
			continue
		}
		opt(&c)
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, fmt.Errorf("natsbus: invalid configuration:\n%w", err)
	}
	w, err := localcache.NewWire()
	if err != nil {
		return nil, fmt.Errorf("natsbus: %w", err)
	}
	return &Bus{
		nc: nc, pub: nc, subject: subject, wire: w,
		flushTimeout: c.flushTimeout, health: c.health,
		pendingMsgs: c.pendingMsgs, pendingBytes: c.pendingBytes,
		log: c.log,
	}, nil
}

// checkSubject returns an error unless s is a NATS subject a message can
// be published on.
func checkSubject(s string) error {
	const fix = `pass a plain subject such as "gormpurge.mysite"`
	switch {
	case s == "":
		return fmt.Errorf("the subject is empty: %s", fix)
	case strings.ContainsAny(s, "*>"):
		return fmt.Errorf("subject %q has a wildcard (* or >): %s", s, fix)
	case strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return fmt.Errorf("subject %q has white space or control characters: %s", s, fix)
	case strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, ".."):
		return fmt.Errorf("subject %q has an empty token: %s", s, fix)
	}
	return nil
}

// Subject returns the subject the bus publishes and subscribes on.
func (b *Bus) Subject() string { return b.subject }

// Publish sends e, an EventPurge or EventClear, to every other instance
// subscribed to the bus, in messages of at most the server's max_payload
// (a larger purge is split), then waits for the server to confirm it
// received them (see [WithFlushTimeout]). It returns an error, so that the
// dispatcher retries the purge, when the connection is not up (nats.go
// would otherwise buffer the message and report success), when the server
// does not confirm in time, when the connection was re-established
// meanwhile (the messages may have been lost with the old connection; a
// retried purge that was delivered after all is harmless), when ctx ends
// first, and for any other kind of event. A publish that fails once
// attempted, even one refused because the connection is down before
// anything is sent, uses up a message number, so that the other instances
// see a gap at the next message and clear their stores (one refused for an
// ended ctx or a wrong kind of event does not).
// Publish is safe for concurrent use.
func (b *Bus) Publish(ctx context.Context, e localcache.Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("natsbus: publish %s: %w", e.Kind, err)
	}
	if e.Kind != localcache.EventPurge && e.Kind != localcache.EventClear {
		return fmt.Errorf("natsbus: cannot publish a %s event: only purge and clear travel on a bus", e.Kind)
	}
	maxBytes := int(b.pub.MaxPayload())
	if maxBytes <= 0 {
		maxBytes = defaultMaxPayload
	}
	reconnects := b.pub.Stats().Reconnects
	if st := b.pub.Status(); st != nats.CONNECTED {
		err := fmt.Errorf("natsbus: publish %s: not connected to the NATS server (connection %s)", e.Kind, st)
		b.wire.Skip() // the next message shows the others a gap, as after a failed send
		return err
	}
	err := b.wire.Publish(e, maxBytes, func(p []byte) error {
		return b.pub.Publish(b.subject, p)
	})
	if err != nil {
		return fmt.Errorf("natsbus: publish %s: %w", e.Kind, err)
	}
	if err := b.confirm(ctx); err != nil {
		return fmt.Errorf("natsbus: publish %s: %w", e.Kind, err)
	}
	if n := b.pub.Stats().Reconnects; n != reconnects {
		return fmt.Errorf("natsbus: publish %s: not confirmed: the connection to the NATS server was re-established meanwhile (%d reconnects), and may have lost the event", e.Kind, n-reconnects)
	}
	return nil
}

// confirmSlice is how long confirm waits for a PONG before it looks at the
// connection's status again.
const confirmSlice = 100 * time.Millisecond

// confirm waits for the server to confirm every message published so far
// (a PONG to a PING sent after them), for at most the flush timeout and
// no longer than ctx allows. It fails early when the connection leaves
// CONNECTED meanwhile: nats.go would keep the PING until it reconnects.
func (b *Bus) confirm(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.flushTimeout)
	defer cancel()
	for {
		if st := b.pub.Status(); st != nats.CONNECTED {
			return fmt.Errorf("not confirmed: the connection to the NATS server is %s", st)
		}
		sctx, scancel := context.WithTimeout(ctx, confirmSlice)
		err := b.pub.FlushWithContext(sctx)
		scancel()
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("not confirmed by the NATS server within the flush timeout (%v) or the context: %w", b.flushTimeout, context.Cause(ctx))
		case !errors.Is(err, context.DeadlineExceeded):
			return err
		}
	}
}

// Subscribe subscribes to the events other instances publish. The
// subscription's first event is EventUp, once the server has confirmed
// the subscription; see [Subscription]. It fails only when the connection
// is closed or ctx has ended.
func (b *Bus) Subscribe(ctx context.Context) (localcache.Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("natsbus: subscribe: %w", err)
	}
	s, err := b.subscribe()
	if err != nil {
		return nil, err
	}
	return s, nil
}
