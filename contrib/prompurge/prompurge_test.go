package prompurge_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/contrib/prompurge"
	"github.com/gormpurge/gormpurge/observe"
)

func newCollector(t *testing.T, opts ...prompurge.Option) (*prompurge.Collector, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	c, err := prompurge.New(reg, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close(context.Background())) })
	return c, reg
}

// source returns a Source that reports rs.
func source(rs ...observe.Reading) observe.Source {
	return func(_ context.Context, add func(observe.Reading)) {
		for _, r := range rs {
			add(r)
		}
	}
}

func TestMetricName(t *testing.T) {
	want := map[observe.Metric]string{
		observe.Handoffs:               "gormpurge_handoffs_total",
		observe.Objects:                "gormpurge_purge_objects_total",
		observe.Retries:                "gormpurge_purge_retries_total",
		observe.Escalations:            "gormpurge_purge_escalations_total",
		observe.QueueDepth:             "gormpurge_purge_queue_depth",
		observe.InFlight:               "gormpurge_purge_in_flight",
		observe.OutboxPending:          "gormpurge_outbox_pending",
		observe.OutboxDead:             "gormpurge_outbox_dead",
		observe.OutboxOldestPendingAge: "gormpurge_outbox_oldest_pending_age_seconds",
		observe.OutboxRows:             "gormpurge_outbox_rows_total",
		observe.CacheRequests:          "gormpurge_cache_requests_total",
		observe.CacheStores:            "gormpurge_cache_stores_total",
		observe.CacheEvictions:         "gormpurge_cache_evictions_total",
		observe.CacheEntries:           "gormpurge_cache_entries",
		observe.Warmed:                 "gormpurge_warm_urls_total",
		observe.WarmQueued:             "gormpurge_warm_queue_depth",
	}
	for _, m := range observe.Metrics() {
		assert.Equal(t, want[m], prompurge.MetricName(m), "name of %v", m)
	}
	assert.Len(t, want, len(observe.Metrics()), "a Metric was added: name it here and in the package documentation")
	assert.Empty(t, prompurge.MetricName(0))
}

// everyMetric reports each Metric once, with values 1, 2, ... in order.
func everyMetric() observe.Source {
	var rs []observe.Reading
	for i, m := range observe.Metrics() {
		rs = append(rs, observe.Reading{Metric: m, Backend: "cdn", Outcome: "delivered", Value: float64(i + 1)})
	}
	return source(rs...)
}

const everyMetricText = `
# HELP gormpurge_handoffs_total Requests the plugin handed off after a commit, by outcome.
# TYPE gormpurge_handoffs_total counter
gormpurge_handoffs_total{outcome="delivered"} 1
# HELP gormpurge_purge_objects_total URLs and tags the dispatcher ended, per backend and outcome.
# TYPE gormpurge_purge_objects_total counter
gormpurge_purge_objects_total{backend="cdn",outcome="delivered"} 2
# HELP gormpurge_purge_retries_total Calls to a backend that failed and were retried.
# TYPE gormpurge_purge_retries_total counter
gormpurge_purge_retries_total{backend="cdn"} 3
# HELP gormpurge_purge_escalations_total Handoffs replaced with a purge of tags or of everything.
# TYPE gormpurge_purge_escalations_total counter
gormpurge_purge_escalations_total{backend="cdn"} 4
# HELP gormpurge_purge_queue_depth URLs and tags waiting in a backend's queue.
# TYPE gormpurge_purge_queue_depth gauge
gormpurge_purge_queue_depth{backend="cdn"} 5
# HELP gormpurge_purge_in_flight URLs and tags taken from a backend's queue and not yet settled.
# TYPE gormpurge_purge_in_flight gauge
gormpurge_purge_in_flight{backend="cdn"} 6
# HELP gormpurge_outbox_pending Pending rows in the outbox table.
# TYPE gormpurge_outbox_pending gauge
gormpurge_outbox_pending 7
# HELP gormpurge_outbox_dead Dead rows in the outbox table.
# TYPE gormpurge_outbox_dead gauge
gormpurge_outbox_dead 8
# HELP gormpurge_outbox_oldest_pending_age_seconds Age of the oldest pending row of the outbox table.
# TYPE gormpurge_outbox_oldest_pending_age_seconds gauge
gormpurge_outbox_oldest_pending_age_seconds 9
# HELP gormpurge_outbox_rows_total Outbox rows a relay settled, by outcome.
# TYPE gormpurge_outbox_rows_total counter
gormpurge_outbox_rows_total{outcome="delivered"} 10
# HELP gormpurge_cache_requests_total Requests the local cache middleware answered, by outcome.
# TYPE gormpurge_cache_requests_total counter
gormpurge_cache_requests_total{outcome="delivered"} 11
# HELP gormpurge_cache_stores_total Pages the local cache stored.
# TYPE gormpurge_cache_stores_total counter
gormpurge_cache_stores_total 12
# HELP gormpurge_cache_evictions_total Entries a local cache store evicted to make room.
# TYPE gormpurge_cache_evictions_total counter
gormpurge_cache_evictions_total 13
# HELP gormpurge_cache_entries Entries in a local cache store.
# TYPE gormpurge_cache_entries gauge
gormpurge_cache_entries 14
# HELP gormpurge_warm_urls_total URLs the warmer ended, by outcome.
# TYPE gormpurge_warm_urls_total counter
gormpurge_warm_urls_total{outcome="delivered"} 15
# HELP gormpurge_warm_queue_depth URLs waiting in the warmer's queue.
# TYPE gormpurge_warm_queue_depth gauge
gormpurge_warm_queue_depth 16
`

