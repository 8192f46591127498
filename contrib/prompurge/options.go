package prompurge

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/gormpurge/gormpurge/observe"
)

// DefaultCollectTimeout bounds how long a scrape waits for the components'
// figures, unless [WithCollectTimeout] changes it.
const DefaultCollectTimeout = 5 * time.Second

// An Option configures a [Collector]. Options are applied in order by
// [New], which then validates the result.
type Option func(*config)

// config holds every setting of a Collector.
type config struct {
	collectTimeout  time.Duration
	latencyBuckets  []float64
	durationBuckets []float64
}

func defaultConfig() config {
	return config{
		collectTimeout:  DefaultCollectTimeout,
		latencyBuckets:  observe.LatencyBuckets(),
		durationBuckets: observe.DurationBuckets(),
	}
}

// WithCollectTimeout bounds how long each scrape waits for the figures of
// every component: the context given to each [observe.Source] expires
// after d (the outbox, for one, reads its table). Keep it below the scrape
// timeout of Prometheus. Defaults to [DefaultCollectTimeout] (5s).
func WithCollectTimeout(d time.Duration) Option {
	return func(c *config) { c.collectTimeout = d }
}

// WithLatencyBuckets sets the upper bounds, in seconds and increasing, of
// the buckets of gormpurge_purge_latency_seconds, the time from a commit to
// the end of its purge. Defaults to [observe.LatencyBuckets], which every
// gormpurge exporter shares: change them only to match a dashboard of
// yours.
func WithLatencyBuckets(bounds []float64) Option {
	bounds = slices.Clone(bounds)
	return func(c *config) { c.latencyBuckets = bounds }
}

// WithDurationBuckets sets the upper bounds, in seconds and increasing, of
// the buckets of gormpurge_purge_duration_seconds, the time each call to a
// backend takes. Defaults to [observe.DurationBuckets].
func WithDurationBuckets(bounds []float64) Option {
	bounds = slices.Clone(bounds)
	return func(c *config) { c.durationBuckets = bounds }
}

func (c *config) validate() []error {
	var errs []error
	if c.collectTimeout <= 0 {
		errs = append(errs, fmt.Errorf("WithCollectTimeout(%v): need a positive timeout", c.collectTimeout))
	}
	if err := checkBuckets(c.latencyBuckets); err != nil {
		errs = append(errs, fmt.Errorf("WithLatencyBuckets(%v): %w", c.latencyBuckets, err))
	}
	if err := checkBuckets(c.durationBuckets); err != nil {
		errs = append(errs, fmt.Errorf("WithDurationBuckets(%v): %w", c.durationBuckets, err))
	}
	return errs
}

// checkBuckets returns why bounds cannot be a histogram's, which
// prometheus.NewHistogramVec would panic on.
func checkBuckets(bounds []float64) error {
	if len(bounds) == 0 {
		return errors.New("need at least one bound")
	}
	for i, b := range bounds {
		if math.IsNaN(b) {
			return fmt.Errorf("bound %d is NaN", i)
		}
		if i > 0 && b <= bounds[i-1] {
			return fmt.Errorf("bounds must increase, and %v follows %v", b, bounds[i-1])
		}
	}
	return nil
}
