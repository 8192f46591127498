package localcache_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/internal/testclock"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.DiscardHandler)

// app is a handler that counts how often it renders and answers with
// respond, or with a public page naming the URL when respond is nil.
type app struct {
	renders atomic.Int64
	respond func(w http.ResponseWriter, r *http.Request, n int64)
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := a.renders.Add(1)
	if a.respond != nil {
		a.respond(w, r, n)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "page "+r.URL.String())
}

// setup returns a memory store, the app and the app behind the middleware.
func setup(t *testing.T, a *app, opts ...localcache.Option) (*localcache.MemoryStore, http.Handler) {
	t.Helper()
	store := newStore(t)
	return store, localcache.Middleware(store, append([]localcache.Option{localcache.WithLogger(quiet)}, opts...)...)(a)
}

// result is what a client saw.
type result struct {
	status int
	xcache string
	body   string
	header http.Header
}

// do sends one request through h. target may be a path or an absolute URL;
// kv are request header names and values.
func do(t *testing.T, h http.Handler, method, target string, kv ...string) result {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Add(kv[i], kv[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	res := w.Result()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return result{status: res.StatusCode, xcache: res.Header.Get(localcache.XCache), body: string(body), header: res.Header}
}

func get(t *testing.T, h http.Handler, target string, kv ...string) result {
	t.Helper()
	return do(t, h, http.MethodGet, target, kv...)
}

// purge purges store through a Backend and fails the test on error.
func purge(t *testing.T, store localcache.Store, urls []string, tags []string) {
	t.Helper()
	_, err := newBackend(t, store).Purge(t.Context(), backends.NewRequest(urls, tags))
	require.NoError(t, err)
}

// failingStore is a Store whose Set always fails, as a shared store does
// when its server is down.
type failingStore struct {
	localcache.Store
}

func (failingStore) Set(context.Context, string, *localcache.Entry, uint64) (bool, error) {
	return false, io.ErrUnexpectedEOF
}

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// respondWith returns an app response writing status, headers and body.
func respondWith(status int, h http.Header, body string) func(http.ResponseWriter, *http.Request, int64) {
	return func(w http.ResponseWriter, _ *http.Request, _ int64) {
		for k, vs := range h {
			w.Header()[k] = vs
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// clockedStore returns a memory store reading the time from a test clock.
func clockedStore(t testing.TB) (*testclock.Manual, *localcache.MemoryStore) {
	clock := testclock.New()
	return clock, newStore(t, localcache.WithClock(clock.Now))
}

// newStore returns a memory store configured by opts, failing the test if
// NewMemoryStore refuses them.
func newStore(t testing.TB, opts ...localcache.StoreOption) *localcache.MemoryStore {
	t.Helper()
	s, err := localcache.NewMemoryStore(opts...)
	require.NoError(t, err)
	return s
}

// newBackend returns a Backend purging store, failing the test if
// NewBackend refuses it.
func newBackend(t testing.TB, store localcache.Store) *localcache.Backend {
	t.Helper()
	b, err := localcache.NewBackend(store)
	require.NoError(t, err)
	return b
}

// cached wraps a with its own Middleware on store, as a route of its own.
func cached(store localcache.Store, a http.Handler, opts ...localcache.Option) http.Handler {
	return localcache.Middleware(store, append([]localcache.Option{localcache.WithLogger(quiet)}, opts...)...)(a)
}
