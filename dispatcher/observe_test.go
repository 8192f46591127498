package dispatcher_test

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/observe"
)

// recorder is an Observer that keeps what it is told.
type recorder struct {
	observe.Nop
	mu       sync.Mutex
	sources  map[int]observe.Source
	next     int
	attempts []attemptRecord
	settled  []observe.Settled
	panics   bool
}

type attemptRecord struct {
	a   observe.Attempt
	end *observe.AttemptEnd
}

type attemptKey struct{}

func (r *recorder) Watch(s observe.Source) func() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sources == nil {
		r.sources = make(map[int]observe.Source)
	}
	id := r.next
	r.next++
	r.sources[id] = s
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.sources, id)
	}
}

func (r *recorder) StartAttempt(ctx context.Context, a observe.Attempt) (context.Context, func(observe.AttemptEnd)) {
	if r.panics {
		panic("observer panics")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts = append(r.attempts, attemptRecord{a: a})
	i := len(r.attempts) - 1
	return context.WithValue(ctx, attemptKey{}, a.Number), func(e observe.AttemptEnd) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.attempts[i].end = &e
	}
}

func (r *recorder) Settled(s observe.Settled) {
	if r.panics {
		panic("observer panics")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.settled = append(r.settled, s)
}

func (r *recorder) Attempts() []attemptRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.attempts)
}

// Settled returns what settled, sorted by backend then traceparent.
func (r *recorder) SettledList() []observe.Settled {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.settled)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Backend != out[j].Backend {
			return out[i].Backend < out[j].Backend
		}
		return out[i].Origin.TraceParent < out[j].Origin.TraceParent
	})
	return out
}

// Read calls every watched Source and returns the readings.
func (r *recorder) Read() []observe.Reading {
	r.mu.Lock()
	srcs := make([]observe.Source, 0, len(r.sources))
	for _, s := range r.sources {
		srcs = append(srcs, s)
	}
	r.mu.Unlock()
	var out []observe.Reading
	for _, s := range srcs {
		s(context.Background(), func(x observe.Reading) { out = append(out, x) })
	}
	return out
}

func (r *recorder) Sources() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sources)
}

func value(rs []observe.Reading, m observe.Metric, backend, outcome string) (float64, bool) {
	for _, x := range rs {
		if x.Metric == m && x.Backend == backend && x.Outcome == outcome {
			return x.Value, true
		}
	}
	return 0, false
}

func withOrigin(tp string, at time.Time) context.Context {
	return observe.ContextWithOrigin(context.Background(), observe.Origin{Committed: at, TraceParent: tp})
}

func TestObserverSeesMergedHandoffsInOneCallAndSettlesEach(t *testing.T) {
	obs := &recorder{}
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
		assert.Equal(t, 1, at.a.Number)
		assert.Len(t, at.a.URLs, 2)
		tps := []string{at.a.Origins[0].TraceParent, at.a.Origins[1].TraceParent}
		assert.ElementsMatch(t, []string{"tp-1", "tp-2"}, tps, "the call carries both handoffs")
		require.NotNil(t, at.end)
		assert.NoError(t, at.end.Err)
		assert.False(t, at.end.Retry)
	}
	got := obs.SettledList()
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
	obs := &recorder{}
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

	got := obs.SettledList()
	require.Len(t, got, 2)
	assert.Equal(t, "tp-ok", got[0].Origin.TraceParent)
	assert.Equal(t, observe.Delivered, got[0].Outcome, "its only object was in the delivered batch")
	assert.Equal(t, "tp-split", got[1].Origin.TraceParent)
	assert.Equal(t, observe.Failed, got[1].Outcome, "one of its batches failed for good")
	for _, at := range obs.Attempts() {
		switch at.a.URLs[0] {
		case "https://x.test/ok":
			assert.Len(t, at.a.Origins, 2, "both handoffs hold the URL")
		case "https://x.test/bad":
			require.Len(t, at.a.Origins, 1)
			assert.Equal(t, "tp-split", at.a.Origins[0].TraceParent)
			assert.Equal(t, observe.ClassPermanent, at.end.Class)
		}
	}
}