// TestEveryMetricHasItsNameTypeLabelsAndHelp also shows that attributes a
// Metric does not name are dropped: every reading carries a backend and
// an outcome.
func TestEveryMetricHasItsNameTypeLabelsAndHelp(t *testing.T) {
	c, _ := newCollector(t)
	c.Watch(everyMetric())
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(everyMetricText)))
}

func TestMetricsWithoutReadingsAreLeftOut(t *testing.T) {
	c, reg := newCollector(t)
	assert.Zero(t, testutil.CollectAndCount(c))

	c.Watch(source(observe.Reading{Metric: observe.QueueDepth, Backend: "cdn", Value: 0}))
	n, err := testutil.GatherAndCount(reg)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "a reading of 0 is a reading")
}

func TestReadingsOfSeveralSourcesAddUp(t *testing.T) {
	c, _ := newCollector(t)
	c.Watch(source(
		observe.Reading{Metric: observe.Objects, Backend: "cdn", Outcome: observe.Delivered, Value: 3},
		observe.Reading{Metric: observe.Objects, Backend: "cdn", Outcome: observe.Failed, Value: 1},
		observe.Reading{Metric: observe.QueueDepth, Backend: "cdn", Value: 7},
		observe.Reading{Metric: observe.OutboxPending, Value: 2},
	))
	c.Watch(source(
		observe.Reading{Metric: observe.Objects, Backend: "cdn", Outcome: observe.Delivered, Value: 4},
		observe.Reading{Metric: observe.Objects, Backend: "varnish", Outcome: observe.Delivered, Value: 5},
		observe.Reading{Metric: observe.QueueDepth, Backend: "cdn", Value: 9},
		observe.Reading{Metric: observe.OutboxPending, Value: 6},
		observe.Reading{Metric: 0, Value: 1},   // unknown: ignored
		observe.Reading{Metric: 999, Value: 1}, // unknown: ignored
	))
	const want = `
# HELP gormpurge_purge_objects_total URLs and tags the dispatcher ended, per backend and outcome.
# TYPE gormpurge_purge_objects_total counter
gormpurge_purge_objects_total{backend="cdn",outcome="delivered"} 7
gormpurge_purge_objects_total{backend="cdn",outcome="failed"} 1
gormpurge_purge_objects_total{backend="varnish",outcome="delivered"} 5
# HELP gormpurge_purge_queue_depth URLs and tags waiting in a backend's queue.
# TYPE gormpurge_purge_queue_depth gauge
gormpurge_purge_queue_depth{backend="cdn"} 9
# HELP gormpurge_outbox_pending Pending rows in the outbox table.
# TYPE gormpurge_outbox_pending gauge
gormpurge_outbox_pending 6
`
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(want)))
}

func TestStopRemovesTheSource(t *testing.T) {
	c, _ := newCollector(t)
	stopA := c.Watch(source(observe.Reading{Metric: observe.CacheStores, Value: 1}))
	stopB := c.Watch(source(observe.Reading{Metric: observe.CacheStores, Value: 10}))
	assert.Equal(t, 11.0, testutil.ToFloat64(c))

	stopA()
	assert.Equal(t, 10.0, testutil.ToFloat64(c))
	stopA() // again: nothing more
	assert.Equal(t, 10.0, testutil.ToFloat64(c))

	stopB()
	assert.Zero(t, testutil.CollectAndCount(c))
	assert.NotPanics(t, func() { c.Watch(nil)() })
}

