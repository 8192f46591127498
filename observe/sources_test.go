package observe_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/observe"
)

func TestSourcesAddUpCountersAndKeepTheLastGauge(t *testing.T) {
	var s observe.Sources
	store := new(int) // a store two middlewares share
	mw := func(hits float64) observe.Source {
		return func(_ context.Context, add func(observe.Reading)) {
			add(observe.Reading{Metric: observe.CacheRequests, Outcome: "hit", Value: hits})
			add(observe.Reading{Metric: observe.CacheEvictions, Value: 7, Owner: store})
			add(observe.Reading{Metric: observe.CacheEntries, Value: 3, Owner: store})
		}
	}
	stopA := s.Watch(mw(2))
	s.Watch(mw(5))
	other := new(int) // a store of its own
	s.Watch(func(_ context.Context, add func(observe.Reading)) {
		add(observe.Reading{Metric: observe.CacheEntries, Value: 10, Owner: other})
	})
	s.Watch(func(_ context.Context, add func(observe.Reading)) {
		add(observe.Reading{Metric: observe.QueueDepth, Backend: "cdn", Outcome: "ignored: not an attribute of QueueDepth", Value: 4})
		add(observe.Reading{Metric: observe.Metric(999), Value: 1}) // unknown: ignored
	})
	require.Equal(t, 4, s.Len())

	want := []observe.Figure{
		{Series: observe.Series{Metric: observe.QueueDepth, Backend: "cdn"}, Value: 4},
		{Series: observe.Series{Metric: observe.CacheRequests, Outcome: "hit"}, Value: 7},
		{Series: observe.Series{Metric: observe.CacheEvictions}, Value: 7},
		{Series: observe.Series{Metric: observe.CacheEntries}, Value: 13},
	}
	assert.Equal(t, want, s.Read(context.Background()),
		"hits of both middlewares add up; the shared store's evictions and entries count once, and add up with the other store's")

	stopA()
	stopA() // a second call does nothing
	got := s.Read(context.Background())
	assert.Equal(t, 5.0, got[1].Value)
	assert.Equal(t, 3, s.Len())
}

func TestSourcesStopReadingWhenTheContextEnds(t *testing.T) {
	var s observe.Sources
	calls := 0
	for range 3 {
		s.Watch(func(context.Context, func(observe.Reading)) { calls++ })
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.Empty(t, s.Read(ctx))
	assert.Zero(t, calls)
}

func TestInfoNamesEveryMetric(t *testing.T) {
	names := map[string]bool{}
	for _, m := range observe.Metrics() {
		info := m.Info()
		require.NotEmpty(t, info.Name, "metric %d", m)
		assert.False(t, names[info.Name], "two metrics are named %s", info.Name)
		names[info.Name] = true
		assert.NotEmpty(t, info.Unit, info.Name)
		assert.NotEmpty(t, info.Description, info.Name)
		assert.Contains(t, []observe.Kind{observe.Counter, observe.Gauge}, info.Kind, info.Name)
		if len(info.Attrs) > 0 {
			info.Attrs[0] = "changed"
			assert.NotEqual(t, "changed", m.Info().Attrs[0], "Info returns a copy")
		}
	}
	assert.Zero(t, observe.Metric(0).Info())
}

func TestSourcesIgnoreAnOwnerThatCannotBeCompared(t *testing.T) {
	var s observe.Sources
	for range 2 {
		s.Watch(func(_ context.Context, add func(observe.Reading)) {
			add(observe.Reading{Metric: observe.CacheStores, Value: 1, Owner: []int{1}})
		})
	}
	got := s.Read(context.Background())
	require.Len(t, got, 1)
	assert.Equal(t, 2.0, got[0].Value, "counted as readings without an Owner, not a panic")
}
