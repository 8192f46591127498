package warm_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/warm"
)

func TestFetchSummaryCountsByStatus(t *testing.T) {
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Header().Set("X-Cache", "MISS")
			_, _ = w.Write([]byte("ok"))
		case "/boom":
			http.Error(w, "boom", http.StatusInternalServerError)
		default:
			http.NotFound(w, r)
		}
	}))
	refused := closedURL(t)             // on an allowed host: fetched, and the connection is refused
	elsewhere := "http://localhost:1/x" // on a host not allowed: not fetched
	w := newWarmer(t, warm.WithBaseURL(srv.URL), warm.WithAllowedHosts("127.0.0.1"))

	got := map[string]warm.Result{}
	sum := w.Fetch(context.Background(), []string{"/ok", "/missing", "/boom", refused, elsewhere}, func(r warm.Result) { got[r.URL] = r })

	assert.Equal(t, 5, sum.URLs)
	assert.Equal(t, 1, sum.OK)
	assert.Equal(t, 4, sum.Failed)
	assert.Equal(t, 1, sum.Refused)
	assert.Equal(t, map[int]int{0: 2, 200: 1, 404: 1, 500: 1}, sum.ByStatus)
	assert.Contains(t, sum.String(), "5 URLs: 1 OK, 4 failed (404×1, 500×1, error×1, refused×1); p50 ")
	assert.ErrorIs(t, got[elsewhere].Err, warm.ErrRefused)
	assert.NotErrorIs(t, got[refused].Err, warm.ErrRefused)

	assert.Equal(t, "MISS", got["/ok"].Cache)
	assert.Equal(t, http.StatusNotFound, got["/missing"].Status)
	assert.NoError(t, got["/missing"].Err, "an answer is not an error, whatever its status")
	assert.Equal(t, 0, got[refused].Status)
	require.Error(t, got[refused].Err)
	assert.Contains(t, got[refused].Err.Error(), refused)
	assert.Equal(t, warm.Stats{Fetched: 1, Failed: 4, Refused: 1}, w.Stats())
}

func TestSummaryString(t *testing.T) {
	tests := []struct {
		name string
		sum  warm.Summary
		want string
	}{
		{"empty", warm.Summary{}, "0 URLs: 0 OK, 0 failed in 0s"},
		{"one", warm.Summary{URLs: 1, Failed: 1, ByStatus: map[int]int{0: 1}}, "1 URL: 0 OK, 1 failed (error×1) in 0s"},
		{"all OK", warm.Summary{
			URLs: 3, OK: 3, ByStatus: map[int]int{200: 2, 204: 1},
			Min: time.Millisecond, Median: 2345 * time.Microsecond, P95: 3 * time.Millisecond, Max: 3 * time.Millisecond,
			Elapsed: 4 * time.Millisecond,
		}, "3 URLs: 3 OK, 0 failed; p50 2.3ms p95 3ms max 3ms in 4ms"},
		{"failures", warm.Summary{
			URLs: 120, OK: 118, Failed: 2, ByStatus: map[int]int{0: 1, 200: 118, 404: 1},
			Min: 3 * time.Millisecond, Median: 12345 * time.Microsecond, P95: 40 * time.Millisecond, Max: 80 * time.Millisecond,
			Elapsed: 1234 * time.Millisecond,
		}, "120 URLs: 118 OK, 2 failed (404×1, error×1); p50 12ms p95 40ms max 80ms in 1.2s"},
		{"no answer at all", warm.Summary{
			URLs: 2, Failed: 2, ByStatus: map[int]int{0: 2}, Elapsed: 350 * time.Microsecond,
		}, "2 URLs: 0 OK, 2 failed (error×2) in 350µs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.sum.String())
		})
	}
}
