package dispatcher_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/purgetest"
)

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
