package lifecycle_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gormpurge/gormpurge/internal/lifecycle"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCloseNeverStarted(t *testing.T) {
	var l *lifecycle.Lifecycle
	assert.NoError(t, l.Close(t.Context()))
	assert.NoError(t, l.Close(t.Context()), "twice")
}

func TestCloseDrainsThenStops(t *testing.T) {
	var order []string
	var l *lifecycle.Lifecycle
	l = lifecycle.New(lifecycle.Hooks{
		Drain: func(ctx context.Context) error {
			order = append(order, "drain")
			assert.NoError(t, l.Context().Err(), "the goroutines still run while draining")
			return nil
		},
		Stopped: func(_ context.Context, err error) error {
			order = append(order, "stopped")
			return err
		},
	})
	l.Go(func() {
		<-l.Stopping()
		<-l.Done()
		order = append(order, "goroutine")
	})
	require.NoError(t, l.Close(t.Context()))
	assert.Equal(t, []string{"drain", "goroutine", "stopped"}, order)
	assert.NoError(t, l.Close(t.Context()), "twice")
}

func TestCloseReturnsTheContextsCauseWhenTimeRunsOut(t *testing.T) {
	var l *lifecycle.Lifecycle
	l = lifecycle.New(lifecycle.Hooks{Drain: func(ctx context.Context) error { return l.Wait(ctx) }})
	var cancelled atomic.Bool
	l.Go(func() {
		<-l.Done() // ignores Stopping: only the cancellation ends it
		cancelled.Store(true)
	})
	errDeadline := errors.New("shutdown deadline")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errDeadline)
	assert.ErrorIs(t, l.Close(ctx), errDeadline)
	assert.True(t, cancelled.Load(), "Close returned before its goroutine")
	assert.NoError(t, l.Close(ctx), "a later Close finds it closed, even with an ended ctx")
}

func TestConcurrentCloseWaitsForTheFirst(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	l := lifecycle.New(lifecycle.Hooks{Drain: func(context.Context) error {
		close(entered)
		<-release
		return nil
	}})
	first := make(chan error, 1)
	go func() { first <- l.Close(context.Background()) }()
	<-entered

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, l.Close(ctx), context.DeadlineExceeded, "the second call's own ctx ended first")

	second := make(chan error, 1)
	go func() { second <- l.Close(context.Background()) }()
	close(release)
	assert.NoError(t, <-first)
	assert.NoError(t, <-second)
}

func TestWaitWithNothingRunning(t *testing.T) {
	l := lifecycle.New(lifecycle.Hooks{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.NoError(t, l.Wait(ctx))
	require.NoError(t, l.Close(ctx))
}

// endedContext returns a context that has already ended.
func endedContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestGroup(t *testing.T) {
	var g lifecycle.Group
	assert.Zero(t, g.Len())
	assert.NoError(t, g.Wait(endedContext()), "nothing in flight: an ended ctx is no error")

	require.True(t, g.Add())
	require.True(t, g.Add())
	assert.Equal(t, 2, g.Len())
	errDeadline := errors.New("deadline")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errDeadline)
	assert.ErrorIs(t, g.Wait(ctx), errDeadline, "work in flight when ctx ended")

	g.Stop()
	assert.False(t, g.Add(), "Stop refuses new work")
	assert.Equal(t, 2, g.Len(), "the work in flight goes on after Stop")

	waited := make(chan error, 1)
	go func() { waited <- g.Wait(context.Background()) }()
	g.Done()
	g.Done()
	assert.NoError(t, <-waited)
	assert.Zero(t, g.Len())
	assert.NoError(t, g.Wait(ctx), "done: an ended ctx is no error")
	assert.Panics(t, g.Done, "Done without Add")
}
