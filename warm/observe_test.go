package warm_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/observe"
	"github.com/gormpurge/gormpurge/warm"
)

// observer is an Observer that keeps the Sources it is given and reads
// them when the test collects, as an exporter does.
type observer struct {
	observe.Nop
	mu      sync.Mutex
	sources map[int]observe.Source
	next    int
	stopped int
}

func (o *observer) Watch(s observe.Source) func() {
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
		o.stopped++
	}
}

// reading names one figure: its metric and outcome.
type reading struct {
	metric  observe.Metric
	outcome string
}

// collect reads every Source, adding up the readings of each figure, and
// returns them with the number of Sources.
func (o *observer) collect(t *testing.T) (map[reading]float64, int) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	got := make(map[reading]float64)
	for _, s := range o.sources {
		s(t.Context(), func(r observe.Reading) { got[reading{r.Metric, r.Outcome}] += r.Value })
	}
	return got, len(o.sources)
}

func TestObserverSeesFetchedAndFailedURLs(t *testing.T) {
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
		}
	}))
	obs := new(observer)
	w := newWarmer(t, warm.WithBaseURL(srv.URL), warm.WithObserver(obs))

	sum := w.Fetch(t.Context(), []string{"/a", "/b", "/missing", "http://elsewhere.example/x"}, nil)
	require.Equal(t, 2, sum.OK)
	require.Equal(t, 1, sum.Refused)

	got, n := obs.collect(t)
	assert.Equal(t, 1, n, "one Source per Warmer")
	assert.Equal(t, map[reading]float64{
		{observe.Warmed, warm.OutcomeFetched}: 2,
		{observe.Warmed, warm.OutcomeFailed}:  2, // the 404 and the refused URL
		{observe.Warmed, warm.OutcomeDropped}: 0,
		{observe.WarmQueued, ""}:              0,
	}, got)
}

func TestObserverSeesQueuedAndDroppedURLsUntilClose(t *testing.T) {
	obs := new(observer)
	w, err := warm.New(warm.WithHandler(http.NotFoundHandler()), warm.WithDelay(time.Hour), warm.WithObserver(obs), warm.WithLogger(quiet))
	require.NoError(t, err)

	w.Enqueue("/a", "/b", "/a", "/c")
	got, _ := obs.collect(t)
	assert.Equal(t, float64(3), got[reading{observe.WarmQueued, ""}], "distinct URLs waiting")

	require.NoError(t, w.Close(context.Background()))
	assert.Equal(t, uint64(3), w.Stats().Dropped)
	_, n := obs.collect(t)
	assert.Zero(t, n, "Close removes the Warmer's Source")
	assert.Equal(t, 1, obs.stopped)

	require.NoError(t, w.Close(context.Background()))
	assert.Equal(t, 1, obs.stopped, "a second Close stops nothing")
}

// TestObserverSeesBackgroundFetchesInProcess: URLs enqueued for the
// application's handler are reported as they end.
func TestObserverSeesBackgroundFetchesInProcess(t *testing.T) {
	done := make(chan warm.Result, 2)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ok", func(http.ResponseWriter, *http.Request) {})
	obs := new(observer)
	w := newWarmer(t, warm.WithHandler(mux), warm.WithObserver(obs), warm.WithOnResult(func(r warm.Result) { done <- r }))

	w.Enqueue("/ok", "/nope")
	<-done
	<-done
	got, _ := obs.collect(t)
	assert.Equal(t, float64(1), got[reading{observe.Warmed, warm.OutcomeFetched}])
	assert.Equal(t, float64(1), got[reading{observe.Warmed, warm.OutcomeFailed}])
	assert.Equal(t, float64(0), got[reading{observe.WarmQueued, ""}])
}
