package dispatcher_test

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/observe"
	"github.com/gormpurge/gormpurge/observe/observetest"
)

// settled returns what obs was told settled, sorted by backend then
// traceparent.
func settled(obs *observetest.Recorder) []observe.Settled {
	out := obs.Settlements()
	slices.SortFunc(out, func(a, b observe.Settled) int {
		return cmp.Or(cmp.Compare(a.Backend, b.Backend), cmp.Compare(a.Origin.TraceParent, b.Origin.TraceParent))
	})
	return out
}

func withOrigin(tp string, at time.Time) context.Context {
	return observe.ContextWithOrigin(context.Background(), observe.Origin{Committed: at, TraceParent: tp})
}

func TestObserverSeesMergedHandoffsInOneCallAndSettlesEach(t *testing.T) {
	obs := &observetest.Recorder{}
	gate := newGate()
	a := &fakeBackend{name: "a", fn: gate.fn}
	b := &fakeBackend{name: "b"}
	d := newDispatcher(t, []backends.Backend{a, b}, dispatcher.WithObserver(obs), dispatcher.WithLinger(time.Hour))
	t0 := time.Now().Add(-time.Second)
	require.NoError(t, d.Enqueue(withOrigin("tp-1", t0), urls("https://x.test/1")))
	require.NoError(t, d.Enqueue(withOrigin("tp-2", t0), urls("https://x.test/2", "https://x.test/1")))
	gate.Open()
	require.NoError(t, d.Flush(ctxTimeout(t, 5*time.Second)))

	atts := obs.Attempts()
	require.Len(t, atts, 2, "one call per backend: the linger window merged both handoffs")
	for _, at := range atts {
		assert.Equal(t, 1, at.Attempt.Number)
		assert.Len(t, at.Attempt.URLs, 2)
		tps := []string{at.Attempt.Origins[0].TraceParent, at.Attempt.Origins[1].TraceParent}
		assert.ElementsMatch(t, []string{"tp-1", "tp-2"}, tps, "the call carries both handoffs")
		require.NotNil(t, at.End)
		assert.NoError(t, at.End.Err)
		assert.False(t, at.End.Retry)
	}
	got := settled(obs)
	require.Len(t, got, 4, "each handoff settles once per backend")
	for i, want := range []struct{ backend, tp string }{{"a", "tp-1"}, {"a", "tp-2"}, {"b", "tp-1"}, {"b", "tp-2"}} {
		assert.Equal(t, want.backend, got[i].Backend)
		assert.Equal(t, want.tp, got[i].Origin.TraceParent)
		assert.Equal(t, observe.Delivered, got[i].Outcome)
		assert.True(t, got[i].Origin.Committed.Equal(t0))
		assert.GreaterOrEqual(t, got[i].At.Sub(t0), time.Second, "the latency counts from the commit")
	}
}

func TestObserverSettlesAHandoffWhenItsLastBatchEnds(t *testing.T) {
	obs := &observetest.Recorder{}
	bad := errors.New("refused")
	be := &fakeBackend{name: "cdn", limits: backends.Limits{MaxObjects: 1},
		fn: func(_ context.Context, r backends.Request, _ int) (backends.Result, error) {
			if r.URLs[0] == "https://x.test/bad" {
				return backends.Result{}, backends.Permanent(bad)
			}
			return backends.Result{}, nil
		}}
	d := newDispatcher(t, []backends.Backend{be}, dispatcher.WithObserver(obs), dispatcher.WithLinger(time.Hour))
	require.NoError(t, d.Enqueue(withOrigin("tp-split", time.Now()), urls("https://x.test/ok", "https://x.test/bad")))
	require.NoError(t, d.Enqueue(withOrigin("tp-ok", time.Now()), urls("https://x.test/ok")))
	require.NoError(t, d.Flush(ctxTimeout(t, 5*time.Second)))

	got := settled(obs)
	require.Len(t, got, 2)
	assert.Equal(t, "tp-ok", got[0].Origin.TraceParent)
	assert.Equal(t, observe.Delivered, got[0].Outcome, "its only object was in the delivered batch")
	assert.Equal(t, "tp-split", got[1].Origin.TraceParent)
	assert.Equal(t, observe.Failed, got[1].Outcome, "one of its batches failed for good")
	for _, at := range obs.Attempts() {
		switch at.Attempt.URLs[0] {
		case "https://x.test/ok":
			assert.Len(t, at.Attempt.Origins, 2, "both handoffs hold the URL")
		case "https://x.test/bad":
			require.Len(t, at.Attempt.Origins, 1)
			assert.Equal(t, "tp-split", at.Attempt.Origins[0].TraceParent)
			assert.Equal(t, observe.ClassPermanent, at.End.Class)
		}
	}
}

