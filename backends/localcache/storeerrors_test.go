package localcache_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
)

// downStore fails every call, as a shared store does when its server is
// unreachable.
type downStore struct{ localcache.Store }

var errDown = errors.New("store unreachable")

func (downStore) Get(context.Context, string) (*localcache.Entry, bool, error) {
	return nil, false, errDown
}
func (downStore) Generation(context.Context) (uint64, error) { return 0, errDown }
func (downStore) Set(context.Context, string, *localcache.Entry, uint64) (bool, error) {
	return false, errDown
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestStoreOutageRendersAndLogsOnce: while the store is down, every page
// is rendered (200, never a 500 caused by the cache), and the failures are
// logged once, with their count, not once per request.
func TestStoreOutageRendersAndLogsOnce(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	h := localcache.Middleware(downStore{newStore(t)}, localcache.WithLogger(logger))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("page"))
	}))
	for range 200 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://example.com/a", nil))
		require.Equal(t, http.StatusOK, rec.Code)
		require.Equal(t, "page", rec.Body.String())
		require.Equal(t, "MISS", rec.Header().Get(localcache.XCache))
	}
	records := strings.Count(logs.String(), "level=WARN")
	assert.GreaterOrEqual(t, records, 1, "the outage is logged")
	assert.LessOrEqual(t, records, 3, "not once per request:\n%s", logs.String())
	assert.Contains(t, logs.String(), "store unreachable")
	assert.Contains(t, logs.String(), "failures=")
}

// countingStore counts the calls to its store's Generation.
type countingStore struct {
	localcache.Store
	generations atomic.Int32
}

func (s *countingStore) Generation(ctx context.Context) (uint64, error) {
	s.generations.Add(1)
	return s.Store.Generation(ctx)
}

// A miss reads the store's generation twice: once before the render (the
// same read guards the second lookup and the store), once after it, to tell
// whether the requests waiting on it may share the page. It used to read it
// a third time; on a shared store each read is a round trip.
func TestMissReadsTheGenerationOnce(t *testing.T) {
	s := &countingStore{Store: newStore(t)}
	h := localcache.Middleware(s)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("page"))
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://example.com/a", nil))
	require.Equal(t, "MISS", rec.Header().Get(localcache.XCache))
	assert.EqualValues(t, 2, s.generations.Load())
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://example.com/a", nil))
	require.Equal(t, "HIT", rec.Header().Get(localcache.XCache), "the miss stored the page")
	assert.EqualValues(t, 2, s.generations.Load(), "a hit reads no generation")
}
