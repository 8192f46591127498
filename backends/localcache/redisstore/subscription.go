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

	"github.com/gormpurge/gormpurge/backends/localcache"
)

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
		select {
		case <-s.done: // Close won the race: after Close, Next only fails
			return localcache.Event{}, errClosed
		default:
			return e, nil
		}
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
