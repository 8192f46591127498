package redisstore

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

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
