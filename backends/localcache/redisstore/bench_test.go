package redisstore_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/backends/localcache/redisstore"
)

// page10K is a typical page: 10 KiB of HTML, tagged with its article.
var page10K = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Surrogate-Key", "article-"+strings.TrimPrefix(r.URL.Path, "/articles/")+" articles")
	_, _ = w.Write([]byte(strings.Repeat("<p>Lorem ipsum dolor sit amet, consectetur.</p>\n", 10<<10/49)))
})

// reportPercentiles reports the 50th and 99th percentiles of ds.
func reportPercentiles(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(ds[len(ds)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkHit serves a cached 10 KiB page through the middleware, from
// the memory store and from the Redis store.
func BenchmarkHit(b *testing.B) {
	addr := redisAddr(b)
	mem, err := localcache.NewMemoryStore()
	require.NoError(b, err)
	rs, _ := newStore(b, newClient(b, addr))
	for _, bc := range []struct {
		name  string
		store localcache.Store
	}{{"memory", mem}, {"redis", rs}} {
		b.Run(bc.name, func(b *testing.B) {
			h := localcache.Middleware(bc.store, localcache.WithTTL(time.Hour), localcache.WithLogger(quiet()))(page10K)
			req := httptest.NewRequest(http.MethodGet, "http://example.com/articles/1", nil)
			require.Eventually(b, func() bool {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				return w.Header().Get(localcache.XCache) == "HIT"
			}, 5*time.Second, time.Millisecond)
			ds := make([]time.Duration, 0, 1<<16)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				start := time.Now()
				h.ServeHTTP(w, req)
				ds = append(ds, time.Since(start))
				if w.Header().Get(localcache.XCache) != "HIT" {
					b.Fatal("not a hit")
				}
			}
			reportPercentiles(b, ds)
		})
	}
}

// notifyingStore is a MemoryStore that says when it applied a purge.
type notifyingStore struct {
	*localcache.MemoryStore
	purged chan []string
}

func (s *notifyingStore) Purge(ctx context.Context, indexes []string) (int, error) {
	n, err := s.MemoryStore.Purge(ctx, indexes)
	s.purged <- indexes
	return n, err
}

// BenchmarkPurgeToGone measures the time from a purge published by one
// instance to the page gone from another's memory store, over the Redis
// bus and localcache.Follow: run it with -benchtime 1000x for the
// percentiles over 1,000 purges.
func BenchmarkPurgeToGone(b *testing.B) {
	addr := redisAddr(b)
	channel := uniqueName(b)
	mem, err := localcache.NewMemoryStore()
	require.NoError(b, err)
	store := &notifyingStore{MemoryStore: mem, purged: make(chan []string, 1)}
	pub, sub := newBus(b, addr, channel), newBus(b, addr, channel)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	mem.Suspend() // as Follow does first: the wait below waits for its EventUp
	go func() { done <- localcache.Follow(ctx, store, sub, localcache.WithFollowLogger(quiet())) }()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	require.Eventually(b, func() bool { return !mem.Suspended() }, 10*time.Second, time.Millisecond)

	ds := make([]time.Duration, 0, 1000)
	i := 0
	for b.Loop() {
		i++
		ix := fmt.Sprint("t article-", i)
		key := fmt.Sprint("https://example.com/articles/", i)
		gen, _ := store.Generation(ctx)
		ok, _ := store.Set(ctx, key, &localcache.Entry{Body: []byte("page"), Indexes: []string{ix}}, gen)
		if !ok {
			b.Fatalf("not stored (purge %d, generation %d, suspended %v)", i, gen, mem.Suspended())
		}
		start := time.Now()
		if err := pub.Publish(ctx, localcache.Event{Kind: localcache.EventPurge, Indexes: []string{ix}}); err != nil {
			b.Fatal(err)
		}
		<-store.purged
		ds = append(ds, time.Since(start))
		if _, ok, _ := store.Get(ctx, key); ok {
			b.Fatal("the page survived its purge")
		}
	}
	reportPercentiles(b, ds)
}

// BenchmarkRedisMemoryPerPage stores 10 KiB pages through the middleware
// in the Redis store (a miss each, rendered and stored), and reports the
// Redis memory the keys of one page take (MEMORY USAGE of the entry, and
// its share of the index sets, the index hash and the expiry set).
func BenchmarkRedisMemoryPerPage(b *testing.B) {
	rdb := newClient(b, redisAddr(b))
	s, prefix := newStore(b, rdb, redisstore.WithRetryAfterError(0))
	h := localcache.Middleware(s, localcache.WithTTL(time.Hour), localcache.WithLogger(quiet()))(page10K)
	const maxPages = 1000
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, fmt.Sprint("http://example.com/articles/", i%maxPages), nil)
		h.ServeHTTP(httptest.NewRecorder(), req)
		i++
	}
	b.StopTimer()
	ctx := context.Background()
	pages := min(i, maxPages)
	var bytes int64
	for _, k := range keysOf(b, ctx, rdb, prefix) {
		bytes += rdb.MemoryUsage(ctx, k, 0).Val()
	}
	if got := int(rdb.HLen(ctx, "{"+prefix+"}:x").Val()); got != pages {
		b.Fatalf("%d pages stored, want %d", got, pages)
	}
	b.ReportMetric(float64(bytes)/float64(pages), "redis-bytes/page")
}
