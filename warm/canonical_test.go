package warm_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/gormpurge/gormpurge/warm"
)

// The warmer asks for a page as browsers do and as the caches key it (the
// canonical form of backends.CanonicalURL), however the URL was spelled, so
// that the page it fills is the one the next visitor hits.
func TestFetchesTheCanonicalForm(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.RequestURI)
		mu.Unlock()
	}))
	w := newWarmer(t, warm.WithBaseURL(srv.URL))
	sum := w.Fetch(context.Background(), []string{"/caf\u00e9?q=a b", "/tags/go%2ffeed", "/x?"}, nil)
	assert.Equal(t, 3, sum.ByStatus[http.StatusOK])
	mu.Lock()
	defer mu.Unlock()
	assert.ElementsMatch(t, []string{"/caf%C3%A9?q=a%20b", "/tags/go%2Ffeed", "/x"}, seen)
}

// A password holding "/", "?" or "#" never shows in New's errors, and a URL
// holding one is refused without showing it.
func TestPasswordsWithDelimitersNeverShow(t *testing.T) {
	const secret = "S3CR3T"
	for _, u := range []string{
		"https://admin:" + secret + "/x@www.example.com",
		"http://admin:" + secret + "#x@www.example.com",
		"http://admin:" + secret + "?x@www.example.com",
	} {
		_, err := warm.New(warm.WithBaseURL(u))
		if err != nil {
			assert.NotContains(t, err.Error(), secret, u)
		}
		w := newWarmer(t)
		var res warm.Result
		w.Fetch(context.Background(), []string{u}, func(r warm.Result) { res = r })
		assert.NotContains(t, res.URL, secret, u)
		if res.Err != nil {
			assert.NotContains(t, res.Err.Error(), secret, u)
		}
	}
}
