package prompurge

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

	mu      sync.Mutex
	sources []watched // in the order they were watched
	nextID  uint64
	closed  bool
}

// watched is a Source and the number its stop function removes it by.
type watched struct {
	id  uint64
	src observe.Source
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
	for k, v := range c.read() {
		desc := c.descs[k.metric]
		info := k.metric.Info()
		values := make([]string, len(info.Attrs))
		for i, attr := range info.Attrs {
			values[i] = k.attr(attr)
		}
		m, err := prometheus.NewConstMetric(desc, valueType(k.metric), v, values...)
		if err != nil {
			m = prometheus.NewInvalidMetric(desc, err)
		}
		ch <- m
	}
	c.latency.Collect(ch)
	c.duration.Collect(ch)
}

// series is a metric and its label values.
type series struct {
	metric           observe.Metric
	backend, outcome string
}

// attr returns the value of the label named attr.
func (s series) attr(attr string) string {
	switch attr {
	case labelBackend:
		return s.backend
	case labelOutcome:
		return s.outcome
	}
	return ""
}

// read calls every watched Source and returns their figures: counters'
// readings of one series added up, the last of gauges'.
func (c *Collector) read() map[series]float64 {
	c.mu.Lock()
	sources := slices.Clone(c.sources)
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.collectTimeout)
	defer cancel()

	var (
		mu   sync.Mutex // a Source might add from goroutines of its own
		done bool       // and after it returned: ignore those
		out  = make(map[series]float64)
	)
	add := func(r observe.Reading) {
		info := r.Metric.Info()
		if info.Name == "" {
			return
		}
		s := series{metric: r.Metric}
		if slices.Contains(info.Attrs, labelBackend) {
			s.backend = labelValue(r.Backend)
		}
		if slices.Contains(info.Attrs, labelOutcome) {
			s.outcome = labelValue(r.Outcome)
		}
		mu.Lock()
		defer mu.Unlock()
		if done {
			return
		}
		if info.Kind == observe.Counter {
			out[s] += r.Value
		} else {
			out[s] = r.Value
		}
	}
	for _, w := range sources {
		w.src(ctx, add)
	}
	mu.Lock()
	done = true
	mu.Unlock()
	return out
}

// Watch adds s to the Sources read at each scrape, until the returned
// function is called. It implements [observe.Observer].
func (c *Collector) Watch(s observe.Source) (stop func()) {
	if s == nil {
		return func() {}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	id := c.nextID
	c.sources = append(c.sources, watched{id: id, src: s})
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.sources = slices.DeleteFunc(c.sources, func(w watched) bool { return w.id == id })
	}
}

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
				class = observe.ClassTransient
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