func TestObserverFollowsRetriesAndPassesItsContextToTheBackend(t *testing.T) {
	obs := &recorder{}
	var seen []any
	var mu sync.Mutex
	be := &fakeBackend{name: "cdn", fn: func(ctx context.Context, _ backends.Request, n int) (backends.Result, error) {
		mu.Lock()
		seen = append(seen, ctx.Value(attemptKey{}))
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
		assert.Equal(t, i+1, atts[i].a.Number)
		assert.Equal(t, want.class, atts[i].end.Class)
		assert.Equal(t, want.retry, atts[i].end.Retry)
		require.Len(t, atts[i].a.Origins, 1)
		assert.False(t, atts[i].a.Origins[0].Committed.IsZero(), "a handoff without an origin counts from Enqueue")
	}
	assert.Equal(t, "p-1", atts[2].end.IDs["purge"])
	retried, _ := value(obs.Read(), observe.Objects, "cdn", observe.Retried)
	assert.Equal(t, 2.0, retried, "one object, retried twice")
	assert.Equal(t, []any{1, 2, 3}, seen, "each call is made with the context StartAttempt returned")
	require.Len(t, obs.SettledList(), 1)
}

func TestObserverSettlesDropsAsDropped(t *testing.T) {
	obs := &recorder{}
	gate := newGate()
	be := &fakeBackend{name: "cdn", fn: gate.fn}
	d := newDispatcher(t, []backends.Backend{be}, dispatcher.WithObserver(obs),
		dispatcher.WithQueueSize(1), dispatcher.WithFullPolicy(dispatcher.Reject), dispatcher.WithLinger(time.Hour))
	require.NoError(t, d.Enqueue(withOrigin("tp-kept", time.Now()), urls("https://x.test/1")))
	err := d.Enqueue(withOrigin("tp-refused", time.Now()), urls("https://x.test/2"))
	require.ErrorIs(t, err, dispatcher.ErrQueueFull)
	gate.Open()
	require.NoError(t, d.Flush(ctxTimeout(t, 5*time.Second)))
	got := obs.SettledList()
	require.Len(t, got, 2)
	assert.Equal(t, observe.Delivered, got[0].Outcome)
	assert.Equal(t, "tp-kept", got[0].Origin.TraceParent)
	assert.Equal(t, observe.Dropped, got[1].Outcome)
	assert.Equal(t, "tp-refused", got[1].Origin.TraceParent)
}

func TestObserverSettlesWhatCloseLeaves(t *testing.T) {
	obs := &recorder{}
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
	got := obs.SettledList()
	require.Len(t, got, 2)
	for _, s := range got {
		assert.Equal(t, observe.Dropped, s.Outcome, s.Origin.TraceParent)
	}
	assert.Equal(t, observe.ClassCanceled, obs.Attempts()[0].end.Class)
	assert.Zero(t, obs.Sources(), "Close removes the dispatcher's Source")
}

func TestObserverReadsEveryBackendsCounters(t *testing.T) {
	obs := &recorder{}
	gate := newGate()
	a := &fakeBackend{name: "a"}
	b := &fakeBackend{name: "b", fn: gate.fn}
	d := newDispatcher(t, []backends.Backend{a, b}, dispatcher.WithObserver(obs), dispatcher.WithLinger(time.Hour))
	require.Equal(t, 1, obs.Sources())
	require.NoError(t, d.Enqueue(context.Background(), urls("https://x.test/1", "https://x.test/2")))
	require.NoError(t, d.Enqueue(context.Background(), urls("https://x.test/2")))
	rs := obs.Read()
	for _, name := range []string{"a", "b"} {
		v, ok := value(rs, observe.QueueDepth, name, "")
		require.True(t, ok, name)
		assert.Equal(t, 3.0, v, "three objects wait in %s's queue", name)
	}
	gate.Open()
	require.NoError(t, d.Flush(ctxTimeout(t, 5*time.Second)))
	rs = obs.Read()
	for _, name := range []string{"a", "b"} {
		v, _ := value(rs, observe.Objects, name, observe.Delivered)
		assert.Equal(t, 2.0, v)
		v, _ = value(rs, observe.Objects, name, "coalesced")
		assert.Equal(t, 1.0, v)
		v, ok := value(rs, observe.QueueDepth, name, "")
		assert.True(t, ok)
		assert.Zero(t, v)
	}
}

func TestObserverSeesTheOriginOfASubmittedRequest(t *testing.T) {
	obs := &recorder{}
	d := newDispatcher(t, []backends.Backend{&fakeBackend{name: "a"}, &fakeBackend{name: "b"}}, dispatcher.WithObserver(obs))
	t0 := time.UnixMilli(time.Now().Add(-time.Minute).UnixMilli())
	tk, err := d.Submit(withOrigin("tp-row", t0), urls("https://x.test/1"), dispatcher.WithBackends("b"))
	require.NoError(t, err)
	<-tk.Done()
	got := obs.SettledList()
	require.Len(t, got, 1, "only the backend it was submitted to")
	assert.Equal(t, "b", got[0].Backend)
	assert.Equal(t, "tp-row", got[0].Origin.TraceParent)
	assert.True(t, got[0].Origin.Committed.Equal(t0))
}

func TestAPanickingObserverNeverStopsDelivery(t *testing.T) {
	obs := &recorder{panics: true}
	be := &fakeBackend{name: "cdn"}
	d := newDispatcher(t, []backends.Backend{be}, dispatcher.WithObserver(obs))
	require.NoError(t, d.Enqueue(context.Background(), urls("https://x.test/1")))
	require.NoError(t, d.Flush(ctxTimeout(t, 5*time.Second)))
	assert.Len(t, be.Delivered(), 1)
}

func TestWithObserverNilIsRefused(t *testing.T) {
	for _, o := range []observe.Observer{nil, (*recorder)(nil)} {
		_, err := dispatcher.New([]backends.Backend{&fakeBackend{name: "cdn"}}, dispatcher.WithObserver(o))
		require.ErrorContains(t, err, "WithObserver(nil)")
	}
}

func TestObserverSettlesAHandoffByItsOwnObjectsInAPartialFailure(t *testing.T) {
	obs := &recorder{}
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
	got := obs.SettledList()
	require.Len(t, got, 2)
	assert.Equal(t, "tp-bad", got[0].Origin.TraceParent)
	assert.Equal(t, observe.Failed, got[0].Outcome)
	assert.Equal(t, "tp-good", got[1].Origin.TraceParent)
	assert.Equal(t, observe.Delivered, got[1].Outcome, "none of its objects failed")
}
