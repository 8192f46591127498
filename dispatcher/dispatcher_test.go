package dispatcher_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/purgetest"
)

func TestEnqueueDeliversToEveryBackend(t *testing.T) {
	t.Parallel()
	a, b := &fakeBackend{name: "a"}, &fakeBackend{name: "b"}
	d := newDispatcher(t, []backends.Backend{a, b})

	require.NoError(t, d.Enqueue(t.Context(), backends.NewRequest([]string{"/x"}, []string{"post-1"})))
	require.NoError(t, d.Flush(t.Context()))

	want := backends.NewRequest([]string{"/x"}, []string{"post-1"})
	assert.Equal(t, want, a.Union())
	assert.Equal(t, want, b.Union())
	for _, s := range d.Stats().Backends {
		assert.Equal(t, uint64(2), s.Delivered, s.Backend)
		assert.Zero(t, s.Queued, s.Backend)
		assert.Zero(t, s.InFlight, s.Backend)
	}
}

func TestEnqueueIgnoresEmptyRequest(t *testing.T) {
	t.Parallel()
	a := &fakeBackend{name: "a"}
	d := newDispatcher(t, []backends.Backend{a})

	require.NoError(t, d.Enqueue(t.Context(), backends.Request{}))
	require.NoError(t, d.Flush(t.Context()))
	assert.Empty(t, a.Attempts())
}

func TestCoalescingMergesAndDeduplicatesWithinLinger(t *testing.T) {
	t.Parallel()
	a := &fakeBackend{name: "a"}
	// A linger far longer than the test: only Flush ends the window, so the
	// three requests are certain to share it.
	d := newDispatcher(t, []backends.Backend{a}, dispatcher.WithLinger(time.Hour))

	for _, r := range []backends.Request{
		backends.NewRequest([]string{"/a", "/b"}, []string{"t1"}),
		backends.NewRequest([]string{"/b", "/c"}, []string{"t1"}),
		backends.NewRequest([]string{"/a"}, []string{"t2"}),
	} {
		require.NoError(t, d.Enqueue(t.Context(), r))
	}
	require.NoError(t, d.Flush(t.Context()))

	require.Len(t, a.Delivered(), 1, "one call for the whole window")
	assert.Equal(t, backends.NewRequest([]string{"/a", "/b", "/c"}, []string{"t1", "t2"}), a.Delivered()[0])
	s, _ := d.Stats().Backend("a")
	assert.Equal(t, uint64(8), s.Enqueued)
	assert.Equal(t, uint64(3), s.Coalesced)
	assert.Equal(t, uint64(5), s.Delivered)
}

func TestLingerWindowEndsByItself(t *testing.T) {
	t.Parallel()
	a := &fakeBackend{name: "a"}
	d := newDispatcher(t, []backends.Backend{a}, dispatcher.WithLinger(5*time.Millisecond))

	require.NoError(t, d.Enqueue(t.Context(), urls("/a")))
	require.Eventually(t, func() bool { return len(a.Delivered()) == 1 }, 5*time.Second, time.Millisecond)
}

func TestLingerEndsWhenBatchIsFull(t *testing.T) {
	t.Parallel()
	a := &fakeBackend{name: "a", limits: backends.Limits{MaxObjects: 2}}
	d := newDispatcher(t, []backends.Backend{a}, dispatcher.WithLinger(time.Hour))

	require.NoError(t, d.Enqueue(t.Context(), urls("/a", "/b")))
	require.Eventually(t, func() bool { return len(a.Delivered()) == 1 }, 5*time.Second, time.Millisecond,
		"a full batch goes without waiting for the window")
}

// jsonSize counts a request as Akamai does: the JSON body of the call.
func jsonSize(r backends.Request) int {
	b, _ := json.Marshal(map[string][]string{"objects": append(append([]string{}, r.URLs...), r.Tags...)})
	return len(b)
}

