package dispatcher_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// wait returns t's outcomes, failing the test if t is not done within a
// few seconds.
func wait(t *testing.T, tk *dispatcher.Ticket) []dispatcher.BackendOutcome {
	t.Helper()
	require.NotNil(t, tk)
	out, err := tk.Wait(ctxTimeout(t, 5*time.Second))
	require.NoError(t, err, "the ticket is not done")
	return out
}

// isDone reports whether t is done now.
func isDone(t *dispatcher.Ticket) bool {
	select {
	case <-t.Done():
		return true
	default:
		return false
	}
}

func TestSubmitDelivered(t *testing.T) {
	t.Parallel()
	a, b := &fakeBackend{name: "a"}, &fakeBackend{name: "b"}
	d := newDispatcher(t, []backends.Backend{a, b})

	tk, err := d.Submit(t.Context(), backends.NewRequest([]string{"/x"}, []string{"post-1"}))
	require.NoError(t, err)
	require.NoError(t, d.Flush(t.Context()))
	assert.True(t, isDone(tk), "done by the time Flush returns")

	assert.Equal(t, []dispatcher.BackendOutcome{
		{Backend: "a", Outcome: dispatcher.Delivered, Attempts: 1, Result: backends.Result{Backend: "a", Objects: 2}},
		{Backend: "b", Outcome: dispatcher.Delivered, Attempts: 1, Result: backends.Result{Backend: "b", Objects: 2}},
	}, wait(t, tk))
}

func TestSubmitOneBackendFailsForGoodWhileTheOtherDelivers(t *testing.T) {
	t.Parallel()
	boom := errors.New("403 Forbidden")
	ok := &fakeBackend{name: "ok"}
	refusing := &fakeBackend{name: "refusing", fn: func(context.Context, backends.Request, int) (backends.Result, error) {
		return backends.Result{Detail: "refused"}, backends.Permanent(boom)
	}}
	d := newDispatcher(t, []backends.Backend{ok, refusing})

	tk, err := d.Submit(t.Context(), urls("/a", "/b"))
	require.NoError(t, err)
	out := wait(t, tk)

	require.Len(t, out, 2)
	assert.Equal(t, "ok", out[0].Backend)
	assert.Equal(t, dispatcher.Delivered, out[0].Outcome)
	assert.NoError(t, out[0].Err)
	assert.Equal(t, "refusing", out[1].Backend)
	assert.Equal(t, dispatcher.Failed, out[1].Outcome)
	assert.ErrorIs(t, out[1].Err, boom)
	assert.True(t, backends.IsPermanent(out[1].Err))
	assert.Equal(t, 1, out[1].Attempts)
	assert.Equal(t, "refused", out[1].Result.Detail)
}

func TestSubmitRetriedThenDelivered(t *testing.T) {
	t.Parallel()
	a := &fakeBackend{name: "a", fn: func(_ context.Context, _ backends.Request, n int) (backends.Result, error) {
		if n < 2 {
			return backends.Result{}, errors.New("503 service unavailable")
		}
		return backends.Result{IDs: map[string]string{"purgeId": "p-1"}}, nil
	}}
	d := newDispatcher(t, []backends.Backend{a})

	tk, err := d.Submit(t.Context(), urls("/a"))
	require.NoError(t, err)
	out := wait(t, tk)

	require.Len(t, out, 1)
	assert.Equal(t, dispatcher.Delivered, out[0].Outcome)
	assert.NoError(t, out[0].Err)
	assert.Equal(t, 3, out[0].Attempts)
	assert.Equal(t, "p-1", out[0].Result.IDs["purgeId"])
}

