package localcache_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
)

// TestSecondListenerOfAnEventStreamIsNotHeldUp: concurrent misses of one
// URL are collapsed into one render, but an event stream is never stored,
// so a second listener must get its events while the first stream is
// still open, not when it ends.
func TestSecondListenerOfAnEventStreamIsNotHeldUp(t *testing.T) {
	t.Parallel()
	end := make(chan struct{})
	a := &app{respond: func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = fmt.Fprintf(w, "data: hello listener %d\n\n", n)
		w.(http.Flusher).Flush()
		select {
		case <-end:
		case <-r.Context().Done():
		}
	}}
	_, h := setup(t, a)
	srv := startServer(t, h)
	defer close(end)

	listen := func() (*bufio.Reader, func()) {
		req, err := http.NewRequestWithContext(untilDeadline(t), http.MethodGet, srv.URL+"/events", nil)
		require.NoError(t, err)
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		res, err := client.Do(req)
		require.NoError(t, err, "the listener never got its answer")
		assert.Equal(t, "MISS", res.Header.Get(localcache.XCache))
		return bufio.NewReader(res.Body), func() { _ = res.Body.Close() }
	}
	first, stop := listen()
	defer stop()
	assert.Equal(t, "data: hello listener 1\n", readLine(t, first))

	second, stop2 := listen() // the first stream is still open
	defer stop2()
	assert.Equal(t, "data: hello listener 2\n", readLine(t, second))
}

// TestClientThatNeverReadsDoesNotHoldUpOthers: a client that asks for a
// page and never reads it keeps the handler writing to it forever. Other
// clients of the same URL must still get the page, whether it is too
// large to store or not.
func TestClientThatNeverReadsDoesNotHoldUpOthers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		size int
	}{
		{"8 MB page, too large to store", 8 << 20},
		{"512 KB page, stored", 512 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			page := strings.Repeat("x", tt.size)
			started := make(chan struct{})
			a := &app{respond: func(w http.ResponseWriter, _ *http.Request, n int64) {
				if n == 1 {
					close(started)
				}
				for chunk := range chunksOf(page, 32<<10) {
					if _, err := io.WriteString(w, chunk); err != nil {
						return
					}
				}
			}}
			_, h := setup(t, a)
			srv := startServer(t, h)

			stalled := rawGet(t, srv, "/page")
			<-started
			defer reset(t, srv, stalled)

			got := fetch(t, srv, "/page")
			assert.Equal(t, http.StatusOK, got.status)
			assert.Equal(t, len(page), len(got.body), "the whole page")
		})
	}
}

// TestRequestsWaitingOnAPanickingRenderRenderTheirOwn: when the render the
// others wait on panics, the panic reaches its own request only, nothing
// is stored, and the others get the page.
func TestRequestsWaitingOnAPanickingRenderRenderTheirOwn(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	a := &app{respond: func(w http.ResponseWriter, _ *http.Request, n int64) {
		if n == 1 {
			_, _ = io.WriteString(w, "half a pa")
			close(entered)
			<-release
			panic(http.ErrAbortHandler)
		}
		_, _ = io.WriteString(w, "the page")
	}}
	_, h := setup(t, a)

	var wg sync.WaitGroup
	wg.Go(func() {
		assert.PanicsWithValue(t, http.ErrAbortHandler, func() { get(t, h, "/p") })
	})
	<-entered
	const others = 5
	results := make(chan result, others)
	for range others {
		wg.Go(func() { results <- get(t, h, "/p") })
	}
	close(release)
	wg.Wait()
	close(results)
	for r := range results {
		require.Equal(t, http.StatusOK, r.status)
		assert.Equal(t, "the page", r.body)
	}
}
