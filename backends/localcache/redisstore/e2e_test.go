package redisstore_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/backends/localcache/redisstore"
	"github.com/gormpurge/gormpurge/internal/tcpproxy"
)

// keyedStore is a MemoryStore that remembers the keys it stored, so that a
// test can look a page up in it directly. It is a Suspender, as its
// MemoryStore is.
type keyedStore struct {
	*localcache.MemoryStore
	mu   sync.Mutex
	keys []string
}

func (s *keyedStore) Set(ctx context.Context, key string, e *localcache.Entry, gen uint64) (bool, error) {
	ok, err := s.MemoryStore.Set(ctx, key, e, gen)
	if ok {
		s.mu.Lock()
		s.keys = append(s.keys, key)
		s.mu.Unlock()
	}
	return ok, err
}

// lastKey returns the key last stored.
func (s *keyedStore) lastKey(t *testing.T) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	require.NotEmpty(t, s.keys, "nothing was stored")
	return s.keys[len(s.keys)-1]
}

// instance is one instance of an application: pages in memory, kept
// coherent with the others' over a Redis bus.
type instance struct {
	store   *keyedStore
	backend *localcache.Backend
	srv     *httptest.Server
}

// newInstance starts an instance whose bus reaches Redis at addr, serving
// an article whose text names version, and following the bus until t
// ends.
func newInstance(t *testing.T, addr, channel string, version *atomic.Int64, opts ...redisstore.BusOption) *instance {
	t.Helper()
	mem, err := localcache.NewMemoryStore()
	require.NoError(t, err)
	store := &keyedStore{MemoryStore: mem}
	bus := newBus(t, addr, channel, opts...)
	backend, err := localcache.NewBackend(store, localcache.WithBus(bus))
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	mem.Suspend() // as Follow does first: the wait below waits for its EventUp
	go func() { done <- localcache.Follow(ctx, store, bus, localcache.WithFollowLogger(quiet())) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Surrogate-Key", "article-7")
		fmt.Fprintf(w, "article 7, version %d", version.Load())
	})
	srv := httptest.NewServer(localcache.Middleware(store, localcache.WithUntilPurged(), localcache.WithLogger(quiet()))(page))
	t.Cleanup(srv.Close)
	require.Eventually(t, func() bool { return !store.Suspended() }, 10*time.Second, 5*time.Millisecond,
		"the instance's bus subscription comes up")
	return &instance{store: store, backend: backend, srv: srv}
}

// get requests the article and returns X-Cache and the body.
func (in *instance) get(t *testing.T) (string, string) {
	t.Helper()
	res, err := http.Get(in.srv.URL + "/articles/7")
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	return res.Header.Get(localcache.XCache), string(body)
}

// cache fills the instance's cache with the article.
func (in *instance) cache(t *testing.T) {
	t.Helper()
	in.get(t)
	require.Eventually(t, func() bool { x, _ := in.get(t); return x == "HIT" }, 5*time.Second, 5*time.Millisecond)
}

func purgeArticle(t *testing.T, in *instance) {
	t.Helper()
	_, err := in.backend.Purge(t.Context(), backends.NewRequest(nil, []string{"article-7"}))
	require.NoError(t, err, "the purge is applied here and published")
}

// TestPurgeReachesEveryInstance: two instances cache a page; a purge
// through A removes it from B's memory too.
func TestPurgeReachesEveryInstance(t *testing.T) {
	addr := redisAddr(t)
	channel := uniqueName(t)
	var version atomic.Int64
	version.Store(1)
	a := newInstance(t, addr, channel, &version)
	b := newInstance(t, addr, channel, &version)
	a.cache(t)
	b.cache(t)
	key := b.store.lastKey(t)

	version.Store(2)
	purgeArticle(t, a)
	require.Eventually(t, func() bool {
		_, ok, err := b.store.Get(t.Context(), key)
		return err == nil && !ok
	}, 5*time.Second, time.Millisecond, "B's store loses the page purged through A")
	x, body := b.get(t)
	assert.Equal(t, "MISS", x)
	assert.Equal(t, "article 7, version 2", body)
	x, body = a.get(t)
	assert.Equal(t, "MISS", x)
	assert.Equal(t, "article 7, version 2", body)
}

// TestNoStalePageAfterADisconnection cuts B off Redis, purges through A
// while B cannot hear it, and restores B's connection: B must never serve
// the purged page once it has noticed the cut.
//
// What can be guaranteed, and what this checks: from the moment B's bus
// subscription notices the connection is gone, Follow suspends B's store
// (it answers nothing), until the subscription is back, when the store
// resumes empty; so a purge published meanwhile, which B never receives,
// cannot leave B serving the purged page. What cannot be: a purge
// published between the connection breaking and B noticing is lost, and B
// serves the page until it notices. Here the proxy resets the connection,
// which B notices at once; on a network that silently drops packets, the
// bus's health check (WithHealthCheck) notices within about two
// intervals. So the test purges only once B has noticed, and asserts
// that no read of B's store that started after that returned the page.
func TestNoStalePageAfterADisconnection(t *testing.T) {
	addr := redisAddr(t)
	channel := uniqueName(t)
	proxy := tcpproxy.New(t, addr)
	var version atomic.Int64
	version.Store(1)
	a := newInstance(t, addr, channel, &version)
	b := newInstance(t, proxy.Addr(), channel, &version, redisstore.WithHealthCheck(100*time.Millisecond))
	a.cache(t)
	b.cache(t)
	key := b.store.lastKey(t)

	// Read B's store continuously, from before the cut until after the
	// restore, noting when each read started and whether it found the
	// first version.
	type read struct {
		start time.Time
		stale bool
	}
	var (
		stop  atomic.Bool
		reads []read
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			start := time.Now()
			e, ok, err := b.store.Get(context.Background(), key)
			reads = append(reads, read{start: start, stale: err == nil && ok && string(e.Body) == "article 7, version 1"})
			time.Sleep(50 * time.Microsecond)
		}
	}()
	time.Sleep(20 * time.Millisecond)

	proxy.Cut()
	require.Eventually(t, b.store.Suspended, 5*time.Second, time.Millisecond, "B notices the cut")
	noticed := time.Now()

	version.Store(2)
	purgeArticle(t, a) // B cannot hear it
	time.Sleep(50 * time.Millisecond)
	x, body := b.get(t)
	assert.Equal(t, "MISS", x, "while cut off, B renders every page")
	assert.Equal(t, "article 7, version 2", body)

	proxy.Restore()
	require.Eventually(t, func() bool { return !b.store.Suspended() }, 10*time.Second, time.Millisecond,
		"B's subscription comes back")
	x, body = b.get(t)
	assert.Equal(t, "MISS", x, "B resumes with an empty cache")
	assert.Equal(t, "article 7, version 2", body)
	b.cache(t)
	time.Sleep(20 * time.Millisecond)
	stop.Store(true)
	wg.Wait()

	var before, after, staleAfter int
	for _, r := range reads {
		switch {
		case r.start.Before(noticed):
			if r.stale {
				before++
			}
		default:
			after++
			if r.stale {
				staleAfter++
			}
		}
	}
	require.NotZero(t, before, "B's store held the first version before the cut")
	require.NotZero(t, after, "B's store was read after the cut")
	assert.Zero(t, staleAfter, "B served the purged page %d times (of %d reads) after it noticed the cut", staleAfter, after)
	_, body = b.get(t)
	assert.Equal(t, "article 7, version 2", body)
}
