package dispatcher_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
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
