package natsbus_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/backends/localcache/natsbus"
	"github.com/gormpurge/gormpurge/internal/tcpproxy"
)

// eventually bounds how long the fleet tests wait for what must happen.
const eventually = 15 * time.Second

// site is the application's data: one version for every page.
type site struct{ version atomic.Int64 }

func (s *site) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /page/{id}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "page %s, version %d", r.PathValue("id"), s.version.Load())
	})
	return mux
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// instance is one process of the application: a memory store, the
// middleware in front of the site, a backend that purges the store and
// publishes on the bus, and Follow applying the others' purges.
type instance struct {
	store   localcache.Store
	handler http.Handler
	backend *localcache.Backend
	log     *syncBuffer // Follow's
}

// newInstance starts an instance on nc, with Follow running until the test
// ends. wrap, if not nil, wraps the memory store.
func newInstance(t *testing.T, s *site, nc *nats.Conn, subj string, wrap func(*localcache.MemoryStore) localcache.Store, opts ...natsbus.Option) *instance {
	t.Helper()
	mem, err := localcache.NewMemoryStore()
	require.NoError(t, err)
	var store localcache.Store = mem
	if wrap != nil {
		store = wrap(mem)
	}
	return startInstance(t, s, nc, subj, store, opts...)
}

// startInstance starts an instance with store, on nc.
func startInstance(tb testing.TB, s *site, nc *nats.Conn, subj string, store localcache.Store, opts ...natsbus.Option) *instance {
	tb.Helper()
	bus := newBus(tb, nc, subj, opts...)
	backend, err := localcache.NewBackend(store, localcache.WithBus(bus))
	require.NoError(tb, err)
	in := &instance{
		store:   store,
		handler: localcache.Middleware(store, localcache.WithUntilPurged())(s.handler()),
		backend: backend,
		log:     &syncBuffer{},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- localcache.Follow(ctx, store, bus,
			localcache.WithFollowLogger(slog.New(slog.NewTextHandler(in.log, nil))))
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
	})
	return in
}

// get requests path from the instance and returns its X-Cache and body.
func (in *instance) get(path string) (string, string) {
	w := httptest.NewRecorder()
	in.handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	return w.Header().Get(localcache.XCache), w.Body.String()
}

// cached waits until the instance serves path from its cache.
func (in *instance) cached(t *testing.T, path string) {
	t.Helper()
	require.Eventually(t, func() bool {
		x, _ := in.get(path)
		return x == "HIT"
	}, eventually, time.Millisecond, "%s is never served from the cache (is Follow up?)", path)
}

// purge purges paths through the instance's backend, as the dispatcher
// does after a commit.
func (in *instance) purge(t *testing.T, paths ...string) {
	t.Helper()
	_, err := in.backend.Purge(t.Context(), backends.Request{URLs: paths})
	require.NoError(t, err, "purge %v", paths)
}

func TestPurgeOnOneInstanceReachesTheOther(t *testing.T) {
	addr, subj := natsAddr(t), subject(t)
	var s site
	s.version.Store(1)
	a := newInstance(t, &s, connect(t, addr), subj, nil)
	b := newInstance(t, &s, connect(t, addr), subj, nil)
	a.cached(t, "/page/1")
	b.cached(t, "/page/1")

	s.version.Store(2) // the row changed and the transaction committed
	a.purge(t, "/page/1")
	x, body := a.get("/page/1")
	assert.Equal(t, "MISS", x)
	assert.Equal(t, "page 1, version 2", body)
	require.Eventually(t, func() bool {
		_, body := b.get("/page/1")
		return body == "page 1, version 2"
	}, eventually, 100*time.Microsecond, "B still serves the purged page")
	b.cached(t, "/page/1")
}

