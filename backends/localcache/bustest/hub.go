package bustest

import (
	"context"
	"errors"
	"sync"

	"github.com/gormpurge/gormpurge/backends/localcache"
)

// hubMaxMessage is the largest message a Hub carries, small enough that
// tests exercise the splitting of purges.
const hubMaxMessage = 64 << 10

// hubQueue bounds the events waiting in one subscription: a subscriber
// that falls further behind loses messages and gets EventDown, as a slow
// consumer of a real bus does.
const hubQueue = 4096

// ErrHubDown is returned by Publish on a [Hub] that is down.
var ErrHubDown = errors.New("bustest: the hub is down")

// A Hub is an in-process bus server, for tests of code that uses a
// [localcache.Bus] without a Redis or NATS server: every instance made by
// [Hub.Instance] receives the messages the others publish, framed by a
// [localcache.Wire] as real buses do. [HubBus.Cut] cuts one instance off to
// test what a broken connection does. It passes this package's suite.
type Hub struct {
	mu   sync.Mutex
	subs map[*hubSub]struct{}
}

// NewHub returns a Hub with no instances.
func NewHub() *Hub { return &Hub{subs: make(map[*hubSub]struct{})} }

// Instance returns the Bus of a new instance on h.
func (h *Hub) Instance() (*HubBus, error) {
	w, err := localcache.NewWire()
	if err != nil {
		return nil, err
	}
	return &HubBus{hub: h, wire: w}, nil
}

// HubBus is one instance's [localcache.Bus] on a [Hub].
type HubBus struct {
	hub  *Hub
	wire *localcache.Wire

	mu   sync.Mutex
	cut  bool
	drop int // messages to lose silently
}

var _ localcache.Bus = (*HubBus)(nil)

// Drop makes b lose the next n messages published to it without saying
// so, as a faulty bus could: [localcache.Follow] must notice the gap in
// their numbers.
func (b *HubBus) Drop(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.drop = n
}

// dropOne reports whether b loses the message being delivered.
func (b *HubBus) dropOne() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drop > 0 {
		b.drop--
		return true
	}
	return false
}

// Cut cuts b off the hub until Restore: its subscriptions get EventDown
// and lose every message published meanwhile, and its Publish fails.
func (b *HubBus) Cut() {
	b.mu.Lock()
	b.cut = true
	b.mu.Unlock()
	b.hub.mu.Lock()
	defer b.hub.mu.Unlock()
	for s := range b.hub.subs {
		if s.bus == b {
			s.push(localcache.Event{Kind: localcache.EventDown, Reason: "cut off the hub"})
		}
	}
}

// Restore ends a Cut: b's subscriptions get EventUp and receive again.
func (b *HubBus) Restore() {
	b.mu.Lock()
	b.cut = false
	b.mu.Unlock()
	b.hub.mu.Lock()
	defer b.hub.mu.Unlock()
	for s := range b.hub.subs {
		if s.bus == b {
			s.push(localcache.Event{Kind: localcache.EventUp})
		}
	}
}

func (b *HubBus) isCut() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cut
}

// Publish delivers e to the subscriptions of every other instance that is
// not cut off.
func (b *HubBus) Publish(ctx context.Context, e localcache.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.isCut() {
		return ErrHubDown
	}
	return b.wire.Publish(e, hubMaxMessage, func(msg []byte) error {
		b.hub.mu.Lock()
		defer b.hub.mu.Unlock()
		for s := range b.hub.subs {
			if s.bus.isCut() || s.bus.dropOne() {
				continue
			}
			e, others, err := s.bus.wire.Decode(msg)
			if err != nil || !others {
				continue
			}
			s.push(e)
		}
		return nil
	})
}

// Subscribe returns a subscription whose first event is EventUp (or
// EventDown, if b is cut off).
func (b *HubBus) Subscribe(ctx context.Context) (localcache.Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &hubSub{bus: b, closed: make(chan struct{}), wake: make(chan struct{}, 1)}
	b.hub.mu.Lock()
	defer b.hub.mu.Unlock()
	if b.isCut() {
		s.push(localcache.Event{Kind: localcache.EventDown, Reason: "cut off the hub"})
	} else {
		s.push(localcache.Event{Kind: localcache.EventUp})
	}
	b.hub.subs[s] = struct{}{}
	return s, nil
}

type hubSub struct {
	bus    *HubBus
	closed chan struct{}
	once   sync.Once
	wake   chan struct{}

	mu       sync.Mutex
	queue    []localcache.Event
	overflow bool // the queue overflowed: deliver Down, then Up
}

// push queues e, with the hub's lock held.
func (s *hubSub) push(e localcache.Event) {
	s.mu.Lock()
	switch {
	case s.overflow:
	case len(s.queue) >= hubQueue:
		s.overflow = true
		s.queue = append(s.queue[:0], localcache.Event{Kind: localcache.EventDown, Reason: "slow consumer: messages dropped"})
	default:
		s.queue = append(s.queue, e)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *hubSub) Next(ctx context.Context) (localcache.Event, error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			e := s.queue[0]
			s.queue = s.queue[1:]
			if e.Kind == localcache.EventDown && s.overflow {
				s.overflow = false
				s.queue = append(s.queue, localcache.Event{Kind: localcache.EventUp})
			}
			s.mu.Unlock()
			return e, nil
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-s.closed:
			return localcache.Event{}, errors.New("bustest: subscription closed")
		case <-ctx.Done():
			return localcache.Event{}, ctx.Err()
		}
	}
}

func (s *hubSub) Close(context.Context) error {
	s.once.Do(func() {
		s.bus.hub.mu.Lock()
		delete(s.bus.hub.subs, s)
		s.bus.hub.mu.Unlock()
		close(s.closed)
	})
	return nil
}
