package akamai_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/akamai"
	"github.com/gormpurge/gormpurge/backends/akamai/akamaitest"
)

// virtualClock is an akamai.Clock whose time moves only when each of its
// actors is asleep on it: it then jumps to the earliest wake-up. An actor is
// a worker, asleep either in the backend's pacing or, while its request is
// on the wire, in the fake's latency. Time spent computing or in the HTTP
// stack does not count, so what a test measures on it does not depend on
// the machine's speed or load.
type virtualClock struct {
	mu      sync.Mutex
	now     time.Time
	actors  int
	waiters []*sleeper
}

type sleeper struct {
	until time.Time
	done  chan struct{}
}

func newVirtualClock(actors int) *virtualClock {
	return &virtualClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), actors: actors}
}

func (c *virtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *virtualClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	c.mu.Lock()
	s := &sleeper{until: c.now.Add(d), done: make(chan struct{})}
	c.waiters = append(c.waiters, s)
	c.advanceLocked()
	c.mu.Unlock()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		defer c.mu.Unlock()
		if i := slices.Index(c.waiters, s); i >= 0 {
			c.waiters = slices.Delete(c.waiters, i, i+1)
		}
		return ctx.Err()
	}
}

// leave says that an actor is done: time no longer waits for it.
func (c *virtualClock) leave() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.actors--
	c.advanceLocked()
}

// advanceLocked wakes the earliest sleepers, moving the clock to their
// time, while every actor is asleep.
func (c *virtualClock) advanceLocked() {
	for len(c.waiters) > 0 && len(c.waiters) >= c.actors {
		next := c.waiters[0].until
		for _, s := range c.waiters {
			if s.until.Before(next) {
				next = s.until
			}
		}
		if next.After(c.now) {
			c.now = next
		}
		c.waiters = slices.DeleteFunc(c.waiters, func(s *sleeper) bool {
			if s.until.After(c.now) {
				return false
			}
			close(s.done)
			return true
		})
	}
}

// lockedRand is a seeded source of latencies, safe for the fake's
// goroutines.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (l *lockedRand) between(lo, hi time.Duration) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return lo + time.Duration(l.r.Int64N(int64(hi-lo)+1))
}

func (l *lockedRand) intN(lo, hi int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return lo + l.r.IntN(hi-lo+1)
}

// maxLatency bounds each way of the fake's random latency in the pacing
// tests.
const maxLatency = 100 * time.Millisecond