// Requests submitted within one linger window are merged, and cut to the
// backend's limits, before the backend sees them; each request's outcome
// still depends only on the batches that held its objects and, when a
// backend names the objects that failed, on those objects alone.
func TestSubmitOutcomeFollowsTheRequestsObjects(t *testing.T) {
	t.Parallel()
	refused := errors.New("refused")
	// failOn fails, for good, every batch holding obj; naming, when set,
	// the failed objects with backends.Partial.
	failOn := func(obj string, named *backends.Request) func(r backends.Request) error {
		return func(r backends.Request) error {
			if !slices.Contains(r.URLs, obj) && !slices.Contains(r.Tags, obj) {
				return nil
			}
			if named == nil {
				return backends.Permanent(refused)
			}
			return backends.Partial(*named, backends.Permanent(refused))
		}
	}
	ref := func(r backends.Request) *backends.Request { return &r }
	tests := []struct {
		name string
		// A byte limit cuts batches without ending the window early, as
		// MaxObjects would.
		limits    backends.Limits
		reqs      []backends.Request
		fail      func(r backends.Request) error
		want      []dispatcher.Outcome // per request
		failed    uint64               // objects counted as failed
		delivered uint64
	}{
		{
			name: "whole batch fails",
			reqs: []backends.Request{urls("/a"), urls("/b")},
			fail: failOn("/b", nil),
			want: []dispatcher.Outcome{dispatcher.Failed, dispatcher.Failed},
			// The backend did not say which failed: all of them.
			failed: 2,
		},
		{
			name:      "partial failure names one request's object",
			reqs:      []backends.Request{urls("/a"), urls("/b")},
			fail:      failOn("/b", ref(urls("/b"))),
			want:      []dispatcher.Outcome{dispatcher.Delivered, dispatcher.Failed},
			failed:    1,
			delivered: 1,
		},
		{
			name:      "an object two requests share",
			reqs:      []backends.Request{urls("/a", "/b"), urls("/b", "/c"), urls("/d")},
			fail:      failOn("/b", ref(urls("/b"))),
			want:      []dispatcher.Outcome{dispatcher.Failed, dispatcher.Failed, dispatcher.Delivered},
			failed:    1,
			delivered: 3,
		},
		{
			name:      "tags and URLs are different objects",
			reqs:      []backends.Request{backends.NewRequest([]string{"/x"}, nil), backends.NewRequest(nil, []string{"/x"})},
			fail:      failOn("/x", ref(backends.NewRequest(nil, []string{"/x"}))),
			want:      []dispatcher.Outcome{dispatcher.Delivered, dispatcher.Failed},
			failed:    1,
			delivered: 1,
		},
		{
			name:      "batches cut to the limits",
			limits:    backends.Limits{MaxBytes: 10}, // [/a /b] [/c /d]
			reqs:      []backends.Request{urls("/a"), urls("/b", "/c"), urls("/d")},
			fail:      failOn("/c", nil),
			want:      []dispatcher.Outcome{dispatcher.Delivered, dispatcher.Failed, dispatcher.Failed},
			failed:    2,
			delivered: 2,
		},
		{
			name:      "partial failure of one of several batches",
			limits:    backends.Limits{MaxBytes: 10}, // [/a /b] [/c /d]
			reqs:      []backends.Request{urls("/a"), urls("/b", "/c"), urls("/d")},
			fail:      failOn("/d", ref(urls("/d"))),
			want:      []dispatcher.Outcome{dispatcher.Delivered, dispatcher.Delivered, dispatcher.Failed},
			failed:    1,
			delivered: 3,
		},
		{
			name:   "partial failure naming nothing in the batch",
			reqs:   []backends.Request{urls("/a"), urls("/b")},
			fail:   failOn("/a", ref(urls("/elsewhere"))),
			want:   []dispatcher.Outcome{dispatcher.Failed, dispatcher.Failed},
			failed: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got collector
			a := &fakeBackend{name: "a", limits: tt.limits, fn: func(_ context.Context, r backends.Request, _ int) (backends.Result, error) {
				return backends.Result{}, tt.fail(r)
			}}
			// Only Flush ends the window: the requests share it.
			d := newDispatcher(t, []backends.Backend{a}, dispatcher.WithLinger(time.Hour), dispatcher.WithOnResult(got.add))

			tickets := make([]*dispatcher.Ticket, len(tt.reqs))
			var all backends.Request
			for i, r := range tt.reqs {
				var err error
				tickets[i], err = d.Submit(t.Context(), r)
				require.NoError(t, err)
				all = all.Merge(r)
			}
			require.NoError(t, d.Flush(t.Context()))

			for i, tk := range tickets {
				out := wait(t, tk)
				require.Len(t, out, 1)
				assert.Equal(t, tt.want[i], out[0].Outcome, "request %d %v", i, tt.reqs[i])
				assert.Equal(t, 1, out[0].Attempts, "request %d", i)
				if tt.want[i] == dispatcher.Failed {
					assert.ErrorIs(t, out[0].Err, refused, "request %d", i)
				} else {
					assert.NoError(t, out[0].Err, "request %d", i)
				}
			}
			s, _ := d.Stats().Backend("a")
			assert.Equal(t, tt.failed, s.Failed, "failed objects")
			assert.Equal(t, tt.delivered, s.Delivered, "delivered objects")

			// Reports are per batch and hold the whole batch, failed or not.
			var reported backends.Request
			for _, rep := range got.all() {
				reported = reported.Merge(rep.Request)
			}
			assert.Equal(t, all, reported)
		})
	}
}

