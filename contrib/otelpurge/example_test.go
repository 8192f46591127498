package otelpurge_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/contrib/otelpurge"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// Page is a model with a page of its own.
type Page struct {
	ID   uint
	Path string
}

// AbsoluteURL returns the page purged when a Page changes.
func (p *Page) AbsoluteURL() string { return p.Path }

// One Observer goes to every component. Here the SDK's providers keep what
// they get in memory; in an application they export it (OTLP, Prometheus).
func Example() {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	meters := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer meters.Shutdown(ctx)
	spans := tracetest.NewSpanRecorder()
	tracers := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tracers.Shutdown(ctx)

	obs, err := otelpurge.New(otelpurge.WithMeterProvider(meters), otelpurge.WithTracerProvider(tracers))
	if err != nil {
		log.Fatal(err)
	}
	defer obs.Close(ctx) // after the components, deferred below

	cdn := backends.Func("cdn", func(context.Context, backends.Request) (backends.Result, error) {
		return backends.Result{}, nil
	})
	d, err := dispatcher.New([]backends.Backend{cdn}, dispatcher.WithObserver(obs))
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close(ctx)
	p := gormpurge.New(d, gormpurge.WithObserver(obs))
	if err := p.Register(&Page{}); err != nil {
		log.Fatal(err)
	}

	db, done := openExampleDB()
	defer done()
	if err := db.Use(p); err != nil {
		log.Fatal(err)
	}
	if err := db.AutoMigrate(&Page{}); err != nil {
		log.Fatal(err)
	}

	// A request writes a page: the handoff's span is a child of the
	// request's, and the call to the CDN links to it.
	reqCtx, req := tracers.Tracer("app").Start(ctx, "POST /pages")
	db.WithContext(reqCtx).Create(&Page{Path: "/about"})
	req.End()
	if err := d.Flush(ctx); err != nil {
		log.Fatal(err)
	}

	var names []string
	for _, s := range spans.Ended() {
		names = append(names, s.Name())
	}
	slices.Sort(names)
	fmt.Println("spans:", names)

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		log.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch data := m.Data.(type) {
			case metricdata.Sum[float64]: // counters: purge.objects, handoffs, ...
				for _, dp := range data.DataPoints {
					if outcome, _ := dp.Attributes.Value(otelpurge.OutcomeKey); outcome.AsString() == "delivered" {
						fmt.Println(m.Name, m.Unit, "delivered:", dp.Value)
					}
				}
			case metricdata.Histogram[float64]:
				fmt.Println(m.Name, m.Unit, "count:", data.DataPoints[0].Count)
			}
		}
	}
	// Unordered output:
	// spans: [POST /pages gormpurge.handoff gormpurge.purge]
	// gormpurge.purge.objects {object} delivered: 1
	// gormpurge.purge.latency s count: 1
	// gormpurge.purge.duration s count: 1
}

func openExampleDB() (*gorm.DB, func()) {
	dir, err := os.MkdirTemp("", "otelpurge-example")
	if err != nil {
		log.Fatal(err)
	}
	db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "example.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		log.Fatal(err)
	}
	return db, func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
		os.RemoveAll(dir)
	}
}
