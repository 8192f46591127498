package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/gormpurge/gormpurge/contrib/otelpurge"
	"github.com/gormpurge/gormpurge/contrib/prompurge"
	"github.com/gormpurge/gormpurge/observe"
)

// What the blog tells operators (see README.md, "Metrics and traces"):
//
//   - /metrics, always: Prometheus's exposition of a registry of the
//     blog's own, with prompurge's gormpurge_* metrics and the Go and
//     process collectors. It is served on the blog's address, or only on
//     -metrics-addr when set, never through the page cache, and with
//     Cache-Control: no-store so that no CDN keeps it.
//   - Spans, with -trace-stdout: one JSON object a line on standard
//     output, among the log lines. Each request to the blog is a span; the
//     handoff of an edit's purges (gormpurge.handoff) is its child, and
//     each call to a cache (gormpurge.purge) links to the handoffs it
//     purges.
//
// Every component gets the same Observer: the plugin, the dispatcher, the
// page cache middleware and the warmer. The blog has no outbox: its
// purges go from the plugin straight to the dispatcher.

// metricsPath is where Prometheus scrapes.
const metricsPath = "/metrics"

// traceBatchTimeout is how long ended spans wait before they are written:
// short, so that an edit's spans show up about when its log lines do.
const traceBatchTimeout = time.Second

// telemetry is the blog's Observer and what it reports to.
type telemetry struct {
	registry *prometheus.Registry
	prom     *prompurge.Collector
	otel     *otelpurge.Observer      // nil without -trace-stdout
	traces   *sdktrace.TracerProvider // nil without -trace-stdout
	tracer   trace.Tracer             // the blog's request spans; a no-op one without -trace-stdout
	observer observe.Observer         // prom, joined with otel when tracing
}

// openTelemetry builds the Prometheus registry and collector and, with
// -trace-stdout, the TracerProvider that writes spans to out and the
// OpenTelemetry Observer; a.tel.observer feeds them all.
func (a *app) openTelemetry(out io.Writer) error {
	t := &telemetry{registry: prometheus.NewRegistry(), tracer: tracenoop.NewTracerProvider().Tracer("")}
	a.tel = t
	err := errors.Join(
		t.registry.Register(collectors.NewGoCollector()),
		t.registry.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
	)
	if err != nil {
		return fmt.Errorf("register the Go and process collectors: %w", err)
	}
	if t.prom, err = prompurge.New(t.registry); err != nil {
		return err
	}
	t.observer = t.prom
	if !a.cfg.traceStdout {
		return nil
	}
	exp, err := stdouttrace.New(stdouttrace.WithWriter(out))
	if err != nil {
		return fmt.Errorf("-trace-stdout: %w", err)
	}
	t.traces = sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(traceBatchTimeout)),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "gormpurge-blog"))),
	)
	t.tracer = t.traces.Tracer("github.com/gormpurge/gormpurge/examples/blog")
	// Metrics go to Prometheus: OpenTelemetry gets the spans only.
	t.otel, err = otelpurge.New(otelpurge.WithTracerProvider(t.traces), otelpurge.WithMeterProvider(metricnoop.NewMeterProvider()))
	if err != nil {
		return fmt.Errorf("-trace-stdout: %w", err)
	}
	t.observer = observe.Join(t.prom, t.otel)
	return nil
}

// close unregisters the collector and shuts the TracerProvider down, which
// writes the spans it still holds. Call it after the components: after the
// dispatcher's Close, which ends the last calls to the caches, and their
// spans.
func (t *telemetry) close(ctx context.Context) error {
	if t == nil {
		return nil
	}
	var errs []error
	if t.otel != nil {
		errs = append(errs, t.otel.Close(ctx))
	}
	if t.traces != nil {
		errs = append(errs, t.traces.Shutdown(ctx))
	}
	if t.prom != nil {
		errs = append(errs, t.prom.Close(ctx))
	}
	return errors.Join(errs...)
}

// metricsHandler serves the registry to Prometheus. No cache may keep the
// answer: it is mounted outside the page cache, and says no-store to any
// cache in front (Varnish's built-in VCL and Akamai honour it).
func (t *telemetry) metricsHandler() http.Handler {
	h := promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{Registry: t.registry})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// traced starts a span for each request to next, named after its route
// ("POST /posts/{slug}/edit"), a child of the caller's when the request
// carries a W3C traceparent. The handlers pass the request's context to
// the database: the handoff of an edit's purges is a child of this span.
func (t *telemetry) traced(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := t.tracer.Start(ctx, route, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				attribute.String("http.request.method", r.Method),
				attribute.String("http.route", route),
				attribute.String("url.path", r.URL.Path),
			))
		defer span.End()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// startMetrics returns where to scrape /metrics. With -metrics-addr it
// serves /metrics there, until the returned server is shut down (run does,
// before it closes the app), and logs a failure to serve; without, the
// blog's own handler serves it, and startMetrics returns no server.
func (a *app) startMetrics() (*http.Server, string, error) {
	if a.cfg.metricsAddr == "" {
		return nil, a.cfg.siteURL + metricsPath, nil
	}
	ln, err := net.Listen("tcp", a.cfg.metricsAddr)
	if err != nil {
		return nil, "", fmt.Errorf("-metrics-addr %s: %w", a.cfg.metricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+metricsPath, a.tel.metricsHandler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("serving metrics failed", "addr", a.cfg.metricsAddr, "error", err)
		}
	}()
	return srv, "http://" + browseAddr(ln.Addr()) + metricsPath, nil
}