func TestSourcesGetABoundedContext(t *testing.T) {
	c, _ := newCollector(t, prompurge.WithCollectTimeout(time.Minute))
	var deadline time.Time
	var ok bool
	c.Watch(func(ctx context.Context, _ func(observe.Reading)) { deadline, ok = ctx.Deadline() })
	before := time.Now()
	testutil.CollectAndCount(c)
	require.True(t, ok, "the Source's context has a deadline")
	assert.WithinRange(t, deadline, before, time.Now().Add(time.Minute))
}

// TestAddAfterTheSourceReturnedIsIgnored: a Source that keeps add and
// calls it later neither races with a scrape nor changes it.
func TestAddAfterTheSourceReturnedIsIgnored(t *testing.T) {
	c, _ := newCollector(t)
	var late func(observe.Reading)
	c.Watch(func(_ context.Context, add func(observe.Reading)) { late = add })
	assert.Zero(t, testutil.CollectAndCount(c))
	assert.NotPanics(t, func() { late(observe.Reading{Metric: observe.CacheStores, Value: 1}) })
	c.Watch(source(observe.Reading{Metric: observe.CacheStores, Value: 2}))
	assert.Equal(t, 2.0, testutil.ToFloat64(c))
}

func TestDurationHistogram(t *testing.T) {
	c, _ := newCollector(t, prompurge.WithDurationBuckets([]float64{0.1, 1}))
	ctx := context.Background()
	attempt := func(backend string, e observe.AttemptEnd) {
		got, end := c.StartAttempt(ctx, observe.Attempt{Backend: backend, Number: 1, URLs: []string{"/a"}})
		assert.Equal(t, ctx, got, "Prometheus adds nothing to the context")
		end(e)
	}
	attempt("cdn", observe.AttemptEnd{Duration: 50 * time.Millisecond})
	attempt("cdn", observe.AttemptEnd{Duration: 500 * time.Millisecond})
	attempt("cdn", observe.AttemptEnd{Err: errors.New("429"), Class: observe.ClassRateLimited, Retry: true, Duration: 2 * time.Second})
	attempt("varnish", observe.AttemptEnd{Err: errors.New("boom"), Duration: 250 * time.Millisecond}) // no class: _OTHER

	const want = `
# HELP gormpurge_purge_duration_seconds Duration of calls to backends, by outcome and error class.
# TYPE gormpurge_purge_duration_seconds histogram
gormpurge_purge_duration_seconds_bucket{backend="cdn",error_class="",outcome="ok",le="0.1"} 1
gormpurge_purge_duration_seconds_bucket{backend="cdn",error_class="",outcome="ok",le="1"} 2
gormpurge_purge_duration_seconds_bucket{backend="cdn",error_class="",outcome="ok",le="+Inf"} 2
gormpurge_purge_duration_seconds_sum{backend="cdn",error_class="",outcome="ok"} 0.55
gormpurge_purge_duration_seconds_count{backend="cdn",error_class="",outcome="ok"} 2
gormpurge_purge_duration_seconds_bucket{backend="cdn",error_class="rate_limited",outcome="error",le="0.1"} 0
gormpurge_purge_duration_seconds_bucket{backend="cdn",error_class="rate_limited",outcome="error",le="1"} 0
gormpurge_purge_duration_seconds_bucket{backend="cdn",error_class="rate_limited",outcome="error",le="+Inf"} 1
gormpurge_purge_duration_seconds_sum{backend="cdn",error_class="rate_limited",outcome="error"} 2
gormpurge_purge_duration_seconds_count{backend="cdn",error_class="rate_limited",outcome="error"} 1
gormpurge_purge_duration_seconds_bucket{backend="varnish",error_class="_OTHER",outcome="error",le="0.1"} 0
gormpurge_purge_duration_seconds_bucket{backend="varnish",error_class="_OTHER",outcome="error",le="1"} 1
gormpurge_purge_duration_seconds_bucket{backend="varnish",error_class="_OTHER",outcome="error",le="+Inf"} 1
gormpurge_purge_duration_seconds_sum{backend="varnish",error_class="_OTHER",outcome="error"} 0.25
gormpurge_purge_duration_seconds_count{backend="varnish",error_class="_OTHER",outcome="error"} 1
`
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(want)))
}

func TestDurationWithoutOneFromTheDispatcherIsMeasured(t *testing.T) {
	c, reg := newCollector(t)
	_, end := c.StartAttempt(context.Background(), observe.Attempt{Backend: "cdn", Number: 1})
	end(observe.AttemptEnd{})
	h := histogram(t, reg, "gormpurge_purge_duration_seconds")
	assert.EqualValues(t, 1, h.GetSampleCount())
}

