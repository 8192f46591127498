package outbox_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/internal/testdb"
	"github.com/gormpurge/gormpurge/outbox"
)

// nopBackend accepts everything at once.
type nopBackend struct{}

func (nopBackend) Name() string            { return "nop" }
func (nopBackend) Limits() backends.Limits { return backends.Limits{} }
func (nopBackend) Purge(_ context.Context, r backends.Request) (backends.Result, error) {
	return backends.Result{Objects: r.Len()}, nil
}

// BenchmarkWrite measures the user's write (a Create in GORM's implicit
// transaction) with the in-memory dispatcher as the sink and with the
// outbox, whose row is one more INSERT in the same transaction.
func BenchmarkWrite(b *testing.B) {
	for _, kind := range testdb.Kinds {
		for _, sinkName := range []string{"memory", "outbox"} {
			b.Run(kind+"/"+sinkName, func(b *testing.B) {
				db := testdb.Open(b, kind, nil)
				require.NoError(b, db.AutoMigrate(&Page{}))
				d := mustDispatcher(b, []backends.Backend{nopBackend{}}, dispatcher.WithLogger(quiet))
				defer d.Close(context.Background())
				var sink gormpurge.Sink = d
				if sinkName == "outbox" {
					ob, err := outbox.New(db, outbox.WithLogger(quiet))
					require.NoError(b, err)
					sink = ob // no relay: the benchmark measures the writer
				}
				p := gormpurge.New(sink, gormpurge.WithLogger(quiet))
				require.NoError(b, p.Register(&Page{}))
				require.NoError(b, db.Use(p))
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					if err := db.Create(&Page{Slug: fmt.Sprintf("p%d", i)}).Error; err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkRelay measures how many rows a relay delivers per second to a
// backend that accepts everything at once, with a dispatcher on its
// defaults (50ms linger).
func BenchmarkRelay(b *testing.B) {
	for _, kind := range testdb.Kinds {
		for _, batch := range []int{100, 1000} {
			b.Run(fmt.Sprintf("%s/batch=%d", kind, batch), func(b *testing.B) {
				db := testdb.Open(b, kind, nil)
				ob, err := outbox.New(db, outbox.WithLogger(quiet), outbox.WithBatchSize(batch), outbox.WithDeleteDelivered())
				require.NoError(b, err)
				sqlDB, err := db.DB()
				require.NoError(b, err)
				ctx := context.Background()
				n := b.N
				for i := 0; i < n; i += 1000 {
					tx, err := sqlDB.BeginTx(ctx, nil)
					require.NoError(b, err)
					for j := i; j < min(n, i+1000); j++ {
						require.NoError(b, ob.EnqueueTx(ctx, tx, backends.NewRequest([]string{fmt.Sprintf("/pages/%d", j)}, nil)))
					}
					require.NoError(b, tx.Commit())
				}
				d := mustDispatcher(b, []backends.Backend{nopBackend{}}, dispatcher.WithLogger(quiet))
				b.ResetTimer()
				start := time.Now()
				r := mustRelay(b, ob, d)
				for r.Stats().Delivered < uint64(n) {
					time.Sleep(time.Millisecond)
				}
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(n)/elapsed.Seconds(), "rows/s")
				require.NoError(b, r.Close(ctx))
				require.NoError(b, d.Close(ctx))
			})
		}
	}
}

// BenchmarkEnqueueTx measures the write inside the user's transaction for
// a small request and for a bulk one (50,000 URLs: about 2 MB of JSON,
// written as two rows), committed each time.
func BenchmarkEnqueueTx(b *testing.B) {
	for _, kind := range testdb.Kinds {
		for _, n := range []int{1, 50_000} {
			b.Run(fmt.Sprintf("%s/urls=%d", kind, n), func(b *testing.B) {
				db := testdb.Open(b, kind, nil)
				ob, err := outbox.New(db, outbox.WithLogger(quiet))
				require.NoError(b, err)
				sqlDB, err := db.DB()
				require.NoError(b, err)
				urls := make([]string, n)
				for i := range urls {
					urls[i] = fmt.Sprintf("/catalogue/products/item-%07d/details", i)
				}
				req := backends.NewRequest(urls, []string{"catalogue"})
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					tx, err := sqlDB.BeginTx(ctx, nil)
					require.NoError(b, err)
					require.NoError(b, ob.EnqueueTx(ctx, tx, req))
					require.NoError(b, tx.Commit())
				}
			})
		}
	}
}
