package natsbus_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/localcache"
)

// notifyStore is a memory store that says when it has applied a purge.
type notifyStore struct {
	*localcache.MemoryStore
	purged chan struct{}
}

func (s notifyStore) Purge(ctx context.Context, indexes []string) (int, error) {
	n, err := s.MemoryStore.Purge(ctx, indexes)
	select {
	case s.purged <- struct{}{}:
	default:
	}
	return n, err
}

// BenchmarkPurgeToGone measures how long a page purged through instance
// A's backend stays in instance B's store: from the start of A's Purge
// (which returns once the server confirmed the message) until B's Follow
// has applied it. Run it with -benchtime=1000x for the p50 and p99 over
// 1,000 purges.
func BenchmarkPurgeToGone(b *testing.B) {
	addr, subj := natsAddr(b), subject(b)
	var s site
	s.version.Store(1)
	a := newBenchInstance(b, &s, addr, subj, nil)
	purged := make(chan struct{}, 1)
	bi := newBenchInstance(b, &s, addr, subj, func(m *localcache.MemoryStore) localcache.Store {
		return notifyStore{m, purged}
	})
	ctx := b.Context()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		path := fmt.Sprintf("/page/%d", i)
		b.StopTimer()
		waitCached(b, bi, path)
		b.StartTimer()
		start := time.Now()
		if _, err := a.backend.Purge(ctx, backends.Request{URLs: []string{path}}); err != nil {
			b.Fatal(err)
		}
		select {
		case <-purged:
		case <-time.After(eventually):
			b.Fatal("B never applied the purge")
		}
		lat = append(lat, time.Since(start))
		if x, _ := bi.get(path); x == "HIT" {
			b.Fatalf("B serves %s after applying its purge", path)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
}

// BenchmarkPublish measures Publish of a one-page purge, confirmed by the
// server, with one other instance following: one publisher at a time.
func BenchmarkPublish(b *testing.B) {
	bus := benchPublisher(b)
	e := localcache.Event{Kind: localcache.EventPurge, Indexes: []string{"p:/articles/123"}}
	for b.Loop() {
		if err := bus.Publish(b.Context(), e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishParallel measures Publish from many goroutines at
// once, as a dispatcher with several workers does.
func BenchmarkPublishParallel(b *testing.B) {
	bus := benchPublisher(b)
	e := localcache.Event{Kind: localcache.EventPurge, Indexes: []string{"p:/articles/123"}}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := bus.Publish(context.Background(), e); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchPublisher returns a bus whose messages an instance follows.
func benchPublisher(b *testing.B) localcache.Bus {
	addr, subj := natsAddr(b), subject(b)
	var s site
	newBenchInstance(b, &s, addr, subj, nil)
	return newBus(b, connect(b, addr), subj)
}

// newBenchInstance is newInstance for benchmarks.
func newBenchInstance(b *testing.B, s *site, addr, subj string, wrap func(*localcache.MemoryStore) localcache.Store) *instance {
	b.Helper()
	mem, err := localcache.NewMemoryStore()
	require.NoError(b, err)
	var store localcache.Store = mem
	if wrap != nil {
		store = wrap(mem)
	}
	return startInstance(b, s, connect(b, addr), subj, store)
}

// waitCached waits until in serves path from its cache.
func waitCached(b *testing.B, in *instance, path string) {
	b.Helper()
	deadline := time.Now().Add(eventually)
	for time.Now().Before(deadline) {
		if x, _ := in.get(path); x == "HIT" {
			return
		}
		time.Sleep(50 * time.Microsecond)
	}
	b.Fatalf("%s is never served from the cache", path)
}
