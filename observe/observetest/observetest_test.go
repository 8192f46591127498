package observetest_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/observe"
	"github.com/gormpurge/gormpurge/observe/observetest"
)

type callerKey struct{}

func TestRecorderReadsItsSourcesAsExportersDo(t *testing.T) {
	rec := &observetest.Recorder{}
	store := new(int) // an Owner: two Sources reporting it count once
	src := func(_ context.Context, add func(observe.Reading)) {
		add(observe.Reading{Metric: observe.Objects, Backend: "cdn", Outcome: observe.Delivered, Value: 2})
		add(observe.Reading{Metric: observe.CacheEntries, Value: 5, Owner: store})
	}
	stopA := rec.Watch(src)
	stopB := rec.Watch(src)
	rec.Watch(nil)
	assert.Equal(t, 2, rec.Sources())
	assert.Len(t, rec.Watched(), 2)

	assert.Equal(t, []observe.Figure{
		{Series: observe.Series{Metric: observe.Objects, Backend: "cdn", Outcome: observe.Delivered}, Value: 4},
		{Series: observe.Series{Metric: observe.CacheEntries}, Value: 5},
	}, rec.Figures(t.Context()), "counters add up, an Owner's figure counts once")
	v, ok := rec.Value(observe.Objects, "cdn", observe.Delivered)
	assert.True(t, ok)
	assert.Equal(t, 4.0, v)
	_, ok = rec.Value(observe.Objects, "other", observe.Delivered)
	assert.False(t, ok, "no such figure")

	ended, cancel := context.WithCancel(t.Context())
	cancel()
	assert.Empty(t, rec.Figures(ended), "an exporter reads nothing once its context ended")

	stopA()
	stopA()
	assert.Equal(t, 1, rec.Sources(), "a stop removes its Source once")
	assert.Equal(t, 2, rec.Stops(), "every call of a stop counts")
	v, _ = rec.Value(observe.Objects, "cdn", observe.Delivered)
	assert.Equal(t, 2.0, v)
	stopB()
	assert.Zero(t, rec.Sources())
	assert.Empty(t, rec.Figures(t.Context()))
}

func TestRecorderRecordsHandoffsAttemptsAndSettlements(t *testing.T) {
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	rec := &observetest.Recorder{TraceParent: tp}
	parent := context.WithValue(t.Context(), callerKey{}, "request-42")

	ctx, gotTP, end := rec.StartHandoff(parent, observe.Handoff{URLs: []string{"/a"}})
	assert.Equal(t, tp, gotTP)
	i, ok := rec.HandoffFrom(ctx)
	require.True(t, ok)
	assert.Equal(t, 0, i)
	_, ok = rec.HandoffFrom(parent)
	assert.False(t, ok)
	_, ok = (&observetest.Recorder{}).HandoffFrom(ctx)
	assert.False(t, ok, "the value is the Recorder's own")
	hs := rec.Handoffs()
	require.Len(t, hs, 1)
	assert.Equal(t, "request-42", hs[0].Parent.Value(callerKey{}))
	assert.Equal(t, []string{"/a"}, hs[0].Handoff.URLs)
	assert.Nil(t, hs[0].End, "not ended yet")
	failed := errors.New("queue full")
	end(observe.HandoffEnd{Outcome: observe.HandoffFailed, Err: failed})
	hs = rec.Handoffs()
	require.NotNil(t, hs[0].End)
	assert.Equal(t, observe.HandoffEnd{Outcome: observe.HandoffFailed, Err: failed}, *hs[0].End)
	hs[0].End.Outcome = "changed"
	assert.Equal(t, observe.HandoffFailed, rec.Handoffs()[0].End.Outcome, "Handoffs returns copies")

	for n := 1; n <= 2; n++ {
		ctx, end := rec.StartAttempt(t.Context(), observe.Attempt{Backend: "cdn", Number: n})
		got, ok := rec.AttemptFrom(ctx)
		require.True(t, ok)
		assert.Equal(t, n, got)
		end(observe.AttemptEnd{Retry: n == 1, Duration: time.Millisecond})
	}
	atts := rec.Attempts()
	require.Len(t, atts, 2)
	assert.Equal(t, 2, atts[1].Attempt.Number)
	assert.True(t, atts[0].End.Retry)
	assert.False(t, atts[1].End.Retry)

	s := observe.Settled{Backend: "cdn", Outcome: observe.Delivered, At: time.Now()}
	rec.Settled(s)
	assert.Equal(t, []observe.Settled{s}, rec.Settlements())
}

func TestRecorderPanicsWhenAsked(t *testing.T) {
	rec := &observetest.Recorder{Panic: true}
	assert.PanicsWithValue(t, observetest.PanicValue, func() { rec.StartHandoff(t.Context(), observe.Handoff{}) })
	assert.PanicsWithValue(t, observetest.PanicValue, func() { rec.StartAttempt(t.Context(), observe.Attempt{}) })
	assert.PanicsWithValue(t, observetest.PanicValue, func() { rec.Settled(observe.Settled{}) })
	assert.NotPanics(t, func() { rec.Watch(func(context.Context, func(observe.Reading)) {})() }, "components call Watch when built")
	assert.Empty(t, rec.Handoffs())
	assert.Empty(t, rec.Attempts())
	assert.Empty(t, rec.Settlements())
}

func TestRecorderIsSafeForConcurrentUse(t *testing.T) {
	rec := &observetest.Recorder{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			stop := rec.Watch(func(_ context.Context, add func(observe.Reading)) {
				add(observe.Reading{Metric: observe.Handoffs, Outcome: observe.HandedOff, Value: 1})
			})
			_, _, endH := rec.StartHandoff(t.Context(), observe.Handoff{})
			_, endA := rec.StartAttempt(t.Context(), observe.Attempt{Number: 1})
			rec.Figures(t.Context())
			endA(observe.AttemptEnd{})
			endH(observe.HandoffEnd{Outcome: observe.HandedOff})
			rec.Settled(observe.Settled{})
			rec.Handoffs()
			rec.Attempts()
			stop()
		})
	}
	wg.Wait()
	assert.Len(t, rec.Handoffs(), 8)
	assert.Len(t, rec.Attempts(), 8)
	assert.Len(t, rec.Settlements(), 8)
	assert.Zero(t, rec.Sources())
	assert.Equal(t, 8, rec.Stops())
}