func TestBatchesRespectBackendLimits(t *testing.T) {
	t.Parallel()
	many := make([]string, 1000)
	for i := range many {
		many[i] = fmt.Sprintf("https://www.example.com/articles/%04d", i)
	}
	tests := []struct {
		name    string
		limits  backends.Limits
		req     backends.Request
		batches int // expected number of calls
	}{
		{"no limits", backends.Limits{}, urls(many...), 1},
		{"max objects", backends.Limits{MaxObjects: 300}, urls(many...), 4},
		{"max bytes default size", backends.Limits{MaxBytes: 4000}, urls(many...), 10},
		{"akamai-style json size", backends.Limits{MaxBytes: 5000, Size: jsonSize}, urls(many...), 9},
		{"objects and bytes", backends.Limits{MaxObjects: 50, MaxBytes: 1000}, urls(many[:200]...), 8},
		{"urls and tags", backends.Limits{MaxObjects: 2}, backends.NewRequest([]string{"/a", "/b", "/c"}, []string{"t1", "t2"}), 3},
		{"per kind", backends.Limits{MaxURLs: 400, MaxTags: 3}, backends.NewRequest(many, []string{"t1", "t2", "t3", "t4"}), 4},
		{"one kind", backends.Limits{OneKind: true}, backends.NewRequest([]string{"/a", "/b", "/c"}, []string{"t1", "t2"}), 2},
		{"one kind, per kind and bytes", backends.Limits{OneKind: true, MaxURLs: 600, MaxTags: 1, MaxBytes: 5000, Size: jsonSize},
			backends.NewRequest(many, []string{"t1", "t2"}), 9 + 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := &fakeBackend{name: "a", limits: tt.limits}
			d := newDispatcher(t, []backends.Backend{a})
			require.NoError(t, d.Enqueue(t.Context(), tt.req))
			require.NoError(t, d.Flush(t.Context()))

			got := a.Delivered()
			assert.Equal(t, tt.batches, len(got), "calls")
			for _, r := range got {
				assert.True(t, tt.limits.Fits(r), "batch of %d objects, %d bytes, breaks %+v", r.Len(), tt.limits.SizeOf(r), tt.limits)
			}
			if u := a.Union(); !assert.ObjectsAreEqual(tt.req, u) {
				t.Errorf("delivered %d objects, want exactly the %d asked for", u.Len(), tt.req.Len())
			}
		})
	}
}

func TestObjectTooLargeFailsAloneAndOthersAreDelivered(t *testing.T) {
	t.Parallel()
	var got collector
	huge := "/" + strings.Repeat("x", 200)
	a := &fakeBackend{name: "a", limits: backends.Limits{MaxBytes: 100}}
	d := newDispatcher(t, []backends.Backend{a}, dispatcher.WithOnResult(got.add))

	require.NoError(t, d.Enqueue(t.Context(), urls("/a", huge, "/b")))
	require.NoError(t, d.Flush(t.Context()))

	assert.Equal(t, urls("/a", "/b"), a.Union())
	failed := got.outcomes(dispatcher.Failed)
	require.Len(t, failed, 1)
	assert.Equal(t, urls(huge), failed[0].Request)
	assert.Zero(t, failed[0].Attempts, "never sent")
	assert.True(t, backends.IsPermanent(failed[0].Err))
	assert.ErrorContains(t, failed[0].Err, "MaxBytes")
}

func TestSlowBackendDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	g := newGate()
	defer g.Open()
	slow := &fakeBackend{name: "slow", fn: g.fn}
	fast := &fakeBackend{name: "fast"}
	d := newDispatcher(t, []backends.Backend{slow, fast},
		dispatcher.WithWorkers(1), dispatcher.WithQueueSize(1))

	// Fill the slow backend: one call stuck in Purge, one batch waiting for
	// the worker, one request in the queue.
	require.NoError(t, d.Enqueue(t.Context(), urls("/1")))
	<-g.entered
	require.NoError(t, d.Enqueue(t.Context(), urls("/2")))
	require.Eventually(t, func() bool {
		s, _ := d.Stats().Backend("slow")
		return s.InFlight == 2 && s.Queued == 0
	}, 5*time.Second, time.Millisecond)
	require.NoError(t, d.Enqueue(t.Context(), urls("/3")))

	// The slow queue is full: under Block, Enqueue gives up on it when its
	// context ends, but the fast backend has the request already.
	err := d.Enqueue(ctxTimeout(t, 20*time.Millisecond), urls("/4"))
	require.ErrorIs(t, err, dispatcher.ErrQueueFull)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorContains(t, err, `"slow"`)

	require.Eventually(t, func() bool {
		return fast.Union().Len() == 4
	}, 5*time.Second, time.Millisecond, "fast backend got every request while slow was stuck")
	assert.Equal(t, urls("/1", "/2", "/3", "/4"), fast.Union())

	g.Open()
	require.NoError(t, d.Flush(t.Context()))
	assert.Equal(t, urls("/1", "/2", "/3"), slow.Union())
	s, _ := d.Stats().Backend("slow")
	assert.Equal(t, uint64(1), s.Dropped)
}

