package dispatcher_test

import (
	"context"
	"errors"
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