func TestSubmitWithBackends(t *testing.T) {
	t.Parallel()
	a, b, c := &fakeBackend{name: "a"}, &fakeBackend{name: "b"}, &fakeBackend{name: "c"}
	d := newDispatcher(t, []backends.Backend{a, b, c})

	tk, err := d.Submit(t.Context(), urls("/x"), dispatcher.WithBackends("c", "a"), dispatcher.WithBackends("c"))
	require.NoError(t, err)
	out := wait(t, tk)
	require.NoError(t, d.Flush(t.Context()))

	require.Len(t, out, 2)
	assert.Equal(t, "a", out[0].Backend, "in New's order")
	assert.Equal(t, "c", out[1].Backend)
	for _, o := range out {
		assert.Equal(t, dispatcher.Delivered, o.Outcome)
	}
	assert.Equal(t, urls("/x"), a.Union())
	assert.Empty(t, b.Attempts(), "b was not asked")
	assert.Equal(t, urls("/x"), c.Union())
}

func TestSubmitWithBackendsRefusesWhatItCannotTarget(t *testing.T) {
	t.Parallel()
	a := &fakeBackend{name: "a"}
	d := newDispatcher(t, []backends.Backend{a})

	tk, err := d.Submit(t.Context(), urls("/x"), dispatcher.WithBackends("a", "cdn", "varnish"))
	assert.Nil(t, tk)
	require.ErrorIs(t, err, dispatcher.ErrUnknownBackend)
	assert.ErrorContains(t, err, `["cdn" "varnish"]`)
	assert.NotContains(t, err.Error(), `"a" "cdn"`, "only the unknown names are named as such")

	tk, err = d.Submit(t.Context(), urls("/x"), dispatcher.WithBackends())
	assert.Nil(t, tk)
	require.ErrorContains(t, err, "WithBackends() names no backend")

	tk, err = d.Submit(t.Context(), urls("/x"), nil)
	assert.Nil(t, tk)
	require.ErrorContains(t, err, "a SubmitOption is nil")

	require.NoError(t, d.Flush(t.Context()))
	s, _ := d.Stats().Backend("a")
	assert.Zero(t, s.Enqueued, "nothing was enqueued")
}

func TestSubmitEmptyRequest(t *testing.T) {
	t.Parallel()
	a := &fakeBackend{name: "a"}
	d := newDispatcher(t, []backends.Backend{a})

	tk, err := d.Submit(t.Context(), backends.Request{})
	require.NoError(t, err)
	require.True(t, isDone(tk))
	out := tk.Outcomes()
	assert.NotNil(t, out)
	assert.Empty(t, out)
	require.NoError(t, d.Flush(t.Context()))
	assert.Empty(t, a.Attempts())
}

