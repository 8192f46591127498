package localcache_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/localcache"
)

func TestClearHandler(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method string
		want   int
	}{
		{http.MethodPost, http.StatusOK},
		{http.MethodGet, http.StatusMethodNotAllowed},
		{http.MethodHead, http.StatusMethodNotAllowed},
		{http.MethodPut, http.StatusMethodNotAllowed},
		{http.MethodDelete, http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			t.Parallel()
			store, h := setup(t, &app{})
			get(t, h, "/a")
			get(t, h, "/b")

			got := do(t, localcache.ClearHandler(store), tt.method, "/admin/cache/clear")
			assert.Equal(t, tt.want, got.status)
			assert.Equal(t, "no-store", got.header.Get("Cache-Control"))
			if tt.want == http.StatusOK {
				assert.Equal(t, "removed 2 entries\n", got.body)
				assert.Equal(t, "text/plain; charset=utf-8", got.header.Get("Content-Type"))
				assert.Zero(t, store.Len())
				assert.Equal(t, "MISS", get(t, h, "/a").xcache)
				return
			}
			assert.Equal(t, http.MethodPost, got.header.Get("Allow"))
			assert.Equal(t, 2, store.Len(), "nothing cleared")
		})
	}
}

// TestClearHandlerRefusesCrossOriginPOST: a page on another site cannot
// make an operator's browser clear the cache; the operator's own admin
// pages and clients that are not browsers (curl) can.
func TestClearHandlerRefusesCrossOriginPOST(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		kv   []string // request headers; the request's host is example.com
		want int
	}{
		{"cross-site", []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"same-site, another origin", []string{"Sec-Fetch-Site", "same-site"}, http.StatusForbidden},
		{"Origin of another host", []string{"Origin", "https://attacker.example"}, http.StatusForbidden},
		{"same-origin", []string{"Sec-Fetch-Site", "same-origin", "Origin", "http://example.com"}, http.StatusOK},
		{"Origin of the same host", []string{"Origin", "http://example.com"}, http.StatusOK},
		{"typed in the address bar", []string{"Sec-Fetch-Site", "none"}, http.StatusOK},
		{"not a browser", nil, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store, h := setup(t, &app{})
			get(t, h, "/a")

			got := do(t, localcache.ClearHandler(store), http.MethodPost, "http://example.com/admin/cache/clear", tt.kv...)
			assert.Equal(t, tt.want, got.status)
			assert.Equal(t, "no-store", got.header.Get("Cache-Control"))
			if tt.want == http.StatusOK {
				assert.Zero(t, store.Len(), "cleared")
				return
			}
			assert.Equal(t, 1, store.Len(), "nothing cleared")
			assert.Equal(t, "HIT", get(t, h, "/a").xcache)
		})
	}
}

// clearFailingStore is a Store whose Clear fails, as a shared store does
// when its server is down.
type clearFailingStore struct {
	localcache.Store
}

func (clearFailingStore) Clear(context.Context) (int, error) {
	return 0, io.ErrUnexpectedEOF
}

func TestClearHandlerReportsStoreFailure(t *testing.T) {
	t.Parallel()
	got := do(t, localcache.ClearHandler(clearFailingStore{newStore(t)}), http.MethodPost, "/clear")
	assert.Equal(t, http.StatusInternalServerError, got.status)
	assert.Contains(t, got.body, "unexpected EOF")
}

func TestClearHandlerRefusesNilStore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		store localcache.Store
		want  string
	}{
		{"nil", nil, "localcache: ClearHandler(nil): pass the Store given to Middleware, such as one from NewMemoryStore, or the Backend that purges it (with WithBus, to clear every instance)"},
		{"typed nil", (*localcache.MemoryStore)(nil),
			"localcache: ClearHandler((*localcache.MemoryStore)(nil)): the Clearer is a nil *localcache.MemoryStore: pass the Store given to Middleware, such as one from NewMemoryStore, or the Backend that purges it (with WithBus, to clear every instance)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := localcache.NewClearHandler(tt.store)
			assert.Nil(t, h)
			assert.EqualError(t, err, tt.want)
			// ClearHandler, for a store written in code, panics with the same message.
			assert.PanicsWithValue(t, tt.want, func() { localcache.ClearHandler(tt.store) })
		})
	}
}

func TestNewClearHandler(t *testing.T) {
	t.Parallel()
	h, err := localcache.NewClearHandler(newStore(t))
	require.NoError(t, err)
	got := do(t, h, http.MethodPost, "/admin/cache/clear")
	assert.Equal(t, http.StatusOK, got.status)
	assert.Equal(t, "removed 0 entries\n", got.body)
}

// TestRenderDuringPurgeOrClearIsNotStored: the generation guard holds for
// every Middleware on a shared store, whichever route a purge named.
func TestRenderDuringPurgeOrClearIsNotStored(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		purge func(t *testing.T, store localcache.Store)
	}{
		{"clear", func(t *testing.T, store localcache.Store) {
			_, err := store.Clear(t.Context())
			require.NoError(t, err)
		}},
		{"purge of another route", func(t *testing.T, store localcache.Store) {
			purge(t, store, []string{"/other"}, nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			entered, release := make(chan struct{}), make(chan struct{})
			a := &app{respond: func(w http.ResponseWriter, _ *http.Request, n int64) {
				if n == 1 {
					close(entered)
					<-release
				}
				_, _ = fmt.Fprintf(w, "version %d", n)
			}}
			store := newStore(t)
			mux := http.NewServeMux()
			mux.Handle("/article", cached(store, a, localcache.WithUntilPurged()))
			mux.Handle("/other", cached(store, &app{}))

			first := make(chan result, 1)
			go func() { first <- get(t, mux, "/article") }()
			<-entered
			tt.purge(t, store)
			close(release)
			assert.Equal(t, "version 1", (<-first).body)

			got := get(t, mux, "/article")
			assert.Equal(t, "MISS", got.xcache, "the page rendered during the purge was not stored")
			assert.Equal(t, "version 2", got.body)
			assert.Equal(t, "HIT", get(t, mux, "/article").xcache)
		})
	}
}

func TestBackendPurgeAll(t *testing.T) {
	t.Parallel()
	store, h := setup(t, &app{respond: respondWith(http.StatusOK, header("Vary", "Accept-Language"), "x")})
	get(t, h, "/a", "Accept-Language", "en")
	get(t, h, "/a", "Accept-Language", "fr")
	get(t, h, "/b")

	var b backends.Backend = newBackend(t, store)
	pa, ok := b.(backends.PurgeAller)
	require.True(t, ok, "the dispatcher can escalate to it")
	require.NoError(t, pa.CanPurgeAll())

	res, err := pa.PurgeAll(t.Context())
	require.NoError(t, err)
	assert.Equal(t, localcache.BackendName, res.Backend)
	assert.Equal(t, "removed 5 entries", res.Detail, "two variants and their Vary record, and /b")
	assert.Zero(t, store.Len())
	assert.Equal(t, "MISS", get(t, h, "/b").xcache)
}

func TestBackendPurgeAllReportsStoreFailure(t *testing.T) {
	t.Parallel()
	b := newBackend(t, clearFailingStore{newStore(t)})
	_, err := b.PurgeAll(t.Context())
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.False(t, backends.IsPermanent(err), "retried")
}
