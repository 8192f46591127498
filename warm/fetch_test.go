package warm_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gormpurge/gormpurge/warm"
)

func TestFetchFetchesEachDistinctURLOnce(t *testing.T) {
	var hits counter
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.add(r.URL.Path)
		_, _ = w.Write([]byte("page " + r.URL.Path))
	}))
	w := newWarmer(t, warm.WithBaseURL(srv.URL), warm.WithConcurrency(3))

	urls := []string{"/a", "/b", "/a", srv.URL + "/c", "/b", "/a", "/d", srv.URL + "/c"}
	var seen []string
	sum := w.Fetch(context.Background(), urls, func(r warm.Result) {
		seen = append(seen, r.URL) // progress runs on this goroutine, one call at a time
		assert.NoError(t, r.Err)
		assert.Equal(t, http.StatusOK, r.Status)
		assert.Equal(t, int64(len("page /a")), r.Bytes)
	})

	assert.Equal(t, map[string]int{"/a": 1, "/b": 1, "/c": 1, "/d": 1}, hits.all())
	assert.ElementsMatch(t, []string{"/a", "/b", srv.URL + "/c", "/d"}, seen, "progress is called once per distinct URL")
	assert.Equal(t, 4, sum.URLs)
	assert.Equal(t, 4, sum.OK)
	assert.Equal(t, 0, sum.Failed)
	assert.Equal(t, map[int]int{200: 4}, sum.ByStatus)
	assert.LessOrEqual(t, sum.Min, sum.Median)
	assert.LessOrEqual(t, sum.Median, sum.P95)
	assert.LessOrEqual(t, sum.P95, sum.Max)
	assert.Equal(t, warm.Stats{Fetched: 4}, w.Stats())
}

// barrier is a handler that holds each request until limit requests are in
// flight at once (or every expected request has arrived), and records the
// most it saw in flight. A Warmer that respects the limit cannot push the
// maximum past it, and one that fetches concurrently at all must reach it,
// or the test hangs.
type barrier struct {
	limit, total int

	mu                     sync.Mutex
	cond                   *sync.Cond
	inflight, max, arrived int
	wave                   int // incremented to release the requests waiting
}

func (b *barrier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.inflight++
	b.arrived++
	b.max = max(b.max, b.inflight)
	mine := b.wave
	if b.inflight >= b.limit || b.arrived == b.total {
		b.wave++
		b.cond.Broadcast()
	}
	for b.wave == mine {
		b.cond.Wait()
	}
	b.inflight--
	b.mu.Unlock()
	_, _ = w.Write([]byte("ok"))
}

func TestFetchRespectsConcurrency(t *testing.T) {
	for _, limit := range []int{1, 3, 8} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			const total = 40
			b := &barrier{limit: limit, total: total}
			b.cond = sync.NewCond(&b.mu)
			srv := newServer(t, b)
			w := newWarmer(t, warm.WithBaseURL(srv.URL), warm.WithConcurrency(limit))

			urls := make([]string, total)
			for i := range urls {
				urls[i] = fmt.Sprintf("/p/%d", i)
			}
			sum := w.Fetch(context.Background(), urls, nil)

			require.Equal(t, total, sum.OK)
			b.mu.Lock()
			defer b.mu.Unlock()
			assert.Equal(t, limit, b.max, "the most fetches in flight at once")
		})
	}
}

func TestFetchStopsWhenContextEnds(t *testing.T) {
	g := newGate(t)
	defer g.open()
	w := newWarmer(t, warm.WithHandler(g), warm.WithConcurrency(1))
	errShutdown := errors.New("operator pressed ^C")
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		<-g.arrived // the first fetch is in flight
		cancel(errShutdown)
	}()

	got := map[string]error{}
	sum := w.Fetch(ctx, []string{"/1", "/2", "/3"}, func(r warm.Result) { got[r.URL] = r.Err })

	assert.Equal(t, warm.Summary{URLs: 3, Failed: 3, ByStatus: map[int]int{0: 3}, Elapsed: sum.Elapsed}, sum)
	assert.ErrorIs(t, got["/1"], errShutdown, "the fetch in flight is cancelled")
	for _, u := range []string{"/2", "/3"} {
		assert.ErrorIs(t, got[u], errShutdown)
		assert.ErrorContains(t, got[u], "warm: "+u+": not fetched: ")
	}
}

func TestInvalidURLs(t *testing.T) {
	tests := []struct {
		url  string
		opts []warm.Option
		want string
	}{
		{"", nil, `need an absolute http or https URL, or a path beginning with "/"`},
		{"posts/1", nil, `need an absolute http or https URL`},
		{"ftp://example.com/x", nil, `need an absolute http or https URL`},
		{"mailto:ops@example.com", nil, `need an absolute http or https URL`},
		{"//example.com/x", nil, `need an absolute http or https URL`},
		{"http:///x", nil, `need an absolute http or https URL`},
		{"/posts/1", nil, `is a path: set WithBaseURL`},
		{"/posts/1", []warm.Option{warm.WithHTTPClient(http.DefaultClient)}, `is a path: set WithBaseURL`},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			onResult, ch := results()
			w := newWarmer(t, append(tt.opts, onResult)...)

			var res warm.Result
			sum := w.Fetch(context.Background(), []string{tt.url}, func(r warm.Result) { res = r })
			assert.Equal(t, warm.Summary{URLs: 1, Failed: 1, ByStatus: map[int]int{0: 1}, Elapsed: sum.Elapsed}, sum)
			assert.Equal(t, tt.url, res.URL)
			assert.ErrorContains(t, res.Err, fmt.Sprintf("%q", tt.url), "the error names the URL")
			assert.ErrorContains(t, res.Err, tt.want)
			assert.Equal(t, res, <-ch)

			w.Enqueue(tt.url) // reported before Enqueue returns
			select {
			case r := <-ch:
				assert.Equal(t, res.Err.Error(), r.Err.Error())
			default:
				t.Fatal("Enqueue did not report the invalid URL")
			}
			assert.Equal(t, warm.Stats{Failed: 2}, w.Stats())
		})
	}
}

func TestFetchProgressPanicLeavesNoFetchBehind(t *testing.T) {
	g := newGate(t) // holds /slow until its context ends
	h := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			g.ServeHTTP(rw, r)
		}
	})
	w := newWarmer(t, warm.WithHandler(h), warm.WithConcurrency(2))
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	assert.PanicsWithValue(t, "progress bar broke", func() {
		w.Fetch(context.Background(), []string{"/slow", "/fast"}, func(r warm.Result) {
			assert.Equal(t, "/fast", r.URL)
			panic("progress bar broke")
		})
	})
	assert.Equal(t, "/slow", <-g.arrived)
	// Deferred: goleak checks that /slow was cancelled and its goroutine
	// ended, although nobody receives its result.
}