func TestSubmitOnZeroOrClosedDispatcher(t *testing.T) {
	t.Parallel()
	var zero dispatcher.Dispatcher
	tk, err := zero.Submit(t.Context(), urls("/a"))
	assert.Nil(t, tk)
	assert.ErrorIs(t, err, dispatcher.ErrClosed)

	var got collector
	a := &fakeBackend{name: "a"}
	d := newDispatcher(t, []backends.Backend{a}, dispatcher.WithOnResult(got.add))
	require.NoError(t, d.Close(t.Context()))
	tk, err = d.Submit(t.Context(), urls("/late"))
	require.ErrorIs(t, err, dispatcher.ErrClosed)
	require.NotNil(t, tk)
	require.True(t, isDone(tk), "settled before Submit returns")
	out := tk.Outcomes()
	require.Len(t, out, 1)
	assert.Equal(t, dispatcher.Dropped, out[0].Outcome)
	assert.ErrorIs(t, out[0].Err, dispatcher.ErrClosed)
	assert.Len(t, got.outcomes(dispatcher.Dropped), 1, "reported like Enqueue's drops")
}

func TestTicketWaitReturnsWhenContextEnds(t *testing.T) {
	t.Parallel()
	g := newGate()
	defer g.Open()
	a := &fakeBackend{name: "a", fn: g.fn}
	d := newDispatcher(t, []backends.Backend{a})

	tk, err := d.Submit(t.Context(), urls("/a"))
	require.NoError(t, err)
	<-g.entered
	ctx, cancel := context.WithCancelCause(t.Context())
	stop := errors.New("shutting down")
	cancel(stop)
	out, err := tk.Wait(ctx)
	assert.Nil(t, out)
	assert.ErrorIs(t, err, stop, "the context's cause")
	assert.Nil(t, tk.Outcomes(), "nil until done")

	g.Open()
	out = wait(t, tk)
	require.Len(t, out, 1)
	assert.Equal(t, dispatcher.Delivered, out[0].Outcome)
}

// stuckLane returns a dispatcher whose backend "a" has one call stuck in
// Purge (/0), one batch waiting for its single worker (/1) and a full
// queue of one request (/2), each submitted with a ticket.
func stuckLane(t *testing.T, policy dispatcher.FullPolicy, opts ...dispatcher.Option) (*dispatcher.Dispatcher, *gate, []*dispatcher.Ticket) {
	t.Helper()
	g := newGate()
	t.Cleanup(g.Open)
	a := &fakeBackend{name: "a", fn: g.fn}
	d := newDispatcher(t, []backends.Backend{a}, append([]dispatcher.Option{
		dispatcher.WithWorkers(1), dispatcher.WithQueueSize(1), dispatcher.WithFullPolicy(policy),
	}, opts...)...)
	submit := func(u string) *dispatcher.Ticket {
		tk, err := d.Submit(t.Context(), urls(u))
		require.NoError(t, err)
		return tk
	}
	t0 := submit("/0")
	<-g.entered
	t1 := submit("/1")
	require.Eventually(t, func() bool {
		s, _ := d.Stats().Backend("a")
		return s.InFlight == 2 && s.Queued == 0
	}, 5*time.Second, time.Millisecond)
	t2 := submit("/2")
	return d, g, []*dispatcher.Ticket{t0, t1, t2}
}

func TestSubmitToAFullQueue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		policy  dispatcher.FullPolicy
		ctx     func(t *testing.T) context.Context
		wantErr bool
		dropped int // the request dropped: /2 or /3
	}{
		{dispatcher.Block, func(t *testing.T) context.Context { return ctxTimeout(t, 10*time.Millisecond) }, true, 3},
		{dispatcher.Reject, func(t *testing.T) context.Context { return t.Context() }, true, 3},
		{dispatcher.DropOldest, func(t *testing.T) context.Context { return t.Context() }, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			t.Parallel()
			d, g, tickets := stuckLane(t, tt.policy)

			t3, err := d.Submit(tt.ctx(t), urls("/3"))
			require.NotNil(t, t3, "a ticket also when the queue refused the request")
			if tt.wantErr {
				require.ErrorIs(t, err, dispatcher.ErrQueueFull)
			} else {
				require.NoError(t, err)
			}
			tickets = append(tickets, t3)

			dropped := tickets[tt.dropped]
			require.True(t, isDone(dropped), "settled when Submit returns, before the backend moves")
			out := dropped.Outcomes()
			require.Len(t, out, 1)
			assert.Equal(t, dispatcher.Dropped, out[0].Outcome)
			assert.ErrorIs(t, out[0].Err, dispatcher.ErrQueueFull)
			assert.Zero(t, out[0].Attempts)

			g.Open()
			for i, tk := range tickets {
				if i == tt.dropped {
					continue
				}
				out := wait(t, tk)
				assert.Equal(t, dispatcher.Delivered, out[0].Outcome, "/%d", i)
			}
		})
	}
}