func TestLatencyHistogram(t *testing.T) {
	c, _ := newCollector(t, prompurge.WithLatencyBuckets([]float64{1, 10}))
	committed := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	settle := func(backend, outcome string, after time.Duration) {
		c.Settled(observe.Settled{Backend: backend, Outcome: outcome, Origin: observe.Origin{Committed: committed}, At: committed.Add(after)})
	}
	settle("cdn", observe.Delivered, 500*time.Millisecond)
	settle("cdn", observe.Delivered, 5*time.Second)
	settle("cdn", observe.Dropped, -time.Second) // clocks apart: counts as 0
	c.Settled(observe.Settled{Backend: "cdn", Outcome: observe.Delivered, At: committed})

	const want = `
# HELP gormpurge_purge_latency_seconds Time from a transaction's commit to the end of its purge in a backend, by outcome.
# TYPE gormpurge_purge_latency_seconds histogram
gormpurge_purge_latency_seconds_bucket{backend="cdn",outcome="delivered",le="1"} 1
gormpurge_purge_latency_seconds_bucket{backend="cdn",outcome="delivered",le="10"} 2
gormpurge_purge_latency_seconds_bucket{backend="cdn",outcome="delivered",le="+Inf"} 2
gormpurge_purge_latency_seconds_sum{backend="cdn",outcome="delivered"} 5.5
gormpurge_purge_latency_seconds_count{backend="cdn",outcome="delivered"} 2
gormpurge_purge_latency_seconds_bucket{backend="cdn",outcome="dropped",le="1"} 1
gormpurge_purge_latency_seconds_bucket{backend="cdn",outcome="dropped",le="10"} 1
gormpurge_purge_latency_seconds_bucket{backend="cdn",outcome="dropped",le="+Inf"} 1
gormpurge_purge_latency_seconds_sum{backend="cdn",outcome="dropped"} 0
gormpurge_purge_latency_seconds_count{backend="cdn",outcome="dropped"} 1
`
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(want)))
}

func TestHistogramsUseTheSharedBuckets(t *testing.T) {
	c, reg := newCollector(t)
	_, end := c.StartAttempt(context.Background(), observe.Attempt{Backend: "cdn", Number: 1})
	end(observe.AttemptEnd{Duration: time.Millisecond})
	c.Settled(observe.Settled{Backend: "cdn", Outcome: observe.Delivered, Origin: observe.Origin{Committed: time.Now()}, At: time.Now()})

	for name, want := range map[string][]float64{
		"gormpurge_purge_duration_seconds": observe.DurationBuckets(),
		"gormpurge_purge_latency_seconds":  observe.LatencyBuckets(),
	} {
		var got []float64
		for _, b := range histogram(t, reg, name).GetBucket() {
			got = append(got, b.GetUpperBound())
		}
		assert.Equal(t, want, got, name)
	}
}

func TestStartHandoffAddsNothing(t *testing.T) {
	c, _ := newCollector(t)
	ctx := context.Background()
	got, traceparent, end := c.StartHandoff(ctx, observe.Handoff{URLs: []string{"/a"}})
	assert.Equal(t, ctx, got)
	assert.Empty(t, traceparent)
	assert.NotPanics(t, func() { end(observe.HandoffEnd{Outcome: observe.HandedOff}) })
	assert.Zero(t, testutil.CollectAndCount(c))
}

// TestInvalidUTF8IsScraped: a backend name that is not UTF-8 neither
// panics in the dispatcher nor fails the scrape.
func TestInvalidUTF8IsScraped(t *testing.T) {
	c, reg := newCollector(t)
	bad := "cdn\xff"
	c.Watch(source(observe.Reading{Metric: observe.QueueDepth, Backend: bad, Value: 1}))
	_, end := c.StartAttempt(context.Background(), observe.Attempt{Backend: bad})
	assert.NotPanics(t, func() { end(observe.AttemptEnd{Duration: time.Second}) })
	c.Settled(observe.Settled{Backend: bad, Outcome: observe.Delivered, Origin: observe.Origin{Committed: time.Now()}, At: time.Now()})
	n, err := testutil.GatherAndCount(reg)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
}

