package dispatcher_test

import (
	"bytes"
	"context"
	"github.com/stretchr/testify/require"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeBackend records every call and answers with fn, or success when fn is
// nil. It is safe for concurrent use.
type fakeBackend struct {
	name   string
	limits backends.Limits
	// fn answers call number n (0-based, counting every attempt).
	fn func(ctx context.Context, r backends.Request, n int) (backends.Result, error)

	mu        sync.Mutex
	attempts  []backends.Request
	delivered []backends.Request
}

func (f *fakeBackend) Name() string            { return f.name }
func (f *fakeBackend) Limits() backends.Limits { return f.limits }

func (f *fakeBackend) Purge(ctx context.Context, r backends.Request) (backends.Result, error) {
	f.mu.Lock()
	n := len(f.attempts)
	f.attempts = append(f.attempts, r)
	f.mu.Unlock()
	var (
		res backends.Result
		err error
	)
	if f.fn != nil {
		res, err = f.fn(ctx, r, n)
	}
	if err == nil {
		f.mu.Lock()
		f.delivered = append(f.delivered, r)
		f.mu.Unlock()
	}
	return res, err
}

// Delivered returns the batches the backend accepted, in order.
func (f *fakeBackend) Delivered() []backends.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]backends.Request(nil), f.delivered...)
}

// Attempts returns every call, failed ones included.
func (f *fakeBackend) Attempts() []backends.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]backends.Request(nil), f.attempts...)
}

// Union returns everything the backend accepted, merged.
func (f *fakeBackend) Union() backends.Request {
	var u backends.Request
	for _, r := range f.Delivered() {
		u = u.Merge(r)
	}
	return u
}

// gate is a backend behaviour that blocks every call until the gate is
// opened or the call's context ends, and announces each call on entered.
type gate struct {
	entered chan backends.Request
	open    chan struct{}
	once    sync.Once
}

func newGate() *gate {
	return &gate{entered: make(chan backends.Request, 100), open: make(chan struct{})}
}

func (g *gate) Open() { g.once.Do(func() { close(g.open) }) }

func (g *gate) fn(ctx context.Context, r backends.Request, _ int) (backends.Result, error) {
	g.entered <- r
	select {
	case <-g.open:
		return backends.Result{}, nil
	case <-ctx.Done():
		return backends.Result{}, ctx.Err()
	}
}

// collector keeps every Report given to the OnResult hook.
type collector struct {
	mu      sync.Mutex
	reports []dispatcher.Report
}

func (c *collector) add(r dispatcher.Report) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reports = append(c.reports, r)
}

func (c *collector) all() []dispatcher.Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]dispatcher.Report(nil), c.reports...)
}

func (c *collector) outcomes(o dispatcher.Outcome) []dispatcher.Report {
	var out []dispatcher.Report
	for _, r := range c.all() {
		if r.Outcome == o {
			out = append(out, r)
		}
	}
	return out
}

var quiet = slog.New(slog.DiscardHandler)

// newDispatcher returns a Dispatcher over bs with a silent logger, tiny
// backoff and no linger, closed when the test ends. opts come last and win.
func newDispatcher(t *testing.T, bs []backends.Backend, opts ...dispatcher.Option) *dispatcher.Dispatcher {
	t.Helper()
	base := []dispatcher.Option{
		dispatcher.WithLogger(quiet),
		dispatcher.WithLinger(0),
		dispatcher.WithBackoff(time.Millisecond, 2*time.Millisecond),
	}
	d := mustNew(t, bs, append(base, opts...)...)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Close(ctx)
	})
	return d
}

// mustNew returns dispatcher.New's Dispatcher, failing the test on an
// error. The caller closes it.
func mustNew(t testing.TB, bs []backends.Backend, opts ...dispatcher.Option) *dispatcher.Dispatcher {
	t.Helper()
	d, err := dispatcher.New(bs, opts...)
	require.NoError(t, err)
	return d
}

// ctxTimeout returns a context that ends after d, cancelled with the test.
func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func urls(us ...string) backends.Request { return backends.NewRequest(us, nil) }

// syncBuffer is a bytes.Buffer safe for the dispatcher's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
