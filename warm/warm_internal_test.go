package warm

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock is a clock that moves only when told, and announces every timer
// it starts on started, so that a test knows when the Warmer waits.
type fakeClock struct {
	started chan time.Duration

	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at   time.Time
	c    chan time.Time
	done bool // fired or stopped
}

func newFakeClock() *fakeClock {
	return &fakeClock{
		started: make(chan time.Duration, 100),
		now:     time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Timer(d time.Duration) (<-chan time.Time, func()) {
	t := &fakeTimer{c: make(chan time.Time, 1)}
	c.mu.Lock()
	t.at = c.now.Add(d)
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	c.started <- d
	return t.c, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		t.done = true
	}
}

// Advance moves the clock forward by d and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		if !t.done && !t.at.After(c.now) {
			t.done = true
			t.c <- c.now
		}
	}
}

// withClock is an Option that replaces the Warmer's clock.
func withClock(c clock) Option {
	return func(cfg *config) { cfg.clock = c }
}

// delayed returns a Warmer with a fake clock and the given delay, fetching
// through a handler that records the clock's time of each request, and the
// channels of its results.
func delayed(t *testing.T, delay time.Duration, opts ...Option) (*Warmer, *fakeClock, <-chan Result, func() []time.Time) {
	clk := newFakeClock()
	var (
		mu   sync.Mutex
		hits []time.Time
	)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		hits = append(hits, clk.Now())
	})
	results := make(chan Result, 100)
	w, err := New(append([]Option{WithHandler(h), WithDelay(delay), withClock(clk),
		WithLogger(slog.New(slog.DiscardHandler)), WithOnResult(func(r Result) { results <- r })}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	return w, clk, results, func() []time.Time {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Time(nil), hits...)
	}
}

func TestEnqueueWaitsForTheDelay(t *testing.T) {
	const delay = 5 * time.Second
	w, clk, results, hits := delayed(t, delay)
	enqueued := clk.Now()

	w.Enqueue("/a")
	require.Equal(t, delay, <-clk.started, "the warmer waits for the delay")

	clk.Advance(delay - time.Millisecond)
	assert.Empty(t, hits(), "not fetched before the delay")
	assert.Equal(t, Stats{Queued: 1}, w.Stats())

	clk.Advance(time.Millisecond)
	r := <-results
	assert.Equal(t, "/a", r.URL)
	assert.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, []time.Time{enqueued.Add(delay)}, hits(), "fetched once the delay passed")
	assert.Equal(t, Stats{Fetched: 1}, w.Stats())
}

func TestEnqueueDedupesWhilePending(t *testing.T) {
	const delay = time.Second
	w, clk, results, hits := delayed(t, delay)

	for range 100 {
		w.Enqueue("/a")
	}
	w.Enqueue("/b", "/a", "/b")
	assert.Equal(t, Stats{Queued: 2}, w.Stats())
	<-clk.started

	clk.Advance(delay)
	got := []string{(<-results).URL, (<-results).URL}
	assert.ElementsMatch(t, []string{"/a", "/b"}, got)
	assert.Len(t, hits(), 2)

	w.Enqueue("/a") // no longer waiting: queued again
	assert.Equal(t, Stats{Queued: 1, Fetched: 2}, w.Stats())
	<-clk.started
	clk.Advance(delay)
	assert.Equal(t, "/a", (<-results).URL)
	assert.Len(t, hits(), 3)
}

