package localcache_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/observe"
)

// recorder is an Observer that keeps the Sources it is given and reads
// them when the test collects, as an exporter does.
type recorder struct {
	observe.Nop
	mu      sync.Mutex
	sources map[int]observe.Source
	next    int
}

func (o *recorder) Watch(s observe.Source) func() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.sources == nil {
		o.sources = make(map[int]observe.Source)
	}
	id := o.next
	o.next++
	o.sources[id] = s
	return func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		delete(o.sources, id)
	}
}

// reading names one figure: its metric and outcome.
type reading struct {
	metric  observe.Metric
	outcome string
}

// collect reads every Source, adding up the readings of each figure.
func (o *recorder) collect(t *testing.T) map[reading]float64 {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	got := make(map[reading]float64)
	for _, s := range o.sources {
		s(t.Context(), func(r observe.Reading) { got[reading{r.Metric, r.Outcome}] += r.Value })
	}
	return got
}

// requests returns the CacheRequests figures of got by outcome.
func requests(got map[reading]float64) map[string]float64 {
	return map[string]float64{
		localcache.OutcomeHit:    got[reading{observe.CacheRequests, localcache.OutcomeHit}],
		localcache.OutcomeMiss:   got[reading{observe.CacheRequests, localcache.OutcomeMiss}],
		localcache.OutcomeBypass: got[reading{observe.CacheRequests, localcache.OutcomeBypass}],
	}
}

func TestObserverCountsRequestsByOutcome(t *testing.T) {
	t.Parallel()
	obs := new(recorder)
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

	got := obs.collect(t)
	assert.Equal(t, map[string]float64{"hit": 3, "miss": 3, "bypass": 4}, requests(got))
	assert.Equal(t, float64(2), got[reading{observe.CacheStores, ""}], "the two GET misses of /a")
	assert.Equal(t, float64(1), got[reading{observe.CacheEntries, ""}])
	assert.Equal(t, float64(0), got[reading{observe.CacheEvictions, ""}], "a purge is no eviction")
	assert.EqualValues(t, 7, a.renders.Load(), "every miss and bypass, and nothing else, reached the handler")
}

// TestObserverCountsACollapsedMissAsAHit: requests that waited on a
// concurrent render of their page got it without the handler: hits.
func TestObserverCountsACollapsedMissAsAHit(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	a := &app{respond: func(w http.ResponseWriter, _ *http.Request, n int64) {
		if n == 1 {
			close(entered)
			<-release
		}
		_, _ = io.WriteString(w, "hot")
	}}
	obs := new(recorder)
	_, h := setup(t, a, localcache.WithObserver(obs))

	const visitors = 10
	var wg sync.WaitGroup
	wg.Go(func() { get(t, h, "/hot") })
	<-entered
	for range visitors - 1 {
		wg.Go(func() { get(t, h, "/hot") })
	}
	close(release)
	wg.Wait()

	got := obs.collect(t)
	assert.Equal(t, map[string]float64{"hit": visitors - 1, "miss": 1, "bypass": 0}, requests(got))
	assert.Equal(t, float64(1), got[reading{observe.CacheStores, ""}])
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
	obs := new(recorder)
	_, h := setup(t, a, localcache.WithObserver(obs))

	get(t, h, "/private")
	get(t, h, "/vary", "Accept-Language", "fr")
	get(t, h, "/vary", "Accept-Language", "de")

	got := obs.collect(t)
	assert.Equal(t, map[string]float64{"hit": 0, "miss": 3, "bypass": 0}, requests(got))
	assert.Equal(t, float64(2), got[reading{observe.CacheStores, ""}], "one per language")
	assert.Equal(t, float64(3), got[reading{observe.CacheEntries, ""}], "two variants and their Vary record")
}

func TestObserverCountsEvictionsForRoomOnly(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("x", 1000)
	a := &app{respond: func(w http.ResponseWriter, _ *http.Request, _ int64) { _, _ = io.WriteString(w, body) }}
	store := newStore(t, localcache.WithMaxBytes(3500)) // room for two pages
	obs := new(recorder)
	h := cached(store, a, localcache.WithObserver(obs))

	for i := range 5 {
		get(t, h, fmt.Sprintf("/p%d", i))
	}
	got := obs.collect(t)
	assert.Equal(t, float64(5), got[reading{observe.CacheStores, ""}])
	assert.Equal(t, float64(store.Len()), got[reading{observe.CacheEntries, ""}])
	assert.Equal(t, float64(5-store.Len()), got[reading{observe.CacheEvictions, ""}])
	assert.Positive(t, got[reading{observe.CacheEvictions, ""}], "the store was filled past its bound")
	evicted := got[reading{observe.CacheEvictions, ""}]

	// Purges and clears remove entries, but are not evictions, and the
	// count survives them.
	purge(t, store, []string{"/p4"}, nil)
	_, err := store.Clear(t.Context())
	require.NoError(t, err)
	got = obs.collect(t)
	assert.Equal(t, evicted, got[reading{observe.CacheEvictions, ""}])
	assert.Equal(t, float64(0), got[reading{observe.CacheEntries, ""}])
	assert.Equal(t, localcache.StoreStats{Evictions: uint64(evicted)}, store.StoreStats())
}

// TestObserverWithoutStatsReporter: a store that reports no figures
// leaves the store's metrics out, and the middleware's in.
func TestObserverWithoutStatsReporter(t *testing.T) {
	t.Parallel()
	obs := new(recorder)
	h := cached(opaqueStore{newStore(t)}, &app{}, localcache.WithObserver(obs))
	get(t, h, "/a")
	get(t, h, "/a")

	got := obs.collect(t)
	assert.Equal(t, map[string]float64{"hit": 1, "miss": 1, "bypass": 0}, requests(got))
	assert.NotContains(t, got, reading{observe.CacheEntries, ""})
	assert.NotContains(t, got, reading{observe.CacheEvictions, ""})
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
		{"typed nil", (*recorder)(nil), "WithObserver((*localcache_test.recorder)(nil)): pass an observe.Observer"},
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
	obs := new(recorder)
	store := newStore(t)
	articles := cached(store, &app{}, localcache.WithObserver(obs))
	search := cached(store, &app{}, localcache.WithObserver(obs))
	get(t, articles, "/articles/1")
	get(t, articles, "/articles/1")
	get(t, search, "/search?q=go")

	require.Len(t, obs.sources, 2)
	assert.Equal(t, map[string]float64{"hit": 1, "miss": 2, "bypass": 0}, requests(obs.collect(t)))
}