func TestRetriesTemporaryFailures(t *testing.T) {
	t.Parallel()
	var got collector
	a := &fakeBackend{name: "a", fn: func(_ context.Context, _ backends.Request, n int) (backends.Result, error) {
		if n < 2 {
			return backends.Result{}, errors.New("503 service unavailable")
		}
		return backends.Result{IDs: map[string]string{"purgeId": "p-1"}}, nil
	}}
	d := newDispatcher(t, []backends.Backend{a}, dispatcher.WithOnResult(got.add))

	require.NoError(t, d.Enqueue(t.Context(), urls("/a")))
	require.NoError(t, d.Flush(t.Context()))

	reps := got.all()
	require.Len(t, reps, 1)
	assert.Equal(t, dispatcher.Delivered, reps[0].Outcome)
	assert.Equal(t, 3, reps[0].Attempts)
	assert.NoError(t, reps[0].Err)
	assert.Equal(t, "p-1", reps[0].Result.IDs["purgeId"])
	assert.Equal(t, "a", reps[0].Result.Backend, "filled in when the backend leaves it empty")
	s, _ := d.Stats().Backend("a")
	assert.Equal(t, uint64(2), s.Retried)
	assert.Equal(t, uint64(1), s.Delivered)
}

func TestFailuresThatAreNotRetried(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	tests := []struct {
		name     string
		err      error
		opts     []dispatcher.Option
		attempts int
	}{
		{"permanent", backends.Permanent(boom), nil, 1},
		{"max attempts", boom, []dispatcher.Option{dispatcher.WithMaxAttempts(4)}, 4},
		{"retries disabled", boom, []dispatcher.Option{dispatcher.WithMaxAttempts(1)}, 1},
		{"max elapsed", boom, []dispatcher.Option{
			dispatcher.WithBackoff(time.Hour, time.Hour), dispatcher.WithMaxElapsed(time.Minute),
		}, 1},
		{"retry after beyond max elapsed", backends.RetryAfter(time.Hour, boom), []dispatcher.Option{
			dispatcher.WithMaxElapsed(time.Minute),
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got collector
			a := &fakeBackend{name: "a", fn: func(context.Context, backends.Request, int) (backends.Result, error) {
				return backends.Result{Detail: "refused"}, tt.err
			}}
			d := newDispatcher(t, []backends.Backend{a}, append(tt.opts, dispatcher.WithOnResult(got.add))...)

			require.NoError(t, d.Enqueue(t.Context(), urls("/a", "/b")))
			require.NoError(t, d.Flush(t.Context()))

			reps := got.all()
			require.Len(t, reps, 1)
			assert.Equal(t, dispatcher.Failed, reps[0].Outcome)
			assert.Equal(t, tt.attempts, reps[0].Attempts)
			assert.ErrorIs(t, reps[0].Err, boom)
			assert.Equal(t, "refused", reps[0].Result.Detail)
			s, _ := d.Stats().Backend("a")
			assert.Equal(t, uint64(2), s.Failed)
			assert.Equal(t, uint64(tt.attempts-1), s.Retried)
		})
	}
}

