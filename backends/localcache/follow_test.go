package localcache_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/localcache"
)

// hub is an in-process bus server: every instance's subscriptions receive
// the messages of the others, through a Wire, as a real bus would.
type hub struct {
	mu   sync.Mutex
	subs map[*hubSub]bool
	down bool // publishes fail
}

func newHub() *hub { return &hub{subs: make(map[*hubSub]bool)} }

// instance returns a new instance's Bus on h.
func (h *hub) instance(t *testing.T) *hubBus {
	w, err := localcache.NewWire()
	require.NoError(t, err)
	return &hubBus{hub: h, wire: w}
}

// broadcast sends an event to every subscription, as the network would.
func (h *hub) broadcast(e localcache.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.events <- e
	}
}

type hubBus struct {
	hub  *hub
	wire *localcache.Wire
}

func (b *hubBus) Publish(ctx context.Context, e localcache.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.hub.mu.Lock()
	down := b.hub.down
	b.hub.mu.Unlock()
	if down {
		return errors.New("hub: down")
	}
	return b.wire.Publish(e, 1<<10, func(msg []byte) error {
		b.hub.mu.Lock()
		defer b.hub.mu.Unlock()
		for s := range b.hub.subs {
			if e, mine, err := s.bus.wire.Decode(msg); err == nil && mine {
				if s.drop > 0 {
					s.drop--
					continue
				}
				s.events <- e
			}
		}
		return nil
	})
}

func (b *hubBus) Subscribe(ctx context.Context) (localcache.Subscription, error) {
	s := &hubSub{bus: b, events: make(chan localcache.Event, 1024), closed: make(chan struct{})}
	s.events <- localcache.Event{Kind: localcache.EventUp}
	b.hub.mu.Lock()
	b.hub.subs[s] = true
	b.hub.mu.Unlock()
	return s, nil
}

type hubSub struct {
	bus    *hubBus
	events chan localcache.Event
	closed chan struct{}
	once   sync.Once
	drop   int // messages to lose silently, with hub.mu held
}

func (s *hubSub) Next(ctx context.Context) (localcache.Event, error) {
	select {
	case e := <-s.events:
		return e, nil
	case <-s.closed:
		return localcache.Event{}, errors.New("hub: subscription closed")
	case <-ctx.Done():
		return localcache.Event{}, ctx.Err()
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

// fleetInstance is one application instance: a memory store, a backend
// that publishes on the hub, and Follow running until the test ends.
type fleetInstance struct {
	store   *localcache.MemoryStore
	backend *localcache.Backend
	bus     *hubBus
}

func startInstance(t *testing.T, h *hub) *fleetInstance {
	store, err := localcache.NewMemoryStore()
	require.NoError(t, err)
	bus := h.instance(t)
	backend, err := localcache.NewBackend(store, localcache.WithBus(bus))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- localcache.Follow(ctx, store, bus, localcache.WithFollowLogger(slog.New(slog.DiscardHandler)))
	}()
	t.Cleanup(func() {
		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)
	})
	waitUp(t, h, bus, store)
	return &fleetInstance{store: store, backend: backend, bus: bus}
}

// waitUp waits until Follow has subscribed bus and resumed store: Follow
// suspends the store (generation 1) and resumes it once subscribed
// (generation 2).
func waitUp(t *testing.T, h *hub, bus *hubBus, store *localcache.MemoryStore) {
	require.Eventually(t, func() bool {
		h.mu.Lock()
		subscribed := false
		for s := range h.subs {
			subscribed = subscribed || s.bus == bus
		}
		h.mu.Unlock()
		g, err := store.Generation(context.Background())
		return err == nil && subscribed && g >= 2 && !store.Suspended()
	}, 5*time.Second, time.Millisecond, "Follow resumes the store once subscribed")
}

// cache stores a page of path tagged tag, as the middleware would.
func (f *fleetInstance) cache(t *testing.T, path, tag string) {
	g, err := f.store.Generation(t.Context())
	require.NoError(t, err)
	ok, err := f.store.Set(t.Context(), "http://example.com"+path, &localcache.Entry{
		Header:  http.Header{"Content-Type": {"text/html"}},
		Body:    []byte(path),
		Indexes: []string{"p " + path, "t " + tag}, // the index keys the middleware gives a page
	}, g)
	require.NoError(t, err)
	require.True(t, ok)
}

