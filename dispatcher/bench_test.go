package dispatcher_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// benchSetup returns a dispatcher to nb backends that do nothing but count
// into purged, and b.N one-URL requests.
func benchSetup(b *testing.B, nb int, purged *atomic.Int64) (*dispatcher.Dispatcher, []backends.Request) {
	bs := make([]backends.Backend, nb)
	for i := range bs {
		bs[i] = &noop{name: fmt.Sprintf("b%d", i), limits: backends.Limits{MaxObjects: 1000}, purged: purged}
	}
	reqs := make([]backends.Request, b.N)
	for i := range reqs {
		reqs[i] = backends.Request{URLs: []string{fmt.Sprintf("https://www.example.com/articles/%d", i)}}
	}
	return mustNew(b, bs, dispatcher.WithLogger(quiet)), reqs
}

// BenchmarkThroughput measures how many objects per second a Dispatcher
// moves to a backend that does nothing, one object per Enqueue: the cost of
// queueing, merging, cutting and settling. One op is one object, so
// allocs/op is allocations per object.
func BenchmarkThroughput(b *testing.B) {
	for _, nb := range []int{1, 3} {
		for _, producers := range []string{"serial", "parallel"} {
			b.Run(fmt.Sprintf("backends=%d/%s", nb, producers), func(b *testing.B) {
				var purged atomic.Int64
				d, reqs := benchSetup(b, nb, &purged)
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

// BenchmarkSubmit is BenchmarkThroughput with Submit in place of Enqueue:
// it adds the cost of a Ticket per request and of settling it. Each
// producer keeps its last tickets in a ring and, before reusing a slot,
// waits for the ticket in it and checks that every backend delivered, as a
// relay waits for the requests it handed over; the rest are checked after
// Flush.
func BenchmarkSubmit(b *testing.B) {
	const ring = 1 << 12
	for _, nb := range []int{1, 3} {
		for _, producers := range []string{"serial", "parallel"} {
			b.Run(fmt.Sprintf("backends=%d/%s", nb, producers), func(b *testing.B) {
				var purged atomic.Int64
				d, reqs := benchSetup(b, nb, &purged)
				ctx := context.Background()
				check := func(t *dispatcher.Ticket) error {
					<-t.Done()
					for _, o := range t.Outcomes() {
						if o.Outcome != dispatcher.Delivered {
							return fmt.Errorf("%s: %s: %v", o.Backend, o.Outcome, o.Err)
						}
					}
					return nil
				}
				// produce submits requests taken from next until b.N are
				// sent or pb says stop, and returns its last tickets.
				var next atomic.Int64
				produce := func(more func() bool) []*dispatcher.Ticket {
					kept := make([]*dispatcher.Ticket, 0, ring)
					for i := 0; more(); i++ {
						t, err := d.Submit(ctx, reqs[next.Add(1)-1])
						if err != nil {
							b.Error(err)
							break
						}
						if len(kept) < ring {
							kept = append(kept, t)
							continue
						}
						if err := check(kept[i%ring]); err != nil {
							b.Error(err)
							break
						}
						kept[i%ring] = t
					}
					return kept
				}
				var (
					mu   sync.Mutex
					left []*dispatcher.Ticket
				)
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				b.ReportAllocs()
				b.ResetTimer()
				if producers == "serial" {
					n := 0
					left = produce(func() bool { n++; return n <= b.N })
				} else {
					b.RunParallel(func(pb *testing.PB) {
						kept := produce(pb.Next)
						mu.Lock()
						left = append(left, kept...)
						mu.Unlock()
					})
				}
				if err := d.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				for _, t := range left {
					if err := check(t); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "objects/s")
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