func TestRetryAfterReplacesBackoff(t *testing.T) {
	t.Parallel()
	const after = 30 * time.Millisecond
	var calls []time.Time
	a := &fakeBackend{name: "a", fn: func(_ context.Context, _ backends.Request, n int) (backends.Result, error) {
		calls = append(calls, time.Now()) // calls for one batch are sequential
		if n == 0 {
			return backends.Result{}, backends.RetryAfter(after, errors.New("429 too many requests"))
		}
		return backends.Result{}, nil
	}}
	// With an hour of backoff, only the backend's own delay lets the retry
	// happen within the test.
	d := newDispatcher(t, []backends.Backend{a}, dispatcher.WithBackoff(time.Hour, time.Hour))

	require.NoError(t, d.Enqueue(t.Context(), urls("/a")))
	require.NoError(t, d.Flush(ctxTimeout(t, 10*time.Second)))

	require.Len(t, calls, 2)
	assert.GreaterOrEqual(t, calls[1].Sub(calls[0]), after)
}

func TestPanickingBackendFailsTheBatch(t *testing.T) {
	t.Parallel()
	var got collector
	a := &fakeBackend{name: "a", fn: func(context.Context, backends.Request, int) (backends.Result, error) {
		panic("nil map")
	}}
	d := newDispatcher(t, []backends.Backend{a}, dispatcher.WithOnResult(got.add))

	require.NoError(t, d.Enqueue(t.Context(), urls("/a")))
	require.NoError(t, d.Flush(t.Context()))
	reps := got.outcomes(dispatcher.Failed)
	require.Len(t, reps, 1)
	assert.ErrorContains(t, reps[0].Err, "panicked: nil map")
	assert.Equal(t, 1, reps[0].Attempts)
}

func TestAttemptTimeout(t *testing.T) {
	t.Parallel()
	a := &fakeBackend{name: "a", fn: func(ctx context.Context, _ backends.Request, n int) (backends.Result, error) {
		if n == 0 {
			<-ctx.Done() // hangs until the dispatcher's deadline
			return backends.Result{}, ctx.Err()
		}
		return backends.Result{}, nil
	}}
	d := newDispatcher(t, []backends.Backend{a}, dispatcher.WithAttemptTimeout(10*time.Millisecond))

	require.NoError(t, d.Enqueue(t.Context(), urls("/a")))
	require.NoError(t, d.Flush(t.Context()))
	assert.Len(t, a.Attempts(), 2, "the hung call timed out and was retried")
	assert.Equal(t, urls("/a"), a.Union())
}

// fullQueue returns a dispatcher whose only backend has one call stuck in
// Purge, one batch waiting for its single worker and a full queue holding
// /2 and /3 (queue size 2).
func fullQueue(t *testing.T, policy dispatcher.FullPolicy, got *collector) (*dispatcher.Dispatcher, *fakeBackend, *gate) {
	t.Helper()
	g := newGate()
	t.Cleanup(g.Open)
	a := &fakeBackend{name: "a", fn: g.fn}
	d := newDispatcher(t, []backends.Backend{a},
		dispatcher.WithWorkers(1), dispatcher.WithQueueSize(2), dispatcher.WithFullPolicy(policy),
		dispatcher.WithOnResult(got.add))
	require.NoError(t, d.Enqueue(t.Context(), urls("/0")))
	<-g.entered
	require.NoError(t, d.Enqueue(t.Context(), urls("/1")))
	require.Eventually(t, func() bool {
		s, _ := d.Stats().Backend("a")
		return s.InFlight == 2 && s.Queued == 0
	}, 5*time.Second, time.Millisecond)
	require.NoError(t, d.Enqueue(t.Context(), urls("/2")))
	require.NoError(t, d.Enqueue(t.Context(), urls("/3")))
	return d, a, g
}

