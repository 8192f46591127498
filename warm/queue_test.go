package warm_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/warm"
)

func TestWarmAfterPurgeWithLocalcache(t *testing.T) {
	var mu sync.Mutex
	version, renders := 1, 0
	mux := http.NewServeMux()
	mux.HandleFunc("GET /articles/{id}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		renders++
		fmt.Fprintf(w, "article %s, version %d", r.PathValue("id"), version)
	})
	store, err := localcache.NewMemoryStore()
	require.NoError(t, err)
	site := localcache.Middleware(store, localcache.WithLogger(quiet))(mux)
	onResult, fetched := results()
	w := newWarmer(t, warm.WithHandler(site), warm.WithBaseURL("http://example.com"), onResult)

	visit := func() (string, string) {
		rec := httptest.NewRecorder()
		site.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://example.com/articles/7", nil))
		return rec.Header().Get(localcache.XCache), rec.Body.String()
	}
	cache, body := visit()
	require.Equal(t, "MISS", cache)
	require.Equal(t, "article 7, version 1", body)

	mu.Lock()
	version, renders = 2, 0 // the row changed and the transaction committed
	mu.Unlock()
	local, err := localcache.NewBackend(store)
	require.NoError(t, err)
	_, err = local.Purge(context.Background(), backends.NewRequest([]string{"/articles/7"}, nil))
	require.NoError(t, err)

	w.Enqueue("/articles/7")
	res := <-fetched
	require.NoError(t, res.Err)
	assert.Equal(t, "/articles/7", res.URL)
	assert.Equal(t, http.StatusOK, res.Status)
	assert.Equal(t, "MISS", res.Cache, "the warm-up rendered the page")

	cache, body = visit() // the first real visitor after the purge
	assert.Equal(t, "HIT", cache)
	assert.Equal(t, "article 7, version 2", body)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 1, renders, "the page was rendered once after the purge, for the warm-up")
}

func TestEnqueueDropsWhenQueueIsFull(t *testing.T) {
	g := newGate(t)
	defer g.open()
	var drops []string
	var mu sync.Mutex
	logger := hookLogger(func(msg string) {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasPrefix(msg, "warm: URLs dropped") {
			drops = append(drops, msg)
		}
	})
	onResult, fetched := results()
	w := newWarmer(t, warm.WithHandler(g), warm.WithConcurrency(1), warm.WithQueueSize(3), warm.WithLogger(logger), onResult)

	w.Enqueue("/a")
	<-g.arrived // /a holds the only fetch slot; the rest must wait
	w.Enqueue("/b", "/c", "/d")
	assert.Equal(t, warm.Stats{Queued: 3}, w.Stats())
	w.Enqueue("/e", "/b", "/f") // /b is already waiting: neither queued nor dropped
	assert.Equal(t, warm.Stats{Queued: 3, Dropped: 2}, w.Stats())
	mu.Lock()
	assert.Equal(t, []string{"warm: URLs dropped: the queue is full"}, drops, "one record for the call's 2 drops")
	mu.Unlock()

	g.open()
	var got []string
	for range 4 {
		r := <-fetched
		assert.Equal(t, http.StatusOK, r.Status)
		got = append(got, r.URL)
	}
	assert.ElementsMatch(t, []string{"/a", "/b", "/c", "/d"}, got)
	require.NoError(t, w.Close(context.Background()))
	assert.Equal(t, warm.Stats{Fetched: 4, Dropped: 2}, w.Stats())
}