func TestObserverFollowsRetriesAndPassesItsContextToTheBackend(t *testing.T) {
	obs := &observetest.Recorder{}
	var seen []int
	var mu sync.Mutex
	be := &fakeBackend{name: "cdn", fn: func(ctx context.Context, _ backends.Request, n int) (backends.Result, error) {
		mu.Lock()
		number, _ := obs.AttemptFrom(ctx)
		seen = append(seen, number)
		mu.Unlock()
		switch n {
		case 0:
			return backends.Result{}, errors.New("flaky")
		case 1:
			return backends.Result{}, backends.RetryAfter(time.Millisecond, errors.New("slow down"))
		}
		return backends.Result{IDs: map[string]string{"purge": "p-1"}}, nil
	}}
	d := newDispatcher(t, []backends.Backend{be}, dispatcher.WithObserver(obs))
	require.NoError(t, d.Enqueue(context.Background(), urls("https://x.test/1")))
	require.NoError(t, d.Flush(ctxTimeout(t, 5*time.Second)))

	atts := obs.Attempts()
	require.Len(t, atts, 3)
	for i, want := range []struct {
		class string
		retry bool
	}{{observe.ClassTransient, true}, {observe.ClassRateLimited, true}, {"", false}} {
		assert.Equal(t, i+1, atts[i].Attempt.Number)
		assert.Equal(t, want.class, atts[i].End.Class)
		assert.Equal(t, want.retry, atts[i].End.Retry)
		require.Len(t, atts[i].Attempt.Origins, 1)
		assert.False(t, atts[i].Attempt.Origins[0].Committed.IsZero(), "a handoff without an origin counts from Enqueue")
	}
	assert.Equal(t, "p-1", atts[2].End.IDs["purge"])
	retried, _ := obs.Value(observe.Objects, "cdn", observe.Retried)
	assert.Equal(t, 2.0, retried, "one object, retried twice")
	assert.Equal(t, []int{1, 2, 3}, seen, "each call is made with the context StartAttempt returned")
	require.Len(t, settled(obs), 1)
}

func TestObserverSettlesDropsAsDropped(t *testing.T) {
	obs := &observetest.Recorder{}
	gate := newGate()
	be := &fakeBackend{name: "cdn", fn: gate.fn}
	d := newDispatcher(t, []backends.Backend{be}, dispatcher.WithObserver(obs),
		dispatcher.WithQueueSize(1), dispatcher.WithFullPolicy(dispatcher.Reject), dispatcher.WithLinger(time.Hour))
	require.NoError(t, d.Enqueue(withOrigin("tp-kept", time.Now()), urls("https://x.test/1")))
	err := d.Enqueue(withOrigin("tp-refused", time.Now()), urls("https://x.test/2"))
	require.ErrorIs(t, err, dispatcher.ErrQueueFull)
	gate.Open()
	require.NoError(t, d.Flush(ctxTimeout(t, 5*time.Second)))
	got := settled(obs)
	require.Len(t, got, 2)
	assert.Equal(t, observe.Delivered, got[0].Outcome)
	assert.Equal(t, "tp-kept", got[0].Origin.TraceParent)
	assert.Equal(t, observe.Dropped, got[1].Outcome)
	assert.Equal(t, "tp-refused", got[1].Origin.TraceParent)
}

func TestObserverSettlesWhatCloseLeaves(t *testing.T) {
	obs := &observetest.Recorder{}
	be := &fakeBackend{name: "cdn", fn: func(ctx context.Context, _ backends.Request, _ int) (backends.Result, error) {
		<-ctx.Done()
		return backends.Result{}, ctx.Err()
	}}
	d := mustNew(t, []backends.Backend{be}, dispatcher.WithObserver(obs), dispatcher.WithLogger(quiet), dispatcher.WithLinger(0))
	require.NoError(t, d.Enqueue(withOrigin("tp-stuck", time.Now()), urls("https://x.test/1")))
	require.Eventually(t, func() bool { return len(obs.Attempts()) == 1 }, 5*time.Second, time.Millisecond)
	require.NoError(t, d.Enqueue(withOrigin("tp-queued", time.Now()), urls("https://x.test/2")))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var undelivered *dispatcher.UndeliveredError
	require.ErrorAs(t, d.Close(ctx), &undelivered)
	got := settled(obs)
	require.Len(t, got, 2)
	for _, s := range got {
		assert.Equal(t, observe.Dropped, s.Outcome, s.Origin.TraceParent)
	}
	assert.Equal(t, observe.ClassCanceled, obs.Attempts()[0].End.Class)
	assert.Zero(t, obs.Sources(), "Close removes the dispatcher's Source")
}