func TestFullQueuePolicies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		policy    dispatcher.FullPolicy
		ctx       func(t *testing.T) context.Context
		wantErr   bool
		delivered backends.Request
		dropped   backends.Request
	}{
		{
			policy:    dispatcher.Block,
			ctx:       func(t *testing.T) context.Context { return ctxTimeout(t, 10*time.Millisecond) },
			wantErr:   true,
			delivered: urls("/0", "/1", "/2", "/3"),
			dropped:   urls("/4"),
		},
		{
			policy:    dispatcher.Reject,
			ctx:       func(t *testing.T) context.Context { return t.Context() },
			wantErr:   true,
			delivered: urls("/0", "/1", "/2", "/3"),
			dropped:   urls("/4"),
		},
		{
			policy:    dispatcher.DropOldest,
			ctx:       func(t *testing.T) context.Context { return t.Context() },
			delivered: urls("/0", "/1", "/3", "/4"),
			dropped:   urls("/2"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			t.Parallel()
			var got collector
			d, a, g := fullQueue(t, tt.policy, &got)

			err := d.Enqueue(tt.ctx(t), urls("/4"))
			if tt.wantErr {
				require.ErrorIs(t, err, dispatcher.ErrQueueFull)
			} else {
				require.NoError(t, err)
			}
			g.Open()
			require.NoError(t, d.Flush(t.Context()))

			assert.Equal(t, tt.delivered, a.Union())
			drops := got.outcomes(dispatcher.Dropped)
			require.Len(t, drops, 1, "every drop is reported")
			assert.Equal(t, tt.dropped, drops[0].Request)
			assert.ErrorIs(t, drops[0].Err, dispatcher.ErrQueueFull)
			s, _ := d.Stats().Backend("a")
			assert.Equal(t, uint64(1), s.Dropped)
		})
	}
}

func TestBlockedEnqueueProceedsWhenRoomFrees(t *testing.T) {
	t.Parallel()
	var got collector
	d, a, g := fullQueue(t, dispatcher.Block, &got)

	done := make(chan error, 1)
	go func() { done <- d.Enqueue(context.Background(), urls("/4")) }()
	select {
	case err := <-done:
		t.Fatalf("Enqueue returned %v on a full queue", err)
	default:
	}
	g.Open()
	require.NoError(t, <-done)
	require.NoError(t, d.Flush(t.Context()))
	assert.Equal(t, urls("/0", "/1", "/2", "/3", "/4"), a.Union())
	assert.Empty(t, got.outcomes(dispatcher.Dropped))
}

func TestBlockedEnqueueReturnsErrClosedWhenCloseBegins(t *testing.T) {
	t.Parallel()
	var got collector
	d, _, g := fullQueue(t, dispatcher.Block, &got)

	done := make(chan error, 1)
	go func() { done <- d.Enqueue(context.Background(), urls("/4")) }()
	closed := make(chan error, 1)
	go func() { closed <- d.Close(context.Background()) }()
	require.ErrorIs(t, <-done, dispatcher.ErrClosed)
	g.Open()
	require.NoError(t, <-closed)
}

func TestFlushWaitsForRetries(t *testing.T) {
	t.Parallel()
	a := &fakeBackend{name: "a", fn: func(_ context.Context, _ backends.Request, n int) (backends.Result, error) {
		if n == 0 {
			return backends.Result{}, errors.New("timeout")
		}
		return backends.Result{}, nil
	}}
	d := newDispatcher(t, []backends.Backend{a}, dispatcher.WithBackoff(20*time.Millisecond, 20*time.Millisecond))

	require.NoError(t, d.Enqueue(t.Context(), urls("/a")))
	require.NoError(t, d.Flush(t.Context()))
	assert.Equal(t, urls("/a"), a.Union(), "delivered by the time Flush returns")
}

func TestFlushReturnsWhenContextEnds(t *testing.T) {
	t.Parallel()
	g := newGate()
	defer g.Open()
	a := &fakeBackend{name: "stuck", fn: g.fn}
	b := &fakeBackend{name: "fine"}
	d := newDispatcher(t, []backends.Backend{a, b})

	require.NoError(t, d.Enqueue(t.Context(), urls("/a")))
	err := d.Flush(ctxTimeout(t, 10*time.Millisecond))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorContains(t, err, "stuck")
	assert.NotContains(t, err.Error(), "fine")
}

func TestCloseDrainsEverything(t *testing.T) {
	t.Parallel()
	a := &fakeBackend{name: "a", limits: backends.Limits{MaxObjects: 7}}
	d := mustNew(t, []backends.Backend{a}, dispatcher.WithLogger(quiet), dispatcher.WithLinger(time.Hour))

	want := make([]string, 100)
	for i := range want {
		want[i] = fmt.Sprintf("/p/%03d", i)
		require.NoError(t, d.Enqueue(t.Context(), urls(want[i])))
	}
	require.NoError(t, d.Close(t.Context()))
	assert.Equal(t, urls(want...), a.Union())

	assert.ErrorIs(t, d.Enqueue(t.Context(), urls("/late")), dispatcher.ErrClosed)
	assert.ErrorIs(t, d.Flush(t.Context()), dispatcher.ErrClosed)
	assert.NoError(t, d.Close(t.Context()), "second Close")
}

