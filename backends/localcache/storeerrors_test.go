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