// A bulk purge of any size, sent by concurrent workers as a dispatcher runs
// them over a network whose latency varies from request to request, is
// never answered 429 by a bucket that debits requests when they arrive, and
// once the initial bucket is spent it runs at no less than 95% of Akamai's
// documented rate. The clock is virtual: the figures do not depend on the
// machine.
//
// It is long because it is one table of purges and the one simulation
// that runs them; the simulation's parts are helpers below.
func TestBurstsNeverHitTheRateLimitAndKeepTheRate(t *testing.T) {
	published := akamai.PublishedRateLimits()
	wire := [2]time.Duration{time.Millisecond, maxLatency}
	tests := []struct {
		name    string
		kind    akamai.Kind
		n       int // objects
		batch   [2]int
		bucket  akamai.Bucket // the bucket that sets the pace
		workers int
		arrive  [2]time.Duration // the latency's bounds, each way
		answer  [2]time.Duration
	}{
		{"12,000 URLs", akamai.KindURL, 12_000, [2]int{200, 1_400}, published.URLs, 2, wire, wire},
		{"12,000 URLs, slow to arrive, quick to answer", akamai.KindURL, 12_000, [2]int{1_000, 1_000}, published.URLs, 2,
			[2]time.Duration{maxLatency, maxLatency}, [2]time.Duration{time.Millisecond, time.Millisecond}},
		{"25,000 URLs", akamai.KindURL, 25_000, [2]int{200, 1_400}, published.URLs, 4, wire, wire},
		{"60,000 URLs", akamai.KindURL, 60_000, [2]int{200, 1_400}, published.URLs, 8, wire, wire},
		{"600 requests of one URL", akamai.KindURL, 600, [2]int{1, 1}, published.Requests, 16, wire, wire},
		{"12,000 tags", akamai.KindTag, 12_000, [2]int{50, 1_000}, published.Tags, 4, wire, wire},
		{"1,000 CP codes", akamai.KindCPCode, 1_000, [2]int{10, 100}, published.CPCodes, 2, wire, wire},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rnd := &lockedRand{r: rand.New(rand.NewPCG(uint64(i), 42))}
			clock := newVirtualClock(tt.workers)
			start := clock.Now()
			srv := akamaitest.NewServer(akamaitest.WithClock(clock),
				akamaitest.WithLatency(func() (time.Duration, time.Duration) {
					return rnd.between(tt.arrive[0], tt.arrive[1]), rnd.between(tt.answer[0], tt.answer[1])
				}))
			t.Cleanup(srv.Close)
			b, err := akamai.New(akamai.WithCredentials(srv.Credentials()), akamai.WithHTTPClient(srv.Client()),
				akamai.WithClock(clock))
			require.NoError(t, err)
			t.Cleanup(func() { _ = b.Close(context.Background()) })

			objects := make([]string, tt.n)
			for i := range objects {
				switch tt.kind {
				case akamai.KindURL:
					objects[i] = fmt.Sprintf("https://www.example.com/products/%06d", i)
				case akamai.KindTag:
					objects[i] = fmt.Sprintf("tag-%06d", i)
				default:
					objects[i] = strconv.Itoa(100_000 + i)
				}
			}
			batches := make(chan []string, tt.n)
			for rest := objects; len(rest) > 0; {
				k := min(len(rest), rnd.intN(tt.batch[0], tt.batch[1]))
				batches <- rest[:k]
				rest = rest[k:]
			}
			close(batches)

			var wg sync.WaitGroup
			for range tt.workers {
				wg.Go(func() {
					defer clock.leave()
					for batch := range batches {
						if !assert.NoError(t, deliver(t.Context(), b, clock, tt.kind, batch)) {
							return
						}
					}
				})
			}
			wg.Wait()

			assert.Zero(t, srv.Responses()[http.StatusTooManyRequests], "429s")
			assert.Equal(t, sorted(objects), sorted(srv.Objects(tt.kind)), "every object exactly once")
			purges := srv.Purges()
			require.NotEmpty(t, purges)
			last := purges[0].At
			for _, p := range purges {
				if p.At.After(last) {
					last = p.At
				}
			}
			spent := tt.n - tt.bucket.Burst // the objects beyond the initial bucket
			if tt.bucket == published.Requests {
				spent = len(purges) - tt.bucket.Burst
			}
			rate := float64(spent) / last.Sub(start).Seconds()
			t.Logf("%d requests, %d 429s, %.3f/s after the initial bucket over %v: %.1f%% of the documented %.3f/s",
				len(purges), srv.Responses()[http.StatusTooManyRequests], rate, last.Sub(start), 100*rate/tt.bucket.PerSecond, tt.bucket.PerSecond)
			assert.GreaterOrEqual(t, rate, 0.95*tt.bucket.PerSecond, "throughput")
		})
	}
}

// deliver purges batch as a dispatcher's worker does: Pace, then Purge,
// and on an error carrying a wait, waits that long and starts again. CP
// codes go through PurgeCPCodes, which paces itself.
func deliver(ctx context.Context, b *akamai.Backend, clock akamai.Clock, kind akamai.Kind, batch []string) error {
	for {
		var err error
		switch kind {
		case akamai.KindCPCode:
			codes := make([]int, len(batch))
			for i, c := range batch {
				codes[i], _ = strconv.Atoi(c)
			}
			_, err = b.PurgeCPCodes(ctx, codes...)
		default:
			r := backends.NewRequest(batch, nil)
			if kind == akamai.KindTag {
				r = backends.NewRequest(nil, batch)
			}
			if err = b.Pace(ctx, r); err == nil {
				_, err = b.Purge(ctx, r)
			}
		}
		if err == nil {
			return nil
		}
		wait, ok := backends.RetryDelay(err)
		if !ok {
			return err
		}
		if err := clock.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}