func TestCloseWithDeadlineReportsWhatWasLeft(t *testing.T) {
	t.Parallel()
	var got collector
	g := newGate() // never opened: the backend honours cancellation only
	stuck := &fakeBackend{name: "stuck", fn: g.fn}
	fine := &fakeBackend{name: "fine"}
	d := mustNew(t, []backends.Backend{stuck, fine},
		dispatcher.WithLogger(quiet), dispatcher.WithLinger(0), dispatcher.WithWorkers(1),
		dispatcher.WithOnResult(got.add))

	require.NoError(t, d.Enqueue(t.Context(), urls("/1")))
	<-g.entered
	require.NoError(t, d.Enqueue(t.Context(), urls("/2")))
	require.NoError(t, d.Enqueue(t.Context(), urls("/3")))
	require.Eventually(t, func() bool { return fine.Union().Len() == 3 }, 5*time.Second, time.Millisecond)

	err := d.Close(ctxTimeout(t, 20*time.Millisecond))
	var ue *dispatcher.UndeliveredError
	require.ErrorAs(t, err, &ue)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, map[string]backends.Request{"stuck": urls("/1", "/2", "/3")}, ue.Requests)
	assert.Contains(t, err.Error(), "stuck: 3")

	s, _ := d.Stats().Backend("stuck")
	assert.Equal(t, uint64(3), s.Dropped)
	assert.Zero(t, s.InFlight)
	assert.Zero(t, s.Queued)
	drops := got.outcomes(dispatcher.Dropped)
	require.Len(t, drops, 1)
	assert.ErrorIs(t, drops[0].Err, dispatcher.ErrClosed)
	assert.NoError(t, d.Close(t.Context()), "second Close")
	// goleak in TestMain checks that every goroutine stopped.
}

// Close with a context that is already done still closes: it cancels what
// is in flight and reports it, every time (the lock is free, so it must not
// lose a random choice against the done context).
func TestCloseWithAContextAlreadyDone(t *testing.T) {
	t.Parallel()
	for range 50 {
		g := newGate() // never opened
		stuck := &fakeBackend{name: "stuck", fn: g.fn}
		d := mustNew(t, []backends.Backend{stuck}, dispatcher.WithLogger(quiet), dispatcher.WithLinger(0))
		tk, err := d.Submit(t.Context(), urls("/1"))
		require.NoError(t, err)
		<-g.entered
		done, cancel := context.WithCancel(context.Background())
		cancel()
		var ue *dispatcher.UndeliveredError
		require.ErrorAs(t, d.Close(done), &ue, "Close closed")
		select {
		case <-tk.Done():
		default:
			require.Fail(t, "the ticket of the cancelled request is not settled")
		}
	}
	// goleak in TestMain checks that every goroutine stopped.
}

func TestCloseCancelsRetryWait(t *testing.T) {
	t.Parallel()
	a := &fakeBackend{name: "a", fn: func(context.Context, backends.Request, int) (backends.Result, error) {
		return backends.Result{}, errors.New("down")
	}}
	d := mustNew(t, []backends.Backend{a}, dispatcher.WithLogger(quiet), dispatcher.WithLinger(0),
		dispatcher.WithBackoff(time.Hour, time.Hour), dispatcher.WithMaxElapsed(0))

	require.NoError(t, d.Enqueue(t.Context(), urls("/a")))
	require.Eventually(t, func() bool { return len(a.Attempts()) == 1 }, 5*time.Second, time.Millisecond)
	var ue *dispatcher.UndeliveredError
	require.ErrorAs(t, d.Close(ctxTimeout(t, 10*time.Millisecond)), &ue)
	assert.Equal(t, urls("/a"), ue.Requests["a"])
}

