package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gormpurge/gormpurge/backends/localcache"
)

// ErrClosed is returned by [Subscription.Next] once the subscription is
// closed.
var ErrClosed = errors.New("natsbus: subscription closed")

// Subscription delivers the events other instances publish on a [Bus],
// and says when some may have been lost; see [localcache.Subscription].
// Get one from [Bus.Subscribe]. One goroutine calls Next; Close may be
// called from any goroutine, and must be, to stop the goroutine the
// subscription starts.
//
// The subscription is up (its last event was EventUp) only while the
// connection is CONNECTED, has not reconnected since the server confirmed
// the subscription, and nats.go has dropped none of its messages. Next
// checks all three before it returns each event, and reports EventDown as
// soon as one fails, before any message received after the failure; then
// EventUp once the connection is CONNECTED again and the server has
// confirmed (with a flush, which nats.go sends after it has sent the
// subscription again) that it delivers the subject's messages.
type Subscription struct {
	bus    *Bus
	sub    *nats.Subscription
	status chan nats.Status
	in     chan delivery // from pump, unbuffered

	ctx      context.Context // ended by Close
	cancel   context.CancelFunc
	pumpDone chan struct{}
	close    sync.Once

	// Next's state: one goroutine calls Next.
	up         bool
	reconnects uint64    // the connection's count when it came up
	dropped    int       // the subscription's count when it came up
	held       *nats.Msg // received, not yet returned
	err        error     // why the subscription cannot go on
	timer      *time.Timer
}

var _ localcache.Subscription = (*Subscription)(nil)

// delivery is what the pump receives from nats.go.
type delivery struct {
	m   *nats.Msg
	err error
}

