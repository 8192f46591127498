package dispatcher_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// BenchmarkThroughput measures how many objects per second a Dispatcher
// moves to a backend that does nothing, one object per Enqueue: the cost of
// queueing, merging, cutting and settling. One op is one object, so
// allocs/op is allocations per object.
func BenchmarkThroughput(b *testing.B) {
	for _, nb := range []int{1, 3} {
		for _, producers := range []string{"serial", "parallel"} {
			b.Run(fmt.Sprintf("backends=%d/%s", nb, producers), func(b *testing.B) {
				var purged atomic.Int64
				bs := make([]backends.Backend, nb)
				for i := range bs {
					bs[i] = &noop{name: fmt.Sprintf("b%d", i), limits: backends.Limits{MaxObjects: 1000}, purged: &purged}
				}
				d := dispatcher.New(bs, dispatcher.WithLogger(quiet))
				reqs := make([]backends.Request, b.N)
				for i := range reqs {
					reqs[i] = backends.Request{URLs: []string{fmt.Sprintf("https://www.example.com/articles/%d", i)}}
				}
				ctx := context.Background()
				var next atomic.Int64
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				b.ReportAllocs()
				b.ResetTimer()
				if producers == "serial" {
					for i := range b.N {
						if err := d.Enqueue(ctx, reqs[i]); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := d.Enqueue(ctx, reqs[next.Add(1)-1]); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				if err := d.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "objects/s")
				// allocs/op rounds down to a whole number; this does not.
				b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N), "allocs/object")
				if got := purged.Load(); got != int64(b.N*nb) {
					b.Fatalf("purged %d objects, want %d", got, b.N*nb)
				}
				if err := d.Close(ctx); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

type noop struct {
	name   string
	limits backends.Limits
	purged *atomic.Int64
}

func (n *noop) Name() string            { return n.name }
func (n *noop) Limits() backends.Limits { return n.limits }
func (n *noop) Purge(_ context.Context, r backends.Request) (backends.Result, error) {
	n.purged.Add(int64(r.Len()))
	return backends.Result{}, nil
}