func TestConcurrentClose(t *testing.T) {
	t.Parallel()
	a := &fakeBackend{name: "a"}
	d := mustNew(t, []backends.Backend{a}, dispatcher.WithLogger(quiet))
	require.NoError(t, d.Enqueue(t.Context(), urls("/a")))
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- d.Close(context.Background()) }()
	}
	for range 3 {
		assert.NoError(t, <-errs)
	}
	assert.Equal(t, urls("/a"), a.Union())
}

func TestZeroDispatcher(t *testing.T) {
	t.Parallel()
	var d dispatcher.Dispatcher
	assert.ErrorIs(t, d.Enqueue(t.Context(), urls("/a")), dispatcher.ErrClosed)
	assert.ErrorIs(t, d.Flush(t.Context()), dispatcher.ErrClosed)
	assert.NoError(t, d.Close(t.Context()))
	assert.Empty(t, d.Stats().Backends)
}

func TestRateLimits(t *testing.T) {
	t.Parallel()
	t.Run("objects per second caps the batch", func(t *testing.T) {
		t.Parallel()
		a := &fakeBackend{name: "a", limits: backends.Limits{MaxObjects: 100}}
		d := newDispatcher(t, []backends.Backend{a}, dispatcher.WithRateLimit("a", 0, 1000))
		many := make([]string, 2500)
		for i := range many {
			many[i] = fmt.Sprintf("/%d", i)
		}
		require.NoError(t, d.Enqueue(t.Context(), urls(many...)))
		require.NoError(t, d.Flush(t.Context()))
		for _, r := range a.Delivered() {
			assert.LessOrEqual(t, r.Len(), 100, "the backend's own limit is smaller than the burst")
		}
		assert.Equal(t, 2500, a.Union().Len())
	})
	t.Run("requests per second spaces calls", func(t *testing.T) {
		t.Parallel()
		a := &fakeBackend{name: "a", limits: backends.Limits{MaxObjects: 1}}
		b := &fakeBackend{name: "b", limits: backends.Limits{MaxObjects: 1}}
		d := newDispatcher(t, []backends.Backend{a, b}, dispatcher.WithRateLimit("a", 50, 0), dispatcher.WithWorkers(4))
		start := time.Now()
		require.NoError(t, d.Enqueue(t.Context(), urls("/1", "/2", "/3", "/4", "/5")))
		require.NoError(t, d.Flush(t.Context()))
		// Burst 1 at 50/s: the 5th call cannot start before 4 intervals.
		assert.GreaterOrEqual(t, time.Since(start), 4*20*time.Millisecond)
		assert.Len(t, a.Delivered(), 5)
		assert.Len(t, b.Delivered(), 5)
	})
	t.Run("objects per second smaller than backend limit", func(t *testing.T) {
		t.Parallel()
		a := &fakeBackend{name: "a", limits: backends.Limits{MaxObjects: 100}}
		d := newDispatcher(t, []backends.Backend{a}, dispatcher.WithRateLimit("a", 0, 200))
		require.NoError(t, d.Enqueue(t.Context(), urls("/1", "/2", "/3")))
		require.NoError(t, d.Flush(t.Context()))
		require.Len(t, a.Delivered(), 1)
	})
}

func TestLogRecords(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a := &fakeBackend{name: "akamai", fn: func(_ context.Context, _ backends.Request, n int) (backends.Result, error) {
		if n == 0 {
			return backends.Result{}, errors.New("503")
		}
		return backends.Result{IDs: map[string]string{"purgeId": "p-9", "supportId": "s-9"}}, nil
	}}
	d := newDispatcher(t, []backends.Backend{a}, dispatcher.WithLogger(logger))
	require.NoError(t, d.Enqueue(t.Context(), urls("/a", "/b")))
	require.NoError(t, d.Flush(t.Context()))

	var records []map[string]any
	for line := range strings.Lines(buf.String()) {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m))
		records = append(records, m)
	}
	require.Len(t, records, 2)
	assert.Equal(t, "WARN", records[0]["level"])
	assert.Equal(t, "retry", records[0]["outcome"])
	assert.Equal(t, "503", records[0]["error"])
	assert.Equal(t, "DEBUG", records[1]["level"], "success is logged only when asked")
	assert.Equal(t, "akamai", records[1]["backend"])
	assert.Equal(t, "delivered", records[1]["outcome"])
	assert.EqualValues(t, 2, records[1]["attempt"])
	assert.EqualValues(t, 2, records[1]["objects"])
	assert.Equal(t, map[string]any{"purgeId": "p-9", "supportId": "s-9"}, records[1]["ids"])
}

