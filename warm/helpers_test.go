package warm_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gormpurge/gormpurge/warm"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// quiet is a logger that discards everything.
var quiet = slog.New(slog.DiscardHandler)

// newWarmer returns a Warmer with opts and a silent logger (unless opts set
// one), closed when the test ends.
func newWarmer(t testing.TB, opts ...warm.Option) *warm.Warmer {
	t.Helper()
	w, err := warm.New(append([]warm.Option{warm.WithLogger(quiet)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	return w
}

// newServer starts an httptest server on 127.0.0.1 running h, closed when
// the test ends.
func newServer(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// closedURL returns a URL on 127.0.0.1 whose port nothing listens on.
func closedURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr + "/refused"
}

// counter counts requests per path. It is safe for concurrent use.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = make(map[string]int)
	}
	c.n[path]++
}

func (c *counter) all() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

// gate is a handler that announces each request on arrived and then holds
// it until release is closed or the request's context ends.
type gate struct {
	arrived chan string
	release chan struct{}
	once    sync.Once
}

func newGate(t testing.TB) *gate {
	g := &gate{arrived: make(chan string, 100), release: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.arrived <- r.URL.Path
	select {
	case <-g.release:
		_, _ = w.Write([]byte("page"))
	case <-r.Context().Done():
	}
}

// results returns a WithOnResult option sending every Result to the channel
// it returns.
func results() (warm.Option, <-chan warm.Result) {
	ch := make(chan warm.Result, 100)
	return warm.WithOnResult(func(r warm.Result) { ch <- r }), ch
}

// hookLogger returns a logger that calls fn with the message of every
// record.
func hookLogger(fn func(msg string)) *slog.Logger {
	return slog.New(hookHandler(fn))
}

type hookHandler func(msg string)

func (h hookHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h hookHandler) Handle(_ context.Context, r slog.Record) error {
	h(r.Message)
	return nil
}
func (h hookHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h hookHandler) WithGroup(string) slog.Handler      { return h }