func TestCloseSettlesEveryTicket(t *testing.T) {
	t.Parallel()
	var got collector
	// /0 stuck in Purge, /1 waiting for the worker, /2 queued.
	d, _, tickets := stuckLane(t, dispatcher.Block, dispatcher.WithOnResult(got.add))

	// /3 waits for room in the full queue.
	type submitted struct {
		tk  *dispatcher.Ticket
		err error
	}
	blocked := make(chan submitted, 1)
	go func() {
		tk, err := d.Submit(context.Background(), urls("/3"))
		blocked <- submitted{tk, err}
	}()

	err := d.Close(ctxTimeout(t, 20*time.Millisecond))
	var ue *dispatcher.UndeliveredError
	require.ErrorAs(t, err, &ue)

	b := <-blocked
	require.ErrorIs(t, b.err, dispatcher.ErrClosed)
	tickets = append(tickets, b.tk)
	for i, tk := range tickets {
		require.True(t, isDone(tk), "/%d is settled by the time Close returns", i)
		out := tk.Outcomes()
		require.Len(t, out, 1)
		assert.Equal(t, dispatcher.Dropped, out[0].Outcome, "/%d", i)
		assert.ErrorIs(t, out[0].Err, dispatcher.ErrClosed, "/%d", i)
	}
	assert.ErrorIs(t, tickets[0].Outcomes()[0].Err, context.DeadlineExceeded, "says why Close gave up")
	assert.Equal(t, 1, tickets[0].Outcomes()[0].Attempts, "the call that was cut short")
}

// A request whose objects share a window with others that were delivered
// is dropped when Close abandons the batch that holds its objects.
func TestCloseSettlesTicketsOfAPartlyAbandonedWindow(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 10)
	a := &fakeBackend{name: "a", limits: backends.Limits{MaxObjects: 1}, fn: func(ctx context.Context, r backends.Request, _ int) (backends.Result, error) {
		if r.URLs[0] == "/stuck" {
			entered <- struct{}{}
			<-ctx.Done()
			return backends.Result{}, ctx.Err()
		}
		return backends.Result{}, nil
	}}
	d := mustNew(t, []backends.Backend{a}, dispatcher.WithLogger(quiet), dispatcher.WithLinger(time.Hour), dispatcher.WithWorkers(2))

	ok, err := d.Submit(t.Context(), urls("/ok"))
	require.NoError(t, err)
	stuck, err := d.Submit(t.Context(), urls("/stuck"))
	require.NoError(t, err)
	go func() { _ = d.Flush(t.Context()) }() // ends the window; returns when Close stops the dispatcher
	<-entered
	require.Eventually(t, func() bool { return len(a.Delivered()) == 1 }, 5*time.Second, time.Millisecond)

	var ue *dispatcher.UndeliveredError
	require.ErrorAs(t, d.Close(ctxTimeout(t, 20*time.Millisecond)), &ue)
	assert.Equal(t, dispatcher.Delivered, wait(t, ok)[0].Outcome, "its batch was delivered")
	out := wait(t, stuck)
	assert.Equal(t, dispatcher.Dropped, out[0].Outcome)
	assert.ErrorIs(t, out[0].Err, dispatcher.ErrClosed)
}