// subscribe starts a Subscription.
func (b *Bus) subscribe() (*Subscription, error) {
	// Listen to status changes first, so that none after the subscription
	// is sent goes unheard.
	status := b.nc.StatusChanged(nats.CONNECTED, nats.CONNECTING, nats.RECONNECTING,
		nats.DISCONNECTED, nats.CLOSED, nats.DRAINING_SUBS, nats.DRAINING_PUBS)
	sub, err := b.nc.SubscribeSync(b.subject)
	if err != nil {
		b.nc.RemoveStatusListener(status)
		return nil, fmt.Errorf("natsbus: subscribe to %q: %w", b.subject, err)
	}
	if err := sub.SetPendingLimits(b.pendingMsgs, b.pendingBytes); err != nil {
		_ = sub.Unsubscribe()
		b.nc.RemoveStatusListener(status)
		return nil, fmt.Errorf("natsbus: subscribe to %q: pending limits: %w", b.subject, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Subscription{
		bus: b, sub: sub, status: status, in: make(chan delivery),
		ctx: ctx, cancel: cancel, pumpDone: make(chan struct{}),
		timer: time.NewTimer(b.health),
	}
	go s.pump()
	return s, nil
}

// pump hands the messages nats.go queues for the subscription to Next,
// one at a time, until Close or an error that ends the subscription.
func (s *Subscription) pump() {
	defer close(s.pumpDone)
	for {
		m, err := s.sub.NextMsgWithContext(s.ctx)
		if s.ctx.Err() != nil {
			return
		}
		select {
		case s.in <- delivery{m: m, err: err}:
		case <-s.ctx.Done():
			return
		}
		if err != nil && !errors.Is(err, nats.ErrSlowConsumer) {
			return
		}
	}
}

// Next returns the next event: EventUp first, once the server has
// confirmed the subscription; then the purges and clears of other
// instances, in the order they published them; EventDown whenever some
// may have been lost since the last EventUp (the connection left
// CONNECTED or reconnected, nats.go dropped messages because the
// subscription fell behind by more than its pending limits, a health
// check went unanswered, a message could not be read), and EventUp again
// once the subscription receives everything again. It returns an error
// when ctx ends, after Close ([ErrClosed]), or when the subscription
// cannot go on (the connection was closed).
func (s *Subscription) Next(ctx context.Context) (localcache.Event, error) {
	e, err := s.next(ctx)
	if err == nil && s.ctx.Err() != nil {
		// Close ran while the event was being made (an unsubscribed
		// subscription reads as a fault): after Close, Next only fails.
		return localcache.Event{}, ErrClosed
	}
	return e, err
}

// next is Next, but for a Close that races with it.
func (s *Subscription) next(ctx context.Context) (localcache.Event, error) {
	for {
		if err := s.stopped(ctx); err != nil {
			return localcache.Event{}, err
		}
		if !s.up {
			if s.comeUp(ctx) {
				return localcache.Event{Kind: localcache.EventUp}, nil
			}
			continue
		}
		if reason := s.fault(); reason != "" {
			s.up = false
			return localcache.Event{Kind: localcache.EventDown, Reason: reason}, nil
		}
		if m := s.held; m != nil {
			s.held = nil
			e, others, err := s.bus.wire.Decode(m.Data)
			switch {
			case err != nil:
				// Neither the log nor the reason quotes err: it may quote
				// the message (its kind), which came from anyone who can
				// publish on the subject.
				s.bus.log.LogAttrs(ctx, slog.LevelWarn, "natsbus: a message on the bus's subject is not an event of this version; the cache is off until the subscription is up again",
					slog.String("subject", m.Subject), slog.Int("bytes", len(m.Data)))
				s.up = false
				return localcache.Event{Kind: localcache.EventDown, Reason: fmt.Sprintf(
					"a message of %d bytes on the subject could not be read (from another version of gormpurge, "+
						"or another publisher): it may have been a purge", len(m.Data))}, nil
			case others:
				return e, nil
			}
			continue // this instance's own
		}
		s.timer.Reset(s.bus.health)
		select {
		case d := <-s.in:
			switch {
			case d.err == nil:
				s.held = d.m // returned once fault has looked
			case errors.Is(d.err, nats.ErrSlowConsumer):
				// fault sees the drops, if they came since EventUp.
			default:
				s.err = fmt.Errorf("natsbus: subscription to %q ended: %w", s.bus.subject, d.err)
			}
		case <-s.status: // fault looks at the status itself
		case <-s.timer.C:
			if err := s.flush(ctx, s.bus.health); err != nil && s.stopped(ctx) == nil {
				s.up = false
				return localcache.Event{Kind: localcache.EventDown,
					Reason: fmt.Sprintf("health check: the NATS server did not answer within %v: %v", s.bus.health, err)}, nil
			}
		case <-ctx.Done():
		case <-s.ctx.Done():
		}
	}
}

// stopped returns the error Next returns, if it must return one.
func (s *Subscription) stopped(ctx context.Context) error {
	switch {
	case s.ctx.Err() != nil:
		return ErrClosed
	case ctx.Err() != nil:
		return fmt.Errorf("natsbus: next event: %w", context.Cause(ctx))
	}
	return s.err
}

// fault returns why events may have been lost since the subscription came
// up, or "".
func (s *Subscription) fault() string {
	nc := s.bus.nc
	if st := nc.Status(); st != nats.CONNECTED {
		return fmt.Sprintf("the connection to the NATS server is %s", st)
	}
	if r := nc.Stats().Reconnects; r != s.reconnects {
		return "the connection to the NATS server was re-established: messages sent meanwhile are lost"
	}
	n, err := s.sub.Dropped()
	if err != nil {
		return fmt.Sprintf("the subscription is no longer valid: %v", err)
	}
	if n > s.dropped {
		return fmt.Sprintf("slow consumer: nats.go dropped %d messages that did not fit in the subscription's pending limits (%d messages, %d bytes)",
			n-s.dropped, s.bus.pendingMsgs, s.bus.pendingBytes)
	}
	return ""
}

// comeUp brings the subscription up if the server confirms it, and
// otherwise waits until it is worth trying again. It reports whether the
// subscription is up.
func (s *Subscription) comeUp(ctx context.Context) bool {
	nc := s.bus.nc
	if nc.IsClosed() {
		s.err = fmt.Errorf("natsbus: subscription to %q ended: %w", s.bus.subject, nats.ErrConnectionClosed)
		return false
	}
	if nc.Status() == nats.CONNECTED {
		// A reconnection between here and the end of the flush would
		// change the count: the subscription must wait for the next.
		r := nc.Stats().Reconnects
		err := s.flush(ctx, s.bus.flushTimeout)
		if err == nil && nc.Status() == nats.CONNECTED && nc.Stats().Reconnects == r {
			n, err := s.sub.Dropped()
			if err != nil {
				s.err = fmt.Errorf("natsbus: subscription to %q ended: %w", s.bus.subject, err)
				return false
			}
			// Messages dropped before now were lost before EventUp:
			// the store was suspended or cleared since.
			s.up, s.reconnects, s.dropped = true, r, n
			return true
		}
		if s.stopped(ctx) != nil {
			return false
		}
	}
	// Wait for a status change, and look again after a health check's
	// interval in case one was missed (nats.go drops those that do not
	// fit in the listener's buffer).
	s.timer.Reset(s.bus.health)
	select {
	case <-s.status:
	case <-s.timer.C:
	case <-ctx.Done():
	case <-s.ctx.Done():
	}
	return false
}

// flush asks the server for a PONG, waiting at most d, and no longer than
// ctx or Close allow. nats.go sends the PING after the subscription's SUB
// (and after the SUBs it sends again on reconnecting), so a PONG confirms
// the server delivers the subject's messages.
func (s *Subscription) flush(ctx context.Context, d time.Duration) error {
	fctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	return s.bus.nc.FlushWithContext(fctx)
}

// Close ends the subscription: it unsubscribes, stops listening to the
// connection's status and stops the subscription's goroutine, waiting for
// it until ctx ends. A Next in progress returns [ErrClosed]. It leaves the
// connection open. Calling Close again does nothing more.
func (s *Subscription) Close(ctx context.Context) error {
	var err error
	s.close.Do(func() {
		s.cancel()
		s.bus.nc.RemoveStatusListener(s.status)
		if uerr := s.sub.Unsubscribe(); uerr != nil &&
			!errors.Is(uerr, nats.ErrConnectionClosed) && !errors.Is(uerr, nats.ErrBadSubscription) {
			err = fmt.Errorf("natsbus: unsubscribe from %q: %w", s.bus.subject, uerr)
		}
	})
	select {
	case <-s.pumpDone:
		return err
	case <-ctx.Done():
		return errors.Join(err, fmt.Errorf("natsbus: close: %w", context.Cause(ctx)))
	}
}