func TestEveryMetricPassesTheLinter(t *testing.T) {
	c, reg := newCollector(t)
	c.Watch(everyMetric())
	_, end := c.StartAttempt(context.Background(), observe.Attempt{Backend: "cdn", Number: 1})
	end(observe.AttemptEnd{Duration: time.Millisecond})
	c.Settled(observe.Settled{Backend: "cdn", Outcome: observe.Delivered, Origin: observe.Origin{Committed: time.Now()}, At: time.Now()})

	families, err := reg.Gather()
	require.NoError(t, err)
	assert.Len(t, families, len(observe.Metrics())+2, "every metric and both histograms are present")
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

func TestNewRefusesANilRegisterer(t *testing.T) {
	for name, reg := range map[string]prometheus.Registerer{
		"nil":       nil,
		"typed nil": (*prometheus.Registry)(nil),
	} {
		t.Run(name, func(t *testing.T) {
			c, err := prompurge.New(reg)
			require.Error(t, err)
			assert.Nil(t, c)
			assert.ErrorContains(t, err, "prometheus.NewRegistry()")
			assert.ErrorContains(t, err, "prometheus.DefaultRegisterer")
		})
	}
}

func TestNewRefusesInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		opt  prompurge.Option
		want string
	}{
		{"nil option", nil, "an Option is nil"},
		{"no collect timeout", prompurge.WithCollectTimeout(0), "WithCollectTimeout(0s)"},
		{"no latency buckets", prompurge.WithLatencyBuckets(nil), "WithLatencyBuckets([]): need at least one bound"},
		{"latency buckets out of order", prompurge.WithLatencyBuckets([]float64{1, 0.5}), "WithLatencyBuckets([1 0.5]): bounds must increase"},
		{"duration buckets repeated", prompurge.WithDurationBuckets([]float64{1, 1}), "WithDurationBuckets([1 1]): bounds must increase"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			c, err := prompurge.New(reg, tt.opt)
			require.Error(t, err)
			assert.Nil(t, c)
			assert.ErrorContains(t, err, tt.want)
			n, err := testutil.GatherAndCount(reg)
			require.NoError(t, err)
			assert.Zero(t, n, "nothing registered")
		})
	}
}

func TestRegistrationConflictsAreReported(t *testing.T) {
	t.Run("a second Collector", func(t *testing.T) {
		_, reg := newCollector(t)
		_, err := prompurge.New(reg)
		var already prometheus.AlreadyRegisteredError
		require.ErrorAs(t, err, &already)
		assert.ErrorContains(t, err, "prompurge: register the collector")
	})
	t.Run("a metric of the application", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "gormpurge_purge_objects_total", Help: "Mine."}))
		_, err := prompurge.New(reg)
		assert.ErrorContains(t, err, "gormpurge_purge_objects_total")
	})
}

func TestCloseUnregisters(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, err := prompurge.New(reg)
	require.NoError(t, err)
	c.Watch(source(observe.Reading{Metric: observe.CacheEntries, Value: 3}))
	n, err := testutil.GatherAndCount(reg)
	require.NoError(t, err)
	require.Equal(t, 1, n)

	require.NoError(t, c.Close(context.Background()))
	n, err = testutil.GatherAndCount(reg)
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.NoError(t, c.Close(context.Background()), "again")

	again, err := prompurge.New(reg)
	require.NoError(t, err, "the registry has room for a new Collector")
	require.NoError(t, again.Close(context.Background()))
}

// TestConcurrentUse runs under -race: components watch, stop and report
// while Prometheus scrapes.
func TestConcurrentUse(t *testing.T) {
	c, reg := newCollector(t)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 50 {
				stop := c.Watch(source(observe.Reading{Metric: observe.Objects, Backend: "cdn", Outcome: observe.Delivered, Value: 1}))
				_, end := c.StartAttempt(context.Background(), observe.Attempt{Backend: "cdn", Number: i})
				end(observe.AttemptEnd{Duration: time.Millisecond})
				c.Settled(observe.Settled{Backend: "cdn", Outcome: observe.Delivered, Origin: observe.Origin{Committed: time.Now()}, At: time.Now()})
				stop()
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			_, err := reg.Gather()
			assert.NoError(t, err)
		}
	})
	wg.Wait()
	h := histogram(t, reg, "gormpurge_purge_latency_seconds")
	assert.EqualValues(t, 200, h.GetSampleCount())
}

func TestJoinFeedsTheCollector(t *testing.T) {
	c, _ := newCollector(t)
	obs := observe.Join(c, observe.Nop{})
	obs.Watch(source(observe.Reading{Metric: observe.CacheEntries, Value: 4}))
	assert.Equal(t, 4.0, testutil.ToFloat64(c))
}