// A purge published while B is cut off never reaches B: B must not serve
// the purged page once it has noticed the cut, while it is cut off, nor
// after it is back.
func TestPurgeWhileCutOffIsNeverServedStale(t *testing.T) {
	addr, subj := natsAddr(t), subject(t)
	var s site
	s.version.Store(1)
	a := newInstance(t, &s, connect(t, addr), subj, nil)
	proxy := tcpproxy.New(t, addr)
	b := newInstance(t, &s, connect(t, proxy.Addr()), subj, nil)
	a.cached(t, "/page/1")
	b.cached(t, "/page/1")

	// Poll B across the cut and the restore, as its visitors would.
	var (
		committed       atomic.Bool
		requests, stale atomic.Int64
		stop            = make(chan struct{})
		polled          = make(chan struct{})
	)
	go func() {
		defer close(polled)
		for {
			select {
			case <-stop:
				return
			default:
			}
			after := committed.Load() // read before the request renders
			_, body := b.get("/page/1")
			requests.Add(1)
			if after && strings.HasSuffix(body, "version 1") {
				stale.Add(1)
			}
		}
	}()
	defer func() { close(stop); <-polled }()

	proxy.Cut()
	require.Eventually(t, func() bool {
		x, _ := b.get("/page/1")
		return x == "MISS"
	}, eventually, time.Millisecond, "B never noticed the cut (its cache still serves)")

	s.version.Store(2)
	committed.Store(true)
	a.purge(t, "/page/1") // B does not receive it
	before := requests.Load()
	require.Eventually(t, func() bool { return requests.Load() > before+100 }, eventually, time.Millisecond)

	proxy.Restore()
	require.Eventually(t, func() bool {
		x, body := b.get("/page/1")
		return x == "HIT" && body == "page 1, version 2"
	}, eventually, time.Millisecond, "B's cache never came back with the new page")
	after := requests.Load()
	require.Eventually(t, func() bool { return requests.Load() > after+100 }, eventually, time.Millisecond)
	close(stop)
	<-polled
	stop = make(chan struct{}) // for the deferred close
	assert.Zero(t, stale.Load(), "B served the purged page %d times of %d requests after the purge", stale.Load(), requests.Load())
	assert.Contains(t, b.log.String(), "bus down")
}

// slowStore is a memory store whose purges take a while, so that Follow
// falls behind a burst of purges.
type slowStore struct {
	*localcache.MemoryStore
	delay time.Duration
}

func (s slowStore) Purge(ctx context.Context, indexes []string) (int, error) {
	time.Sleep(s.delay)
	return s.MemoryStore.Purge(ctx, indexes)
}

// When B falls so far behind that its subscription drops purges (a slow
// consumer), B's cache is cleared: no page whose purge was dropped is
// served.
func TestDroppedPurgesClearTheCache(t *testing.T) {
	addr, subj := natsAddr(t), subject(t)
	var s site
	s.version.Store(1)
	a := newInstance(t, &s, connect(t, addr), subj, nil)
	b := newInstance(t, &s, connect(t, addr), subj,
		func(m *localcache.MemoryStore) localcache.Store { return slowStore{m, 2 * time.Millisecond} },
		natsbus.WithPendingLimits(2, 1<<20))
	const pages = 200
	paths := make([]string, pages)
	for i := range paths {
		paths[i] = fmt.Sprintf("/page/%d", i)
		b.cached(t, paths[i])
	}

	s.version.Store(2)
	for _, p := range paths { // one purge each: far faster than B applies them
		a.purge(t, p)
	}
	require.Eventually(t, func() bool {
		for _, p := range paths {
			if _, body := b.get(p); strings.HasSuffix(body, "version 1") {
				return false
			}
		}
		return true
	}, eventually, 10*time.Millisecond, "B serves pages whose purges it dropped")
	assert.Contains(t, b.log.String(), "slow consumer", "the test meant B to drop purges")
	for _, p := range paths {
		_, body := b.get(p)
		assert.True(t, strings.HasSuffix(body, "version 2"), "%s: %s", p, body)
	}
}
