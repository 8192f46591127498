package otelpurge_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/contrib/otelpurge"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/internal/testdb"
	"github.com/gormpurge/gormpurge/observe"
)

// The benchmarks compare instrumentation off (no Observer) and on (an
// Observer on SDK providers that sample every span and batch them to an
// exporter that drops them: the work of a real exporter but its I/O). The
// application traces its requests in both. Run:
//
//	go test -run '^$' -bench . -count 10 ./contrib/otelpurge/ | tee bench.txt
//	benchstat -col /observer bench.txt

// counting is a backend that does nothing but count what it purges.
type counting struct{ n atomic.Int64 }

func (c *counting) Name() string            { return "cdn" }
func (c *counting) Limits() backends.Limits { return backends.Limits{MaxObjects: 1000} }
func (c *counting) Purge(_ context.Context, r backends.Request) (backends.Result, error) {
	c.n.Add(int64(r.Len()))
	return backends.Result{}, nil
}

// discard is a span exporter that drops what it is given.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// observer returns the Observer of the "on" runs, nil for "off", and the
// application's own tracer, which traces requests in both.
func observer(b *testing.B, on bool) (observe.Observer, trace.Tracer) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	if !on {
		return nil, tp.Tracer("app")
	}
	o, err := otelpurge.New(otelpurge.WithTracerProvider(tp), otelpurge.WithMeterProvider(mp))
	if err != nil {
		b.Fatal(err)
	}
	return o, tp.Tracer("app")
}

func dispatcherOptions(o observe.Observer) []dispatcher.Option {
	if o == nil {
		return nil
	}
	return []dispatcher.Option{dispatcher.WithObserver(o)}
}

// BenchmarkDispatcherThroughput moves b.N one-URL handoffs, each with its
// origin as the plugin gives it, through a dispatcher to a backend that
// does nothing: one op is one handoff, Close's drain included.
func BenchmarkDispatcherThroughput(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("observer=%v", on), func(b *testing.B) {
			o, _ := observer(b, on)
			be := &counting{}
			d, err := dispatcher.New([]backends.Backend{be}, dispatcherOptions(o)...)
			if err != nil {
				b.Fatal(err)
			}
			// Each handoff comes from a transaction of its own, in a trace
			// of its own: each batch links to as many as MaxLinks.
			reqs := make([]backends.Request, b.N)
			ctxs := make([]context.Context, b.N)
			for i := range reqs {
				reqs[i] = backends.Request{URLs: []string{fmt.Sprintf("https://www.example.com/articles/%d", i)}}
				ctxs[i] = observe.ContextWithOrigin(context.Background(), observe.Origin{
					Committed:   time.Now(),
					TraceParent: fmt.Sprintf("00-%032x-%016x-01", i+1, i+1),
				})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := d.Enqueue(ctxs[i], reqs[i]); err != nil {
					b.Fatal(err)
				}
			}
			if err := d.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if be.n.Load() != int64(b.N) {
				b.Fatalf("purged %d, want %d", be.n.Load(), b.N)
			}
		})
	}
}

// BenchmarkCreateInTransaction is the plugin's write path: a traced
// request creates one row of a registered model in a transaction, and the
// plugin hands it off to a dispatcher; on a SQLite file (WAL, no fsync),
// and on PostgreSQL when GORMPURGE_TEST_POSTGRES_DSN is set.
func BenchmarkCreateInTransaction(b *testing.B) {
	for _, kind := range []string{"sqlite", "postgres"} {
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("db=%s/observer=%v", kind, on), func(b *testing.B) {
				benchmarkCreate(b, kind, on)
			})
		}
	}
}

func benchmarkCreate(b *testing.B, kind string, on bool) {
	o, tracer := observer(b, on)
	d, err := dispatcher.New([]backends.Backend{&counting{}}, dispatcherOptions(o)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = d.Close(context.Background()) })
	opts := []gormpurge.Option{gormpurge.WithBaseURL("https://www.example.com")}
	if o != nil {
		opts = append(opts, gormpurge.WithObserver(o))
	}
	p := gormpurge.New(d, opts...)
	if err := p.Register(&article{}); err != nil {
		b.Fatal(err)
	}
	var db *gorm.DB
	if kind == "sqlite" {
		dsn := "file:" + filepath.Join(b.TempDir(), "bench.db") + "?_journal_mode=WAL&_synchronous=OFF"
		db = testdb.OpenDSN(b, kind, dsn, &gorm.Config{Logger: logger.Discard})
	} else {
		db = testdb.Open(b, kind, &gorm.Config{Logger: logger.Discard}) // skips without a DSN
	}
	if err := db.Use(p); err != nil {
		b.Fatal(err)
	}
	if err := db.AutoMigrate(&article{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ctx, span := tracer.Start(context.Background(), "POST /articles")
		err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			return tx.Create(&article{Slug: fmt.Sprintf("a-%d", i)}).Error
		})
		span.End()
		if err != nil {
			b.Fatal(err)
		}
	}
}
