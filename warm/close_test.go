package warm_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gormpurge/gormpurge/warm"
)

// Close on a Warmer never started (the zero value) does nothing.
func TestCloseNeverStarted(t *testing.T) {
	var w warm.Warmer
	assert.NoError(t, w.Close(t.Context()))
	assert.NoError(t, w.Close(t.Context()), "twice")
}

func TestCloseLetsFetchesInFlightFinish(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	g := newGate(t)
	defer g.open()
	closing := make(chan struct{})
	logger := hookLogger(func(msg string) {
		if msg == "warm: URLs dropped at Close" {
			close(closing)
		}
	})
	onResult, fetched := results()
	w, err := warm.New(warm.WithHandler(g), warm.WithConcurrency(1), warm.WithLogger(logger), onResult)
	require.NoError(t, err)

	w.Enqueue("/a")
	<-g.arrived
	w.Enqueue("/b", "/c")
	closed := make(chan error)
	go func() { closed <- w.Close(context.Background()) }()
	<-closing // Close has begun, and waits for /a
	g.open()

	require.NoError(t, <-closed)
	r := <-fetched
	assert.Equal(t, "/a", r.URL)
	assert.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, warm.Stats{Fetched: 1, Dropped: 2}, w.Stats())

	require.NoError(t, w.Close(context.Background()), "Close is idempotent")
	w.Enqueue("/late")
	assert.Equal(t, warm.Stats{Fetched: 1, Dropped: 3}, w.Stats(), "Enqueue after Close drops")
	var res warm.Result
	w.Fetch(context.Background(), []string{"/late"}, func(r warm.Result) { res = r })
	assert.ErrorIs(t, res.Err, warm.ErrClosed)
}

func TestCloseCancelsFetchesWhenContextEnds(t *testing.T) {
	for _, mode := range []string{"handler", "network"} {
		t.Run(mode, func(t *testing.T) {
			g := newGate(t)
			defer g.open()
			onResult, fetched := results()
			opts := []warm.Option{warm.WithConcurrency(1), onResult}
			if mode == "handler" {
				opts = append(opts, warm.WithHandler(g))
			} else {
				opts = append(opts, warm.WithBaseURL(newServer(t, g).URL))
			}
			w, err := warm.New(append(opts, warm.WithLogger(quiet))...)
			require.NoError(t, err)

			w.Enqueue("/a")
			<-g.arrived
			w.Enqueue("/b")
			errShutdown := errors.New("shutdown deadline")
			ctx, cancel := context.WithCancelCause(context.Background())
			cancel(errShutdown)
			err = w.Close(ctx)

			assert.ErrorIs(t, err, errShutdown)
			r := <-fetched
			assert.Equal(t, "/a", r.URL)
			assert.ErrorIs(t, r.Err, context.Canceled)
			assert.Equal(t, warm.Stats{Failed: 1, Dropped: 1}, w.Stats())
			assert.NoError(t, w.Close(context.Background()))
		})
	}
}

func TestCloseOnceIdleIgnoresAnEndedContext(t *testing.T) {
	w, err := warm.New(warm.WithLogger(quiet))
	require.NoError(t, err)
	require.NoError(t, w.Close(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 100 { // a select between idle and ctx would pick ctx half the time
		require.NoError(t, w.Close(ctx), "nothing was left to cancel")
	}
}

// The first Close with an ended ctx returns nil when no fetch is in flight:
// drain used to wait for run itself, which had not yet returned.
func TestFirstCloseWithAnEndedContextOnAnIdleWarmer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	t.Run("never used", func(t *testing.T) {
		for range 20 {
			w, err := warm.New(warm.WithLogger(quiet))
			require.NoError(t, err)
			require.NoError(t, w.Close(ctx), "nothing in flight: an ended ctx is no error")
			require.NoError(t, w.Close(ctx), "twice")
		}
	})
	t.Run("fetches finished", func(t *testing.T) {
		onResult, fetched := results()
		w, err := warm.New(warm.WithHandler(http.NotFoundHandler()), warm.WithLogger(quiet), onResult)
		require.NoError(t, err)
		w.Enqueue("/a", "/b")
		<-fetched
		<-fetched // the fetches end before their onResult calls
		require.NoError(t, w.Close(ctx), "nothing in flight: an ended ctx is no error")
		assert.Equal(t, warm.Stats{Failed: 2}, w.Stats())
	})
}
