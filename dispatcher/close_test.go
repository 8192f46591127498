package dispatcher_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// closingBackend records its calls to Purge and Close in order.
type closingBackend struct {
	fakeBackend
	closeErr error

	evMu   sync.Mutex
	events []string
}

func (c *closingBackend) Purge(ctx context.Context, r backends.Request) (backends.Result, error) {
	res, err := c.fakeBackend.Purge(ctx, r)
	c.evMu.Lock()
	c.events = append(c.events, "purge")
	c.evMu.Unlock()
	return res, err
}

func (c *closingBackend) Close(context.Context) error {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	c.events = append(c.events, "close")
	return c.closeErr
}

func (c *closingBackend) Events() []string {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	return append([]string(nil), c.events...)
}

var _ backends.Closer = (*closingBackend)(nil)

// Close drains every queue, then closes each backend that is a
// backends.Closer, once, after its last Purge.
func TestCloseClosesBackendsAfterDraining(t *testing.T) {
	t.Parallel()
	slow := &closingBackend{fakeBackend: fakeBackend{name: "slow", limits: backends.Limits{MaxObjects: 1}, fn: func(ctx context.Context, _ backends.Request, _ int) (backends.Result, error) {
		time.Sleep(5 * time.Millisecond) // a backend that takes its time: Close must wait for it
		return backends.Result{}, nil
	}}}
	plain := &fakeBackend{name: "plain"} // no Close: left alone
	d := mustNew(t, []backends.Backend{slow, plain}, dispatcher.WithLogger(quiet),
		dispatcher.WithLinger(0))
	for _, u := range []string{"/1", "/2", "/3"} {
		require.NoError(t, d.Enqueue(t.Context(), urls(u)))
	}
	require.NoError(t, d.Close(t.Context()))
	assert.Equal(t, []string{"purge", "purge", "purge", "close"}, slow.Events())
	assert.Equal(t, urls("/1", "/2", "/3"), plain.Union())

	require.NoError(t, d.Close(t.Context()), "second Close")
	assert.Equal(t, []string{"purge", "purge", "purge", "close"}, slow.Events(), "closed once")
}

// A backend's Close error is returned by the dispatcher's Close, naming it.
func TestCloseReportsBackendCloseErrors(t *testing.T) {
	t.Parallel()
	b := &closingBackend{fakeBackend: fakeBackend{name: "varnish"}, closeErr: errors.New("pool stuck")}
	d := mustNew(t, []backends.Backend{b}, dispatcher.WithLogger(quiet))
	err := d.Close(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `closing backend "varnish": pool stuck`)
}

// A Close whose ctx has ended still closes the backends, after cancelling
// what was in flight, and hands them the ended ctx.
func TestCloseWithEndedContextStillClosesBackends(t *testing.T) {
	t.Parallel()
	g := newGate() // never opened
	b := &closingBackend{fakeBackend: fakeBackend{name: "stuck", fn: g.fn}}
	d := mustNew(t, []backends.Backend{b}, dispatcher.WithLogger(quiet), dispatcher.WithLinger(0))
	require.NoError(t, d.Enqueue(t.Context(), urls("/1")))
	<-g.entered
	var ue *dispatcher.UndeliveredError
	require.ErrorAs(t, d.Close(ctxTimeout(t, 10*time.Millisecond)), &ue)
	assert.Equal(t, []string{"purge", "close"}, b.Events())
}

func TestRetryPolicyJitterBounds(t *testing.T) {
	t.Parallel()
	p := dispatcher.RetryPolicy{InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, MaxAttempts: 30}
	nominal := []time.Duration{100, 200, 400, 800, 1000, 1000} // ms, after 1..6 failures
	for i, ms := range nominal {
		b := ms * time.Millisecond
		assert.Equal(t, b/2, p.BackoffJitter(i+1, 0), "failures %d, lowest", i+1)
		assert.Equal(t, b-b/4, p.BackoffJitter(i+1, 0.5), "failures %d, middle", i+1)
		assert.LessOrEqual(t, p.BackoffJitter(i+1, 0.999999), b, "failures %d, highest", i+1)
		for range 100 {
			w := p.Backoff(i + 1)
			assert.GreaterOrEqual(t, w, b/2)
			assert.LessOrEqual(t, w, b)
		}
	}
	assert.Equal(t, time.Second, p.BackoffJitter(1000, 0.999999999).Round(time.Millisecond), "no overflow after many failures")
}

func TestRetryPolicyValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, dispatcher.DefaultRetryPolicy().Validate())
	err := dispatcher.RetryPolicy{InitialBackoff: time.Second, MaxBackoff: time.Millisecond, MaxElapsed: -1}.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "WithBackoff(1s, 1ms)")
	assert.Contains(t, err.Error(), "WithMaxAttempts(0)")
	assert.Contains(t, err.Error(), "WithMaxElapsed(-1ns)")

	_, err = dispatcher.New([]backends.Backend{&fakeBackend{name: "a"}}, dispatcher.WithRetry(dispatcher.RetryPolicy{}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "RetryPolicy.MaxAttempts")
}

// WithRetry sets the policy; a shorthand after it changes one part.
func TestWithRetryAndShorthands(t *testing.T) {
	t.Parallel()
	a := &fakeBackend{name: "a", fn: func(context.Context, backends.Request, int) (backends.Result, error) {
		return backends.Result{}, errors.New("503")
	}}
	p := dispatcher.RetryPolicy{InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond, MaxAttempts: 5}
	d := newDispatcher(t, []backends.Backend{a}, dispatcher.WithRetry(p), dispatcher.WithMaxAttempts(3))
	tk, err := d.Submit(t.Context(), urls("/a"))
	require.NoError(t, err)
	_, err = tk.Wait(t.Context())
	require.NoError(t, err)
	assert.Len(t, a.Attempts(), 3)
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
