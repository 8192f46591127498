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
	"github.com/gormpurge/gormpurge/backends/localcache/bustest"
)

// fleetInstance is one application instance: a memory store, a backend
// that publishes on the hub, and Follow running until the test ends.
type fleetInstance struct {
	store   *localcache.MemoryStore
	backend *localcache.Backend
	bus     *bustest.HubBus
}

func startInstance(t *testing.T, h *bustest.Hub) *fleetInstance {
	store, err := localcache.NewMemoryStore()
	require.NoError(t, err)
	bus, err := h.Instance()
	require.NoError(t, err)
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
	waitUp(t, store)
	return &fleetInstance{store: store, backend: backend, bus: bus}
}

// waitUp waits until Follow has subscribed bus and resumed store: Follow
// suspends the store (generation 1) and resumes it once subscribed
// (generation 2).
func waitUp(t *testing.T, store *localcache.MemoryStore) {
	require.Eventually(t, func() bool {
		g, err := store.Generation(context.Background())
		return err == nil && g >= 2 && !store.Suspended()
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
	h := bustest.NewHub()
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
	h := bustest.NewHub()
	a := startInstance(t, h)
	a.cache(t, "/posts/1", "post:1")
	a.bus.Cut()
	_, err := a.backend.Purge(t.Context(), backends.Request{URLs: []string{"/posts/1"}})
	require.Error(t, err, "the dispatcher must retry a purge the other instances did not hear")
	assert.False(t, backends.IsPermanent(err))
	assert.Contains(t, err.Error(), "could not tell the other instances")
	assert.False(t, a.has(t, "/posts/1"), "the local purge happened anyway")
	_, err = a.backend.PurgeAll(t.Context())
	require.Error(t, err)
}

func TestFollowSuspendsTheStoreWhileTheBusIsDown(t *testing.T) {
	h := bustest.NewHub()
	a, b := startInstance(t, h), startInstance(t, h)
	b.cache(t, "/posts/1", "post:1")

	b.bus.Cut()
	require.Eventually(t, b.store.Suspended, 5*time.Second, time.Millisecond)
	assert.False(t, b.has(t, "/posts/1"), "a suspended store serves nothing")
	g, err := b.store.Generation(t.Context())
	require.NoError(t, err)
	ok, err := b.store.Set(t.Context(), "http://example.com/posts/1", &localcache.Entry{Body: []byte("x")}, g)
	require.NoError(t, err)
	assert.False(t, ok, "a suspended store stores nothing")

	// A purge while b is cut off never reaches b.
	_, err = a.backend.Purge(t.Context(), backends.Request{URLs: []string{"/posts/1"}})
	require.NoError(t, err)

	b.bus.Restore()
	require.Eventually(t, func() bool { return !b.store.Suspended() }, 5*time.Second, time.Millisecond)
	assert.Zero(t, b.store.Len(), "b resumes empty: nothing it cached before the cut survives")
	b.cache(t, "/posts/1", "post:1")
	assert.True(t, b.has(t, "/posts/1"), "and caches again")
}

func TestFollowClearsTheStoreOnASequenceGap(t *testing.T) {
	h := bustest.NewHub()
	a, b := startInstance(t, h), startInstance(t, h)
	b.cache(t, "/posts/9", "post:9")
	// The first purge reaches b; the second is lost without the bus
	// noticing; the third arrives with a gap in its number.
	_, err := a.backend.Purge(t.Context(), backends.Request{URLs: []string{"/posts/1"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return b.store.Len() == 1 }, 5*time.Second, time.Millisecond)
	b.bus.Drop(1)
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
	bus, err := bustest.NewHub().Instance()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- localcache.Follow(ctx, store, bus, localcache.WithFollowLogger(slog.New(slog.DiscardHandler)))
	}()
	waitUp(t, store)
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
	bus, err := bustest.NewHub().Instance()
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"nil store", localcache.Follow(t.Context(), nil, bus), "Follow(nil)"},
		{"nil bus", localcache.Follow(t.Context(), store, nil), "Follow(ctx, store, nil)"},
		{"typed nil bus", localcache.Follow(t.Context(), store, (*bustest.HubBus)(nil)), "nil *bustest.HubBus"},
		{"nil option", localcache.Follow(t.Context(), store, bus, nil), "a FollowOption is nil"},
		{"nil logger", localcache.Follow(t.Context(), store, bus, localcache.WithFollowLogger(nil)), "WithFollowLogger(nil)"},
		{"bad delay", localcache.Follow(t.Context(), store, bus, localcache.WithResubscribeDelay(0)), "WithResubscribeDelay(0s)"},
		{"WithBus(nil)", func() error { _, err := localcache.NewBackend(store, localcache.WithBus(nil)); return err }(), "WithBus(nil)"},
		{"WithBus(typed nil)", func() error {
			_, err := localcache.NewBackend(store, localcache.WithBus((*bustest.HubBus)(nil)))
			return err
		}(), "WithBus((*bustest.HubBus)(nil))"},
		{"nil BackendOption", func() error { _, err := localcache.NewBackend(store, nil); return err }(), "a BackendOption is nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Error(t, tc.err)
			assert.Contains(t, tc.err.Error(), tc.want)
		})
	}
}

func TestClearHandlerGivenTheBackendClearsEveryInstance(t *testing.T) {
	h := bustest.NewHub()
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

// TestRefusedPurgeReachesOthersWithTheNextPublish: a purge the bus refused
// (every retry of it, until the dispatcher gave up) still reaches the other
// instances, with the next purge the bus accepts.
func TestRefusedPurgeReachesOthersWithTheNextPublish(t *testing.T) {
	h := bustest.NewHub()
	a, b := startInstance(t, h), startInstance(t, h)
	for _, p := range []string{"/posts/1", "/posts/2", "/posts/3"} {
		b.cache(t, p, "x")
	}
	a.bus.Cut()
	for range 3 { // the dispatcher's retries, then it gives up
		_, err := a.backend.Purge(t.Context(), backends.Request{URLs: []string{"/posts/1"}})
		require.Error(t, err)
	}
	a.bus.Restore()
	_, err := a.backend.Purge(t.Context(), backends.Request{URLs: []string{"/posts/2"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return !b.has(t, "/posts/2") }, 5*time.Second, time.Millisecond)
	assert.False(t, b.has(t, "/posts/1"), "the refused purge went out with the next one")
	assert.True(t, b.has(t, "/posts/3"))

	// Once delivered, it is not sent again.
	b.cache(t, "/posts/1", "x")
	_, err = a.backend.Purge(t.Context(), backends.Request{URLs: []string{"/posts/3"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return !b.has(t, "/posts/3") }, 5*time.Second, time.Millisecond)
	assert.True(t, b.has(t, "/posts/1"))
}

// TestRefusedClearReachesOthersWithTheNextPublish: a refused clear becomes
// a clear of every instance the next time the bus accepts.
func TestRefusedClearReachesOthersWithTheNextPublish(t *testing.T) {
	h := bustest.NewHub()
	a, b := startInstance(t, h), startInstance(t, h)
	b.cache(t, "/posts/1", "x")
	b.cache(t, "/posts/2", "x")
	a.bus.Cut()
	_, err := a.backend.PurgeAll(t.Context())
	require.Error(t, err)
	a.bus.Restore()
	_, err = a.backend.Purge(t.Context(), backends.Request{URLs: []string{"/unrelated"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return b.store.Len() == 0 }, 5*time.Second, time.Millisecond,
		"the refused clear went out instead")
}
