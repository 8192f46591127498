package otelpurge

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/gormpurge/gormpurge/observe"
)

// ScopeName is the instrumentation scope of the Observer's meter and
// tracer.
const ScopeName = "github.com/gormpurge/gormpurge/contrib/otelpurge"

// Prefix starts the name of every metric the Observer reports.
const Prefix = "gormpurge."

// Attribute keys of the metrics and spans.
const (
	// BackendKey is the name of the backend a figure or call is about.
	BackendKey = attribute.Key("gormpurge.backend")
	// OutcomeKey is how a handoff, an object or a call ended.
	OutcomeKey = attribute.Key("gormpurge.outcome")
	// ErrorTypeKey is the semantic-convention attribute of a failed call's
	// error class (an observe Class constant).
	ErrorTypeKey = attribute.Key("error.type")
)

// An Option configures an [Observer]; pass it to [New].
type Option func(*config)

type config struct {
	meters  metric.MeterProvider
	tracers trace.TracerProvider
	errs    []error
}

// WithMeterProvider sets the MeterProvider the Observer reports metrics to.
// Defaults to otel.GetMeterProvider() when New is called.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) {
		if mp == nil {
			c.errs = append(c.errs, errors.New("WithMeterProvider(nil): pass a MeterProvider, or leave the option out to use otel.GetMeterProvider()"))
			return
		}
		c.meters = mp
	}
}

// WithTracerProvider sets the TracerProvider the Observer starts spans
// with. Defaults to otel.GetTracerProvider() when New is called.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) {
		if tp == nil {
			c.errs = append(c.errs, errors.New("WithTracerProvider(nil): pass a TracerProvider, or leave the option out to use otel.GetTracerProvider()"))
			return
		}
		c.tracers = tp
	}
}

// Observer is an [observe.Observer] that reports to OpenTelemetry. Create
// it with [New], pass it to every component's WithObserver option, and
// Close it on shutdown. It is safe for concurrent use.
type Observer struct {
	tracer      trace.Tracer
	observables map[observe.Metric]metric.Float64Observable
	latency     metric.Float64Histogram
	duration    metric.Float64Histogram
	sets        attrSets // of the histograms' series
	reg         metric.Registration

	sources observe.Sources

	closeOnce sync.Once
	closeErr  error
}

var _ observe.Observer = (*Observer)(nil)

// New returns an Observer that reports to the given providers, or to the
// global ones. It creates every instrument and registers the callback that
// reads the watched sources; it returns an error naming the option at
// fault, or the instrument the MeterProvider refused.
func New(opts ...Option) (*Observer, error) {
	var cfg config
	for i, opt := range opts {
		if opt == nil {
			cfg.errs = append(cfg.errs, fmt.Errorf("option %d is nil: remove it, or pass one made by a With... function", i))
			continue
		}
		opt(&cfg)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, fmt.Errorf("otelpurge: invalid configuration: %w", err)
	}
	if cfg.meters == nil {
		cfg.meters = otel.GetMeterProvider()
	}
	if cfg.tracers == nil {
		cfg.tracers = otel.GetTracerProvider()
	}
	o := &Observer{
		tracer:      cfg.tracers.Tracer(ScopeName),
		observables: make(map[observe.Metric]metric.Float64Observable),
	}
	if err := o.instruments(cfg.meters.Meter(ScopeName)); err != nil {
		return nil, fmt.Errorf("otelpurge: %w", err)
	}
	return o, nil
}

// instruments creates the observable instruments of every observe.Metric,
// the two histograms, and registers the callback.
func (o *Observer) instruments(m metric.Meter) error {
	var errs []error
	all := make([]metric.Observable, 0, len(observe.Metrics()))
	for _, om := range observe.Metrics() {
		info := om.Info()
		name := Prefix + info.Name
		var (
			inst metric.Float64Observable
			err  error
		)
		switch info.Kind {
		case observe.Counter:
			inst, err = m.Float64ObservableCounter(name, metric.WithUnit(info.Unit), metric.WithDescription(info.Description))
		case observe.Gauge:
			inst, err = m.Float64ObservableGauge(name, metric.WithUnit(info.Unit), metric.WithDescription(info.Description))
		default:
			err = fmt.Errorf("unknown kind %d", info.Kind)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("metric %s: %w", name, err))
			continue
		}
		o.observables[om] = inst
		all = append(all, inst)
	}
	var err error
	o.latency, err = m.Float64Histogram(Prefix+observe.Latency,
		metric.WithUnit("s"),
		metric.WithDescription("Time from a transaction's commit to the purge of its objects in a backend, per backend and outcome."),
		metric.WithExplicitBucketBoundaries(observe.LatencyBuckets()...))
	if err != nil {
		errs = append(errs, fmt.Errorf("histogram %s: %w", Prefix+observe.Latency, err))
	}
	o.duration, err = m.Float64Histogram(Prefix+observe.AttemptDuration,
		metric.WithUnit("s"),
		metric.WithDescription("Duration of the calls to backends, per backend and outcome."),
		metric.WithExplicitBucketBoundaries(observe.DurationBuckets()...))
	if err != nil {
		errs = append(errs, fmt.Errorf("histogram %s: %w", Prefix+observe.AttemptDuration, err))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	o.reg, err = m.RegisterCallback(o.collect, all...)
	if err != nil {
		return fmt.Errorf("registering the metrics callback: %w", err)
	}
	return nil
}

// Close unregisters the callback that reads the watched sources: the
// Observer reports no more figures, but still starts spans and records
// histograms. Close it after the components. Calling it again returns
// what the first call returned.
func (o *Observer) Close(context.Context) error {
	o.closeOnce.Do(func() {
		if err := o.reg.Unregister(); err != nil {
			o.closeErr = fmt.Errorf("otelpurge: unregistering the metrics callback: %w", err)
		}
	})
	return o.closeErr
}

// Watch registers s, read each time the MeterProvider collects, until the
// returned function is called. Components call it; the function may be
// called more than once.
func (o *Observer) Watch(s observe.Source) func() {
	return o.sources.Watch(s)
}

// collect observes the figures of every watched source, added up as
// observe.Sources does: counters summed, the last reading of a gauge.
func (o *Observer) collect(ctx context.Context, obs metric.Observer) error {
	for _, f := range o.sources.Read(ctx) {
		obs.ObserveFloat64(o.observables[f.Metric], f.Value, metric.WithAttributeSet(attributes(f.Series)))
	}
	return ctx.Err()
}

// attributes returns the attributes of s that its Metric's Info names.
func attributes(s observe.Series) attribute.Set {
	kvs := make([]attribute.KeyValue, 0, 2)
	for _, a := range s.Metric.Info().Attrs {
		switch a {
		case "backend":
			kvs = append(kvs, BackendKey.String(s.Backend))
		case "outcome":
			kvs = append(kvs, OutcomeKey.String(s.Outcome))
		}
	}
	return attribute.NewSet(kvs...)
}