// A URL purged again while it waits needs the whole delay again, for the
// second purge to propagate.
func TestEnqueueAgainPostponesTheFetch(t *testing.T) {
	const delay = 5 * time.Second
	w, clk, results, hits := delayed(t, delay)
	w.Enqueue("/a", "/b")
	require.Equal(t, delay, <-clk.started)

	clk.Advance(4 * time.Second)
	second := clk.Now()
	w.Enqueue("/a")
	assert.Equal(t, Stats{Queued: 2}, w.Stats())

	clk.Advance(time.Second) // /b is due; so was /a, before it was enqueued again
	assert.Equal(t, "/b", (<-results).URL)
	select {
	case r := <-results:
		t.Fatalf("%s fetched %v after it was enqueued again", r.URL, clk.Now().Sub(second))
	case d := <-clk.started:
		assert.Equal(t, 4*time.Second, d, "the warmer waits for the delay after the second Enqueue")
	}
	clk.Advance(4*time.Second - time.Millisecond)
	assert.Len(t, hits(), 1)
	assert.Equal(t, Stats{Queued: 1, Fetched: 1}, w.Stats())

	clk.Advance(time.Millisecond)
	assert.Equal(t, "/a", (<-results).URL)
	assert.Equal(t, second.Add(delay), hits()[1])
	assert.Equal(t, Stats{Fetched: 2}, w.Stats())
}

// However often a URL is enqueued again, it takes one place against
// WithQueueSize, and its stale slots do not pile up in the queue.
func TestEnqueueAgainTakesOnePlace(t *testing.T) {
	const size = 2
	w, clk, results, hits := delayed(t, time.Second, WithQueueSize(size))
	w.Enqueue("/a", "/b")
	<-clk.started
	for range 1000 {
		w.Enqueue("/b", "/a")
	}
	w.Enqueue("/c") // the queue is full
	assert.Equal(t, Stats{Queued: 2, Dropped: 1}, w.Stats())
	w.mu.Lock()
	assert.LessOrEqual(t, len(w.queue), 2*size+1, "stale slots are compacted")
	w.mu.Unlock()

	clk.Advance(time.Second)
	assert.ElementsMatch(t, []string{"/a", "/b"}, []string{(<-results).URL, (<-results).URL})
	w.Enqueue("/d", "/d")
	require.NoError(t, w.Close(context.Background()))
	assert.Len(t, hits(), 2, "each URL was fetched once")
	assert.Equal(t, Stats{Fetched: 2, Dropped: 2}, w.Stats(), "/d is dropped once")
}

func TestEnqueueWithoutDelayStartsNoTimer(t *testing.T) {
	w, clk, results, _ := delayed(t, 0)
	w.Enqueue("/a")
	assert.Equal(t, "/a", (<-results).URL)
	assert.Empty(t, clk.started)
}

func TestSummaryPercentiles(t *testing.T) {
	tests := []struct {
		n                        int
		min, median, p95, maxDur time.Duration
	}{
		{1, 1, 1, 1, 1},
		{2, 1, 1, 2, 2},
		{20, 1, 10, 19, 20},
		{100, 1, 50, 95, 100},
		{101, 1, 51, 96, 101},
	}
	for _, tt := range tests {
		var ty tally
		for i := tt.n; i >= 1; i-- { // out of order
			ty.add(Result{Status: http.StatusOK, Duration: time.Duration(i)})
		}
		ty.add(Result{Err: context.Canceled, Duration: time.Hour}) // no answer: not timed
		s := ty.summary(time.Minute)
		assert.Equal(t, []time.Duration{tt.min, tt.median, tt.p95, tt.maxDur}, []time.Duration{s.Min, s.Median, s.P95, s.Max}, "n=%d", tt.n)
		assert.Equal(t, tt.n+1, s.URLs)
		assert.Equal(t, time.Minute, s.Elapsed)
	}
}

// The default client sends nothing through a proxy named by the
// environment (HTTP_PROXY and the like): over plain http, a proxy sees
// every header, the credentials included. net/http reads those variables
// once per process and never proxies loopback, hence a look at the
// transport rather than a request.
func TestDefaultClientUsesNoProxyFromTheEnvironment(t *testing.T) {
	w, err := New(WithBaseURL("http://www.example.com"), WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	tr, ok := w.client.Transport.(*http.Transport)
	require.True(t, ok)
	assert.Nil(t, tr.Proxy)
}
