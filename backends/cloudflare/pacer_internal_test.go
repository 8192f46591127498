package cloudflare

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/cloudflare/cloudflaretest"
)

// fakeClock is a clock tests move by hand, a day ahead of the real one so
// that a Pace whose context has a real deadline never sleeps: any wait
// ends it at once with backends.RetryAfter.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// pacedBackend returns a backend on srv pacing tags to 1 request a second,
// 4 at once, on clock.
func pacedBackend(t *testing.T, srv *cloudflaretest.Server, clock *fakeClock) *Backend {
	t.Helper()
	b, err := New(WithEndpoint(srv.Endpoint()), WithZone(srv.Zone()), WithAPIToken(srv.Token()),
		WithHTTPClient(srv.Client()), WithRate(1, 4), WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	b.pacer = newPacer(b.rate, clock.Now)
	return b
}

// throughput counts how many purges by tag, one after the other, go
// through without waiting while each request spends a second in flight
// (the pacer refills at 0.98 a second).
func throughput(t *testing.T, b *Backend, clock *fakeClock) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for i := range 20 {
		r := backends.NewRequest(nil, []string{fmt.Sprintf("t%d", i)})
		if err := b.Pace(ctx, r); err != nil {
			require.ErrorIs(t, err, ErrRateLimited)
			return i
		}
		_, err := b.Purge(t.Context(), r)
		require.NoError(t, err)
	}
	return 20
}

// A Purge whose context has already ended gives back the tokens Pace took
// for it: after many such purges, the pacer lets as many requests through
// as a fresh one. It once kept them counted as unsent, so that the bucket
// stopped refilling whenever a request was in flight.
func TestCancelledPurgesLeakNoTokens(t *testing.T) {
	run := func(cancelled int) int {
		srv := cloudflaretest.NewServer(cloudflaretest.WithBucket(1000, 1000))
		t.Cleanup(srv.Close)
		clock := &fakeClock{now: time.Now().Add(24 * time.Hour)}
		b := pacedBackend(t, srv, clock)
		done, cancel := context.WithCancel(t.Context())
		cancel()
		for i := range cancelled {
			clock.Add(10 * time.Second)
			r := backends.NewRequest(nil, []string{fmt.Sprintf("c%d", i)})
			require.NoError(t, b.Pace(t.Context(), r))
			_, err := b.Purge(done, r)
			require.ErrorIs(t, err, context.Canceled)
		}
		clock.Add(time.Minute) // a full bucket again
		srv.Respond(func(cloudflaretest.Call) (int, bool) {
			clock.Add(time.Second) // each request a second in flight
			return 0, false
		})
		return throughput(t, b, clock)
	}
	fresh := run(0)
	require.Equal(t, 20, fresh, "a second in flight refills the token each request takes")
	require.Equal(t, fresh, run(10), "10 cancelled purges leave the throughput unchanged")
}
