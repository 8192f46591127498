package otelpurge_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/gormpurge/gormpurge/contrib/otelpurge"
	"github.com/gormpurge/gormpurge/observe"
)

func TestNewRejectsNilSettings(t *testing.T) {
	tests := []struct {
		name string
		opt  otelpurge.Option
		want string
	}{
		{"meter provider", otelpurge.WithMeterProvider(nil), "WithMeterProvider(nil)"},
		{"tracer provider", otelpurge.WithTracerProvider(nil), "WithTracerProvider(nil)"},
		{"nil option", nil, "option 0 is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs, err := otelpurge.New(tt.opt)
			require.Error(t, err)
			assert.Nil(t, obs)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestNewWithGlobalProviders(t *testing.T) {
	obs, err := otelpurge.New()
	require.NoError(t, err)
	stop := obs.Watch(func(context.Context, func(observe.Reading)) {})
	_, tp, end := obs.StartHandoff(context.Background(), observe.Handoff{URLs: []string{"/a"}})
	end(observe.HandoffEnd{Outcome: observe.HandedOff})
	assert.Empty(t, tp, "the default global TracerProvider records nothing")
	stop()
	require.NoError(t, obs.Close(context.Background()))
}

// Every observe.Metric is an instrument named, united and described after
// its Info, of its kind, with the attributes its Info names and no others.
func TestEveryMetricIsAnInstrument(t *testing.T) {
	h := newHarness(t)
	h.obs.Watch(func(_ context.Context, add func(observe.Reading)) {
		for _, m := range observe.Metrics() {
			add(observe.Reading{Metric: m, Backend: "cdn", Outcome: "delivered", Value: 3})
		}
	})
	got := h.collect(t)

	for _, m := range observe.Metrics() {
		info := m.Info()
		t.Run(info.Name, func(t *testing.T) {
			name := "gormpurge." + info.Name
			require.Contains(t, got, name)
			gm := got[name]
			assert.Equal(t, info.Unit, gm.Unit)
			assert.Equal(t, info.Description, gm.Description)
			assert.NotContains(t, name, "_total")
			switch info.Kind {
			case observe.Counter:
				sum, ok := gm.Data.(metricdata.Sum[float64])
				require.True(t, ok, "a counter is a sum, got %T", gm.Data)
				assert.True(t, sum.IsMonotonic)
				assert.Equal(t, metricdata.CumulativeTemporality, sum.Temporality)
			case observe.Gauge:
				require.IsType(t, metricdata.Gauge[float64]{}, gm.Data)
			}
			var want []string
			for _, a := range info.Attrs {
				switch a {
				case "backend":
					want = append(want, "gormpurge.backend=cdn")
				case "outcome":
					want = append(want, "gormpurge.outcome=delivered")
				}
			}
			assert.Equal(t, map[string]float64{strings.Join(want, ","): 3}, points(t, gm))
		})
	}
}

func TestCountersAddUpAndGaugesKeepTheLastReading(t *testing.T) {
	h := newHarness(t)
	source := func(objects, depth float64) observe.Source {
		return func(_ context.Context, add func(observe.Reading)) {
			add(observe.Reading{Metric: observe.Objects, Backend: "cdn", Outcome: observe.Delivered, Value: objects})
			add(observe.Reading{Metric: observe.Objects, Backend: "cdn", Outcome: observe.Failed, Value: 1})
			add(observe.Reading{Metric: observe.QueueDepth, Backend: "cdn", Value: depth})
		}
	}
	h.obs.Watch(source(5, 7))
	stop := h.obs.Watch(source(10, 2))

	got := h.collect(t)
	assert.Equal(t, map[string]float64{
		"gormpurge.backend=cdn,gormpurge.outcome=delivered": 15,
		"gormpurge.backend=cdn,gormpurge.outcome=failed":    2,
	}, points(t, got["gormpurge.purge.objects"]))
	assert.Equal(t, map[string]float64{"gormpurge.backend=cdn": 2}, points(t, got["gormpurge.purge.queue.depth"]))

	stop()
	stop() // a second call does nothing
	got = h.collect(t)
	assert.Equal(t, map[string]float64{
		"gormpurge.backend=cdn,gormpurge.outcome=delivered": 5,
		"gormpurge.backend=cdn,gormpurge.outcome=failed":    1,
	}, points(t, got["gormpurge.purge.objects"]))
	assert.Equal(t, map[string]float64{"gormpurge.backend=cdn": 7}, points(t, got["gormpurge.purge.queue.depth"]))
}

// Attributes a Metric's Info does not name are left out, so such readings
// add up with the others.
func TestReadingsKeepOnlyTheirMetricsAttributes(t *testing.T) {
	h := newHarness(t)
	h.obs.Watch(func(_ context.Context, add func(observe.Reading)) {
		add(observe.Reading{Metric: observe.Retries, Backend: "cdn", Outcome: "stray", Value: 1})
		add(observe.Reading{Metric: observe.Retries, Backend: "cdn", Value: 2})
		add(observe.Reading{Metric: observe.OutboxPending, Backend: "stray", Value: 4})
		add(observe.Reading{Metric: observe.Metric(999), Value: 1}) // unknown: skipped
	})
	got := h.collect(t)
	assert.Equal(t, map[string]float64{"gormpurge.backend=cdn": 3}, points(t, got["gormpurge.purge.retries"]))
	assert.Equal(t, map[string]float64{"": 4}, points(t, got["gormpurge.outbox.pending"]))
}

// A store two middlewares share reports its figures through both: they
// count once, and add up with another store's.
func TestReadingsOfOneOwnerCountOnce(t *testing.T) {
	h := newHarness(t)
	middleware := func(store *int, entries float64) observe.Source {
		return func(_ context.Context, add func(observe.Reading)) {
			add(observe.Reading{Metric: observe.CacheEvictions, Value: 7, Owner: store})
			add(observe.Reading{Metric: observe.CacheEntries, Value: entries, Owner: store})
			add(observe.Reading{Metric: observe.CacheRequests, Outcome: "hit", Value: 2})
		}
	}
	shared, other := new(int), new(int)
	h.obs.Watch(middleware(shared, 3))
	h.obs.Watch(middleware(shared, 3))
	h.obs.Watch(middleware(other, 10))
	got := h.collect(t)
	assert.Equal(t, map[string]float64{"": 14}, points(t, got["gormpurge.cache.evictions"]))
	assert.Equal(t, map[string]float64{"": 13}, points(t, got["gormpurge.cache.entries"]))
	assert.Equal(t, map[string]float64{"gormpurge.outcome=hit": 6}, points(t, got["gormpurge.cache.requests"]))
}

func TestStopRemovesOnlyItsSource(t *testing.T) {
	h := newHarness(t)
	reading := func(v float64) observe.Source {
		return func(_ context.Context, add func(observe.Reading)) {
			add(observe.Reading{Metric: observe.CacheStores, Value: v})
		}
	}
	stops := []func(){h.obs.Watch(reading(1)), h.obs.Watch(reading(10)), h.obs.Watch(reading(100))}
	stops[1]()
	assert.Equal(t, map[string]float64{"": 101}, points(t, h.collect(t)["gormpurge.cache.stores"]))
	stops[0]()
	stops[2]()
	assert.NotContains(t, h.collect(t), "gormpurge.cache.stores", "no source, no data point")
}

func TestCloseStopsReadingSources(t *testing.T) {
	h := newHarness(t)
	h.obs.Watch(func(_ context.Context, add func(observe.Reading)) {
		add(observe.Reading{Metric: observe.CacheEntries, Value: 1})
	})
	require.Contains(t, h.collect(t), "gormpurge.cache.entries")
	require.NoError(t, h.obs.Close(context.Background()))
	require.NoError(t, h.obs.Close(context.Background()), "a second Close does nothing")
	assert.NotContains(t, h.collect(t), "gormpurge.cache.entries")
}

// Components watch and stop while the provider collects.
func TestWatchIsSafeForConcurrentUse(t *testing.T) {
	h := newHarness(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				stop := h.obs.Watch(func(_ context.Context, add func(observe.Reading)) {
					add(observe.Reading{Metric: observe.Handoffs, Outcome: observe.HandedOff, Value: 1})
				})
				stop()
			}
		})
	}
	for range 20 {
		h.collect(t)
	}
	wg.Wait()
}
