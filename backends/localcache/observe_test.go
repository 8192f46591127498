package localcache_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/observe"
	"github.com/gormpurge/gormpurge/observe/observetest"
)

// requests returns the CacheRequests figures of obs by outcome.
func requests(obs *observetest.Recorder) map[string]float64 {
	out := make(map[string]float64)
	for _, outcome := range []string{localcache.OutcomeHit, localcache.OutcomeMiss, localcache.OutcomeBypass} {
		out[outcome], _ = obs.Value(observe.CacheRequests, "", outcome)
	}
	return out
}

// figure returns the value of obs's figure of m, which has no attributes;
// 0 when there is none.
func figure(obs *observetest.Recorder, m observe.Metric) float64 {
	v, _ := obs.Value(m, "", "")
	return v
}

func TestObserverCountsRequestsByOutcome(t *testing.T) {
	t.Parallel()
	obs := new(observetest.Recorder)
	a := &app{}
	store, h := setup(t, a, localcache.WithObserver(obs), localcache.WithKeyFunc(func(r *http.Request) string {
		if r.URL.Query().Has("nocache") {
			return ""
		}
		return r.URL.String()
	}))

	assert.Equal(t, "MISS", get(t, h, "/a").xcache)
	assert.Equal(t, "HIT", get(t, h, "/a").xcache)
	assert.Equal(t, "HIT", get(t, h, "/a", "If-None-Match", get(t, h, "/a").header.Get("ETag")).xcache, "a 304")
	assert.Equal(t, "MISS", do(t, h, http.MethodHead, "/b").xcache)
	get(t, h, "/a", "Cookie", "session=1")
	get(t, h, "/a", "Authorization", "Bearer x")
	do(t, h, http.MethodPost, "/a")
	get(t, h, "/a?nocache")
	purge(t, store, []string{"/a"}, nil)
	assert.Equal(t, "MISS", get(t, h, "/a").xcache)

	assert.Equal(t, map[string]float64{"hit": 3, "miss": 3, "bypass": 4}, requests(obs))
	assert.Equal(t, float64(2), figure(obs, observe.CacheStores), "the two GET misses of /a")
	assert.Equal(t, float64(1), figure(obs, observe.CacheEntries))
	assert.Equal(t, float64(0), figure(obs, observe.CacheEvictions), "a purge is no eviction")
	assert.EqualValues(t, 7, a.renders.Load(), "every miss and bypass, and nothing else, reached the handler")
}

// TestObserverCountsStoresNotResponses: a miss whose response may not be
// stored is a miss, but no store; a page that varies is one store, not
// two with its Vary record.
func TestObserverCountsStoresNotResponses(t *testing.T) {
	t.Parallel()
	a := &app{respond: func(w http.ResponseWriter, r *http.Request, _ int64) {
		switch r.URL.Path {
		case "/private":
			w.Header().Set("Cache-Control", "private")
		case "/vary":
			w.Header().Set("Vary", "Accept-Language")
		}
		_, _ = io.WriteString(w, "page")
	}}
	obs := new(observetest.Recorder)
	_, h := setup(t, a, localcache.WithObserver(obs))

	get(t, h, "/private")
	get(t, h, "/vary", "Accept-Language", "fr")
	get(t, h, "/vary", "Accept-Language", "de")

	assert.Equal(t, map[string]float64{"hit": 0, "miss": 3, "bypass": 0}, requests(obs))
	assert.Equal(t, float64(2), figure(obs, observe.CacheStores), "one per language")
	assert.Equal(t, float64(3), figure(obs, observe.CacheEntries), "two variants and their Vary record")
}

func TestObserverCountsEvictionsForRoomOnly(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("x", 1000)
	a := &app{respond: func(w http.ResponseWriter, _ *http.Request, _ int64) { _, _ = io.WriteString(w, body) }}
	store := newStore(t, localcache.WithMaxBytes(3500)) // room for two pages
	obs := new(observetest.Recorder)
	h := cached(store, a, localcache.WithObserver(obs))

	for i := range 5 {
		get(t, h, fmt.Sprintf("/p%d", i))
	}
	assert.Equal(t, float64(5), figure(obs, observe.CacheStores))
	assert.Equal(t, float64(store.Len()), figure(obs, observe.CacheEntries))
	assert.Equal(t, float64(5-store.Len()), figure(obs, observe.CacheEvictions))
	assert.Positive(t, figure(obs, observe.CacheEvictions), "the store was filled past its bound")
	evicted := figure(obs, observe.CacheEvictions)

	// Purges and clears remove entries, but are not evictions, and the
	// count survives them.
	purge(t, store, []string{"/p4"}, nil)
	_, err := store.Clear(t.Context())
	require.NoError(t, err)
	assert.Equal(t, evicted, figure(obs, observe.CacheEvictions))
	assert.Equal(t, float64(0), figure(obs, observe.CacheEntries))
	assert.Equal(t, localcache.StoreStats{Evictions: uint64(evicted)}, store.StoreStats())
}

// TestObserverWithoutStatsReporter: a store that reports no figures
// leaves the store's metrics out, and the middleware's in.
func TestObserverWithoutStatsReporter(t *testing.T) {
	t.Parallel()
	obs := new(observetest.Recorder)
	h := cached(opaqueStore{newStore(t)}, &app{}, localcache.WithObserver(obs))
	get(t, h, "/a")
	get(t, h, "/a")

	assert.Equal(t, map[string]float64{"hit": 1, "miss": 1, "bypass": 0}, requests(obs))
	for _, m := range []observe.Metric{observe.CacheEntries, observe.CacheEvictions} {
		_, ok := obs.Value(m, "", "")
		assert.False(t, ok, m)
	}
}

// opaqueStore hides its store's StoreStats.
type opaqueStore struct{ localcache.Store }

func TestObserverNilIsRefused(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	tests := []struct {
		name string
		o    observe.Observer
		want string
	}{
		{"nil", nil, "WithObserver(nil): pass an observe.Observer"},
		{"typed nil", (*observetest.Recorder)(nil), "WithObserver((*observetest.Recorder)(nil)): pass an observe.Observer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw, err := localcache.NewMiddleware(store, localcache.WithObserver(tt.o))
			assert.Nil(t, mw)
			require.ErrorContains(t, err, tt.want)
			assert.PanicsWithValue(t, err.Error(), func() { localcache.Middleware(store, localcache.WithObserver(tt.o)) })
		})
	}
}

// TestEachMiddlewareReportsItsOwnRequests: two routes on one store each
// register a Source; an exporter adds their requests up.
func TestEachMiddlewareReportsItsOwnRequests(t *testing.T) {
	t.Parallel()
	obs := new(observetest.Recorder)
	store := newStore(t)
	articles := cached(store, &app{}, localcache.WithObserver(obs))
	search := cached(store, &app{}, localcache.WithObserver(obs))
	get(t, articles, "/articles/1")
	get(t, articles, "/articles/1")
	get(t, search, "/search?q=go")

	require.Equal(t, 2, obs.Sources())
	assert.Equal(t, map[string]float64{"hit": 1, "miss": 2, "bypass": 0}, requests(obs))
}
