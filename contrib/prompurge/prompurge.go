package prompurge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gormpurge/gormpurge/internal/nilcheck"
	"github.com/gormpurge/gormpurge/observe"
)

// Collector is a Prometheus collector of what gormpurge's components do,
// and the [observe.Observer] they report it to. Build it with [New]; its
// methods are safe for concurrent use.
type Collector struct {
	cfg      config
	reg      prometheus.Registerer
	descs    descs
	latency  *prometheus.HistogramVec
	duration *prometheus.HistogramVec

	sources observe.Sources

	mu     sync.Mutex
	closed bool
}

var (
	_ prometheus.Collector = (*Collector)(nil)
	_ observe.Observer     = (*Collector)(nil)
)

// New builds a Collector and registers it on reg, such as a registry of
// the application's made with prometheus.NewRegistry, or
// prometheus.DefaultRegisterer to serve it with promhttp.Handler. Pass the
// Collector to the WithObserver option of each component, and call
// [Collector.Close] to unregister it.
//
// New returns an error if reg is nil, if an option is invalid, or if reg
// refuses the Collector: it already holds one, or a metric with one of
// its names (the error then matches prometheus.AlreadyRegisteredError or
// names the metric).
func New(reg prometheus.Registerer, opts ...Option) (*Collector, error) {
	cfg := defaultConfig()
	var errs []error
	if nilcheck.IsNil(reg) {
		errs = append(errs, errors.New("the Registerer is nil: pass a registry, prometheus.NewRegistry() or prometheus.DefaultRegisterer"))
	}
	for _, opt := range opts {
		if opt == nil {
			errs = append(errs, errors.New("an Option is nil: remove it, or pass one made by a With... function"))
			continue
		}
		opt(&cfg)
	}
	if err := errors.Join(append(errs, cfg.validate()...)...); err != nil {
		return nil, fmt.Errorf("prompurge: invalid configuration:\n%w", err)
	}

	c := &Collector{
		cfg:   cfg,
		reg:   reg,
		descs: newDescs(),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    promName(observe.Latency, "s", false),
			Help:    latencyHelp,
			Buckets: cfg.latencyBuckets,
		}, []string{labelBackend, labelOutcome}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    promName(observe.AttemptDuration, "s", false),
			Help:    durationHelp,
			Buckets: cfg.durationBuckets,
		}, []string{labelBackend, labelOutcome, labelErrorClass}),
	}
	if err := reg.Register(c); err != nil {
		return nil, fmt.Errorf("prompurge: register the collector: %w", err)
	}
	return c, nil
}

// Close unregisters the Collector from the Registerer given to [New]. The
// components may go on reporting to it; nothing reads it any more. Calls
// after the first do nothing. ctx is unused.
func (c *Collector) Close(context.Context) error {
	c.mu.Lock()
	closed := c.closed
	c.closed = true
	c.mu.Unlock()
	if !closed {
		c.reg.Unregister(c)
	}
	return nil
}

// Describe sends the descriptor of every metric the Collector may send.
// It implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range observe.Metrics() {
		ch <- c.descs[m]
	}
	c.latency.Describe(ch)
	c.duration.Describe(ch)
}

// Collect reads every watched Source, within the collect timeout, and
// sends their figures and the histograms. It implements
// prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.collectTimeout)
	defer cancel()
	for _, f := range c.sources.Read(ctx) {
		desc := c.descs[f.Metric]
		info := f.Metric.Info()
		values := make([]string, len(info.Attrs))
		for i, attr := range info.Attrs {
			switch attr {
			case labelBackend:
				values[i] = labelValue(f.Backend)
			case labelOutcome:
				values[i] = labelValue(f.Outcome)
			}
		}
		m, err := prometheus.NewConstMetric(desc, valueType(f.Metric), f.Value, values...)
		if err != nil {
			m = prometheus.NewInvalidMetric(desc, err)
		}
		ch <- m
	}
	c.latency.Collect(ch)
	c.duration.Collect(ch)
}

// Watch adds s to the Sources read at each scrape, until the returned
// function is called. It implements [observe.Observer].
func (c *Collector) Watch(s observe.Source) (stop func()) { return c.sources.Watch(s) }

// StartHandoff returns ctx, no traceparent and a function that does
// nothing: Prometheus has no spans. It implements [observe.Observer].
func (c *Collector) StartHandoff(ctx context.Context, _ observe.Handoff) (context.Context, string, func(observe.HandoffEnd)) {
	return ctx, "", func(observe.HandoffEnd) {}
}

// StartAttempt returns ctx and a function that observes the call's
// duration in gormpurge_purge_duration_seconds. It implements
// [observe.Observer].
func (c *Collector) StartAttempt(ctx context.Context, a observe.Attempt) (context.Context, func(observe.AttemptEnd)) {
	start := time.Now()
	backend := labelValue(a.Backend)
	return ctx, func(e observe.AttemptEnd) {
		d := e.Duration
		if d <= 0 {
			d = time.Since(start)
		}
		outcome, class := outcomeOK, ""
		if e.Err != nil {
			outcome, class = outcomeError, labelValue(e.Class)
			if class == "" {
				class = observe.ClassOther
			}
		}
		if h, err := c.duration.GetMetricWithLabelValues(backend, outcome, class); err == nil {
			h.Observe(d.Seconds())
		}
	}
}

// Settled observes the handoff's commit-to-purge latency in
// gormpurge_purge_latency_seconds; a handoff whose commit time is unknown
// is skipped. A latency below zero, from clocks apart between the process
// that committed and the relay's, counts as zero. It implements
// [observe.Observer].
func (c *Collector) Settled(s observe.Settled) {
	if s.Origin.Committed.IsZero() {
		return
	}
	at := s.At
	if at.IsZero() {
		at = time.Now()
	}
	latency := max(at.Sub(s.Origin.Committed), 0)
	if h, err := c.latency.GetMetricWithLabelValues(labelValue(s.Backend), labelValue(s.Outcome)); err == nil {
		h.Observe(latency.Seconds())
	}
}
