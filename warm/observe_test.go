package warm_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/observe"
	"github.com/gormpurge/gormpurge/observe/observetest"
	"github.com/gormpurge/gormpurge/warm"
)

// observer is an Observer that does nothing: options_test.go refuses a
// typed nil of it, by its name.
type observer struct{ observe.Nop }

// figure returns the value of obs's figure of m with outcome; 0 when there
// is none.
func figure(obs *observetest.Recorder, m observe.Metric, outcome string) float64 {
	v, _ := obs.Value(m, "", outcome)
	return v
}

func TestObserverSeesFetchedAndFailedURLs(t *testing.T) {
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
		}
	}))
	obs := new(observetest.Recorder)
	w := newWarmer(t, warm.WithBaseURL(srv.URL), warm.WithObserver(obs))

	sum := w.Fetch(t.Context(), []string{"/a", "/b", "/missing", "http://elsewhere.example/x"}, nil)
	require.Equal(t, 2, sum.OK)
	require.Equal(t, 1, sum.Refused)

	assert.Equal(t, 1, obs.Sources(), "one Source per Warmer")
	assert.ElementsMatch(t, []observe.Figure{
		{Series: observe.Series{Metric: observe.Warmed, Outcome: warm.OutcomeFetched}, Value: 2},
		{Series: observe.Series{Metric: observe.Warmed, Outcome: warm.OutcomeFailed}, Value: 2}, // the 404 and the refused URL
		{Series: observe.Series{Metric: observe.Warmed, Outcome: warm.OutcomeDropped}, Value: 0},
		{Series: observe.Series{Metric: observe.WarmQueued}, Value: 0},
	}, obs.Figures(t.Context()))
}

func TestObserverSeesQueuedAndDroppedURLsUntilClose(t *testing.T) {
	obs := new(observetest.Recorder)
	w, err := warm.New(warm.WithHandler(http.NotFoundHandler()), warm.WithDelay(time.Hour), warm.WithObserver(obs), warm.WithLogger(quiet))
	require.NoError(t, err)

	w.Enqueue("/a", "/b", "/a", "/c")
	assert.Equal(t, float64(3), figure(obs, observe.WarmQueued, ""), "distinct URLs waiting")

	require.NoError(t, w.Close(context.Background()))
	assert.Equal(t, uint64(3), w.Stats().Dropped)
	assert.Zero(t, obs.Sources(), "Close removes the Warmer's Source")
	assert.Equal(t, 1, obs.Stops())

	require.NoError(t, w.Close(context.Background()))
	assert.Equal(t, 1, obs.Stops(), "a second Close stops nothing")
}

// TestObserverSeesBackgroundFetchesInProcess: URLs enqueued for the
// application's handler are reported as they end.
func TestObserverSeesBackgroundFetchesInProcess(t *testing.T) {
	done := make(chan warm.Result, 2)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ok", func(http.ResponseWriter, *http.Request) {})
	obs := new(observetest.Recorder)
	w := newWarmer(t, warm.WithHandler(mux), warm.WithObserver(obs), warm.WithOnResult(func(r warm.Result) { done <- r }))

	w.Enqueue("/ok", "/nope")
	<-done
	<-done
	assert.Equal(t, float64(1), figure(obs, observe.Warmed, warm.OutcomeFetched))
	assert.Equal(t, float64(1), figure(obs, observe.Warmed, warm.OutcomeFailed))
	assert.Equal(t, float64(0), figure(obs, observe.WarmQueued, ""))
}