func TestObserverReadsEveryBackendsCounters(t *testing.T) {
	obs := &observetest.Recorder{}
	gate := newGate()
	a := &fakeBackend{name: "a"}
	b := &fakeBackend{name: "b", fn: gate.fn}
	d := newDispatcher(t, []backends.Backend{a, b}, dispatcher.WithObserver(obs), dispatcher.WithLinger(time.Hour))
	require.Equal(t, 1, obs.Sources())
	require.NoError(t, d.Enqueue(context.Background(), urls("https://x.test/1", "https://x.test/2")))
	require.NoError(t, d.Enqueue(context.Background(), urls("https://x.test/2")))
	for _, name := range []string{"a", "b"} {
		v, ok := obs.Value(observe.QueueDepth, name, "")
		require.True(t, ok, name)
		assert.Equal(t, 3.0, v, "three objects wait in %s's queue", name)
	}
	gate.Open()
	require.NoError(t, d.Flush(ctxTimeout(t, 5*time.Second)))
	for _, name := range []string{"a", "b"} {
		v, _ := obs.Value(observe.Objects, name, observe.Delivered)
		assert.Equal(t, 2.0, v)
		v, _ = obs.Value(observe.Objects, name, "coalesced")
		assert.Equal(t, 1.0, v)
		v, ok := obs.Value(observe.QueueDepth, name, "")
		assert.True(t, ok)
		assert.Zero(t, v)
	}
}

func TestObserverSeesTheOriginOfASubmittedRequest(t *testing.T) {
	obs := &observetest.Recorder{}
	d := newDispatcher(t, []backends.Backend{&fakeBackend{name: "a"}, &fakeBackend{name: "b"}}, dispatcher.WithObserver(obs))
	t0 := time.UnixMilli(time.Now().Add(-time.Minute).UnixMilli())
	tk, err := d.Submit(withOrigin("tp-row", t0), urls("https://x.test/1"), dispatcher.WithBackends("b"))
	require.NoError(t, err)
	<-tk.Done()
	got := settled(obs)
	require.Len(t, got, 1, "only the backend it was submitted to")
	assert.Equal(t, "b", got[0].Backend)
	assert.Equal(t, "tp-row", got[0].Origin.TraceParent)
	assert.True(t, got[0].Origin.Committed.Equal(t0))
}

func TestAPanickingObserverNeverStopsDelivery(t *testing.T) {
	obs := &observetest.Recorder{Panic: true}
	be := &fakeBackend{name: "cdn"}
	d := newDispatcher(t, []backends.Backend{be}, dispatcher.WithObserver(obs))
	require.NoError(t, d.Enqueue(context.Background(), urls("https://x.test/1")))
	require.NoError(t, d.Flush(ctxTimeout(t, 5*time.Second)))
	assert.Len(t, be.Delivered(), 1)
}

func TestWithObserverNilIsRefused(t *testing.T) {
	for _, o := range []observe.Observer{nil, (*observetest.Recorder)(nil)} {
		_, err := dispatcher.New([]backends.Backend{&fakeBackend{name: "cdn"}}, dispatcher.WithObserver(o))
		require.ErrorContains(t, err, "WithObserver(nil)")
	}
}

func TestObserverSettlesAHandoffByItsOwnObjectsInAPartialFailure(t *testing.T) {
	obs := &observetest.Recorder{}
	gate := newGate()
	be := &fakeBackend{name: "cdn", fn: func(ctx context.Context, r backends.Request, n int) (backends.Result, error) {
		if _, err := gate.fn(ctx, r, n); err != nil {
			return backends.Result{}, err
		}
		return backends.Result{}, backends.Permanent(backends.Partial(backends.NewRequest([]string{"https://x.test/bad"}, nil), errors.New("refused one")))
	}}
	d := newDispatcher(t, []backends.Backend{be}, dispatcher.WithObserver(obs), dispatcher.WithLinger(time.Hour))
	require.NoError(t, d.Enqueue(withOrigin("tp-good", time.Now()), urls("https://x.test/good")))
	require.NoError(t, d.Enqueue(withOrigin("tp-bad", time.Now()), urls("https://x.test/bad")))
	gate.Open()
	require.NoError(t, d.Flush(ctxTimeout(t, 5*time.Second)))
	require.Len(t, obs.Attempts(), 1, "both in one batch")
	got := settled(obs)
	require.Len(t, got, 2)
	assert.Equal(t, "tp-bad", got[0].Origin.TraceParent)
	assert.Equal(t, observe.Failed, got[0].Outcome)
	assert.Equal(t, "tp-good", got[1].Origin.TraceParent)
	assert.Equal(t, observe.Delivered, got[1].Outcome, "none of its objects failed")
}