func (f *fleetInstance) has(t *testing.T, path string) bool {
	_, ok, err := f.store.Get(t.Context(), "http://example.com"+path)
	require.NoError(t, err)
	return ok
}

func TestFollowAppliesOtherInstancesPurges(t *testing.T) {
	h := newHub()
	a, b := startInstance(t, h), startInstance(t, h)
	a.cache(t, "/posts/1", "post:1")
	b.cache(t, "/posts/1", "post:1")
	b.cache(t, "/posts/2", "post:2")

	_, err := a.backend.Purge(t.Context(), backends.Request{URLs: []string{"/posts/1"}})
	require.NoError(t, err)
	assert.False(t, a.has(t, "/posts/1"), "the purging instance's own store")
	require.Eventually(t, func() bool { return !b.has(t, "/posts/1") }, 5*time.Second, time.Millisecond,
		"the other instance's store loses the page")
	assert.True(t, b.has(t, "/posts/2"), "an unrelated page stays")

	_, err = a.backend.Purge(t.Context(), backends.Request{Tags: []string{"post:2"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return !b.has(t, "/posts/2") }, 5*time.Second, time.Millisecond, "a tag purge travels too")

	b.cache(t, "/posts/3", "post:3")
	_, err = a.backend.PurgeAll(t.Context())
	require.NoError(t, err)
	require.Eventually(t, func() bool { return b.store.Len() == 0 }, 5*time.Second, time.Millisecond, "a clear travels too")
}

func TestPurgeFailsWhenTheBusRefuses(t *testing.T) {
	h := newHub()
	a := startInstance(t, h)
	a.cache(t, "/posts/1", "post:1")
	h.mu.Lock()
	h.down = true
	h.mu.Unlock()
	_, err := a.backend.Purge(t.Context(), backends.Request{URLs: []string{"/posts/1"}})
	require.Error(t, err, "the dispatcher must retry a purge the other instances did not hear")
	assert.False(t, backends.IsPermanent(err))
	assert.Contains(t, err.Error(), "could not tell the other instances")
	assert.False(t, a.has(t, "/posts/1"), "the local purge happened anyway")
	_, err = a.backend.PurgeAll(t.Context())
	require.Error(t, err)
}

func TestFollowSuspendsTheStoreWhileTheBusIsDown(t *testing.T) {
	h := newHub()
	a, b := startInstance(t, h), startInstance(t, h)
	b.cache(t, "/posts/1", "post:1")

	h.broadcast(localcache.Event{Kind: localcache.EventDown, Reason: "test"})
	require.Eventually(t, b.store.Suspended, 5*time.Second, time.Millisecond)
	assert.False(t, b.has(t, "/posts/1"), "a suspended store serves nothing")
	g, err := b.store.Generation(t.Context())
	require.NoError(t, err)
	ok, err := b.store.Set(t.Context(), "http://example.com/posts/1", &localcache.Entry{Body: []byte("x")}, g)
	require.NoError(t, err)
	assert.False(t, ok, "a suspended store stores nothing")

	h.broadcast(localcache.Event{Kind: localcache.EventUp})
	require.Eventually(t, func() bool { return !b.store.Suspended() }, 5*time.Second, time.Millisecond)
	b.cache(t, "/posts/1", "post:1")
	assert.True(t, b.has(t, "/posts/1"))
	_ = a
}

func TestFollowClearsTheStoreOnASequenceGap(t *testing.T) {
	h := newHub()
	a, b := startInstance(t, h), startInstance(t, h)
	b.cache(t, "/posts/9", "post:9")
	// The first purge reaches b; the second is lost without the bus
	// noticing; the third arrives with a gap in its number.
	_, err := a.backend.Purge(t.Context(), backends.Request{URLs: []string{"/posts/1"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return b.store.Len() == 1 }, 5*time.Second, time.Millisecond)
	h.mu.Lock()
	for s := range h.subs {
		if s.bus == b.bus {
			s.drop = 1
		}
	}
	h.mu.Unlock()
	_, err = a.backend.Purge(t.Context(), backends.Request{URLs: []string{"/posts/9"}}) // lost
	require.NoError(t, err)
	assert.True(t, b.has(t, "/posts/9"), "the lost purge did not reach b")
	_, err = a.backend.Purge(t.Context(), backends.Request{URLs: []string{"/posts/3"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return !b.has(t, "/posts/9") }, 5*time.Second, time.Millisecond,
		"a gap in the sequence clears the store: the page whose purge was lost goes")
}

func TestFollowLeavesTheStoreSuspendedWhenItReturns(t *testing.T) {
	store, err := localcache.NewMemoryStore()
	require.NoError(t, err)
	h := newHub()
	bus := h.instance(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- localcache.Follow(ctx, store, bus, localcache.WithFollowLogger(slog.New(slog.DiscardHandler)))
	}()
	waitUp(t, h, bus, store)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	assert.True(t, store.Suspended(), "nothing applies others' purges any more: the store must not serve")
}

// failingBus fails every Subscribe.
type failingBus struct {
	mu    sync.Mutex
	calls int
}

func (b *failingBus) Publish(context.Context, localcache.Event) error { return nil }
func (b *failingBus) Subscribe(context.Context) (localcache.Subscription, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	return nil, errors.New("no server")
}

func TestFollowRetriesSubscribingWithBackoff(t *testing.T) {
	store, err := localcache.NewMemoryStore()
	require.NoError(t, err)
	bus := &failingBus{}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err = localcache.Follow(ctx, store, bus, localcache.WithResubscribeDelay(10*time.Millisecond),
		localcache.WithFollowLogger(slog.New(slog.DiscardHandler)))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	bus.mu.Lock()
	defer bus.mu.Unlock()
	assert.GreaterOrEqual(t, bus.calls, 3, "Follow subscribes again after a failure")
	assert.Less(t, bus.calls, 30, "with backoff, not in a tight loop")
	assert.True(t, store.Suspended(), "a store whose bus never came up never serves")
}

func TestFollowAndWithBusRefuseBadArguments(t *testing.T) {
	store, err := localcache.NewMemoryStore()
	require.NoError(t, err)
	bus := newHub().instance(t)
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"nil store", localcache.Follow(t.Context(), nil, bus), "Follow(nil)"},
		{"nil bus", localcache.Follow(t.Context(), store, nil), "Follow(ctx, store, nil)"},
		{"typed nil bus", localcache.Follow(t.Context(), store, (*hubBus)(nil)), "nil *localcache_test.hubBus"},
		{"nil option", localcache.Follow(t.Context(), store, bus, nil), "a FollowOption is nil"},
		{"nil logger", localcache.Follow(t.Context(), store, bus, localcache.WithFollowLogger(nil)), "WithFollowLogger(nil)"},
		{"bad delay", localcache.Follow(t.Context(), store, bus, localcache.WithResubscribeDelay(0)), "WithResubscribeDelay(0s)"},
		{"WithBus(nil)", func() error { _, err := localcache.NewBackend(store, localcache.WithBus(nil)); return err }(), "WithBus(nil)"},
		{"WithBus(typed nil)", func() error {
			_, err := localcache.NewBackend(store, localcache.WithBus((*hubBus)(nil)))
			return err
		}(), "WithBus((*localcache_test.hubBus)(nil))"},
		{"nil BackendOption", func() error { _, err := localcache.NewBackend(store, nil); return err }(), "a BackendOption is nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Error(t, tc.err)
			assert.Contains(t, tc.err.Error(), tc.want)
		})
	}
}

func TestClearHandlerGivenTheBackendClearsEveryInstance(t *testing.T) {
	h := newHub()
	a, b := startInstance(t, h), startInstance(t, h)
	a.cache(t, "/posts/1", "post:1")
	b.cache(t, "/posts/1", "post:1")
	rec := httptest.NewRecorder()
	localcache.ClearHandler(a.backend).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/admin/cache/clear", nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, "removed 1 entries\n", rec.Body.String())
	assert.Zero(t, a.store.Len())
	require.Eventually(t, func() bool { return b.store.Len() == 0 }, 5*time.Second, time.Millisecond,
		"one POST clears every instance")
}