func TestNewRejectsInvalidConfiguration(t *testing.T) {
	t.Parallel()
	a := &fakeBackend{name: "a"}
	tests := []struct {
		name string
		bs   []backends.Backend
		opt  dispatcher.Option
		want string
	}{
		{"no backends", nil, nil, "at least one backend"},
		{"nil backend", []backends.Backend{a, nil}, nil, "backend 1 is nil"},
		{"duplicate names", []backends.Backend{a, &fakeBackend{name: "a"}}, nil, `two backends are named "a"`},
		{"workers", nil, dispatcher.WithWorkers(0), "at least 1 worker"},
		{"queue size", nil, dispatcher.WithQueueSize(0), "at least 1 request"},
		{"policy", nil, dispatcher.WithFullPolicy(7), "use Block, DropOldest or Reject"},
		{"linger", nil, dispatcher.WithLinger(-1), "use 0 to send at once"},
		{"attempts", nil, dispatcher.WithMaxAttempts(0), "use 1 to disable retries"},
		{"elapsed", nil, dispatcher.WithMaxElapsed(-1), "use 0 for no bound"},
		{"backoff", nil, dispatcher.WithBackoff(time.Second, time.Millisecond), "0 < initial <= max"},
		{"timeout", nil, dispatcher.WithAttemptTimeout(0), "positive deadline"},
		{"rate unknown backend", nil, dispatcher.WithRateLimit("akamai", 1, 1), `no backend has that name`},
		{"rate negative", nil, dispatcher.WithRateLimit("a", -1, 1), "rates must be positive"},
		{"nil logger", nil, dispatcher.WithLogger(nil), "slog.DiscardHandler"},
		{"nil OnResult", nil, dispatcher.WithOnResult(nil), "WithOnResult(nil): pass a function, or leave the option out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bs := tt.bs
			if bs == nil && tt.opt != nil {
				bs = []backends.Backend{a}
			}
			var opts []dispatcher.Option
			if tt.opt != nil {
				opts = append(opts, tt.opt)
			}
			d, err := dispatcher.New(bs, opts...)
			require.Error(t, err)
			assert.Nil(t, d, "nothing started")
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), "dispatcher: invalid configuration")
		})
	}
}

func TestNewRejectsANilOption(t *testing.T) {
	t.Parallel()
	d, err := dispatcher.New([]backends.Backend{&fakeBackend{name: "a"}}, dispatcher.WithWorkers(1), nil)
	require.ErrorContains(t, err, "an Option is nil")
	assert.Nil(t, d, "nothing started")
}

func TestPanickingOnResultHookIsContained(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	rec := purgetest.NewRecorder()
	d := newDispatcher(t, []backends.Backend{rec},
		dispatcher.WithLogger(slog.New(slog.DiscardHandler)),
		dispatcher.WithOnResult(func(dispatcher.Report) {
			calls.Add(1)
			panic("hook bug")
		}))
	require.NoError(t, d.Enqueue(t.Context(), urls("/a")))
	require.NoError(t, d.Flush(t.Context()))
	require.NoError(t, d.Enqueue(t.Context(), urls("/b")))
	require.NoError(t, d.Flush(t.Context()))
	assert.EqualValues(t, 2, calls.Load(), "the worker survived the first panic")
	st, ok := d.Stats().Backend(rec.Name())
	require.True(t, ok)
	assert.Equal(t, uint64(2), st.Delivered)
}

func TestEnqueueAfterCloseIsCountedAsDropped(t *testing.T) {
	t.Parallel()
	rec := purgetest.NewRecorder()
	d := mustNew(t, []backends.Backend{rec}, dispatcher.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, d.Close(t.Context()))
	require.ErrorIs(t, d.Enqueue(t.Context(), urls("/late")), dispatcher.ErrClosed)
	st, ok := d.Stats().Backend(rec.Name())
	require.True(t, ok)
	assert.Equal(t, uint64(1), st.Dropped)
}
