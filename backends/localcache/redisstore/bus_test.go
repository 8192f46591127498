package redisstore_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/backends/localcache/bustest"
	"github.com/gormpurge/gormpurge/backends/localcache/redisstore"
	"github.com/gormpurge/gormpurge/internal/tcpproxy"
)

// newBus returns a Bus on channel over a client of addr, closed when t
// ends.
func newBus(t testing.TB, addr, channel string, opts ...redisstore.BusOption) *redisstore.Bus {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	b, err := redisstore.NewBus(rdb, channel, append([]redisstore.BusOption{redisstore.WithBusLogger(quiet())}, opts...)...)
	require.NoError(t, err)
	return b
}

// closeOnCleanup closes sub when t ends.
func closeOnCleanup(t testing.TB, sub localcache.Subscription) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, sub.Close(ctx))
	})
}

// TestBusConformance runs the bus conformance suite, which the NATS bus
// passes too, on the Redis bus, with a proxy to cut between each instance
// and Redis.
func TestBusConformance(t *testing.T) {
	addr := redisAddr(t)
	bustest.Run(t, func(t *testing.T) *bustest.Harness {
		channel := uniqueName(t)
		fp := tcpproxy.New(t, addr)
		pp := tcpproxy.New(t, addr)
		return &bustest.Harness{
			Publisher:    newBus(t, pp.Addr(), channel),
			Follower:     newBus(t, fp.Addr(), channel, redisstore.WithHealthCheck(200*time.Millisecond)),
			Cut:          fp.Cut,
			Restore:      fp.Restore,
			CutPublisher: pp.Cut,
		}
	})
}

func TestNewBusReportsEveryInvalidOption(t *testing.T) {
	_, err := redisstore.NewBus(nil, "", nil, redisstore.WithHealthCheck(0), redisstore.WithBusLogger(nil))
	require.Error(t, err)
	for _, want := range []string{"NewBus(nil, ...)", `NewBus(rdb, "")`, "a BusOption is nil", "WithHealthCheck(0s)", "WithBusLogger(nil)"} {
		assert.Contains(t, err.Error(), want)
	}
}

// TestBusReportsMessagesThatAreNotEvents publishes what the bus cannot
// read on the channel (a purge from another version of the package would
// be one): each may have been a purge, so the subscription reports
// EventDown, without quoting the message, then EventUp, and logs at most
// one warning for a burst of them, which does not quote it either.
func TestBusReportsMessagesThatAreNotEvents(t *testing.T) {
	addr := redisAddr(t)
	channel := uniqueName(t)
	var logs syncBuffer
	a := newBus(t, addr, channel)
	b := newBus(t, addr, channel, redisstore.WithBusLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	sub, err := b.Subscribe(t.Context())
	require.NoError(t, err)
	closeOnCleanup(t, sub)
	requireNext(t, sub, localcache.EventUp)

	rdb := newClient(t, addr)
	// The first is logged: its kind is what a decoding error would quote.
	for _, msg := range []string{`{"v":1,"o":"other","s":1,"k":"SECRET-PAGE"}`, "not an event SECRET-PAGE", `{"v":99,"k":"SECRET-PAGE"}`} {
		require.NoError(t, rdb.Publish(t.Context(), channel, msg).Err())
		e := requireNext(t, sub, localcache.EventDown)
		assert.NotContains(t, e.Reason, "SECRET-PAGE", "the reason does not quote the message")
		requireNext(t, sub, localcache.EventUp)
	}
	require.NoError(t, a.Publish(t.Context(), localcache.Event{Kind: localcache.EventPurge, Indexes: []string{"t x"}}))
	e := requireNext(t, sub, localcache.EventPurge)
	assert.Equal(t, []string{"t x"}, e.Indexes)
	assert.Equal(t, 1, strings.Count(logs.String(), "level=WARN"), "one warning for the burst:\n%s", logs.String())
	assert.NotContains(t, logs.String(), "SECRET-PAGE", "the log does not quote the message")
}

// syncBuffer is a bytes.Buffer safe for concurrent use, for logs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestUnansweredHealthCheckIsDown stops Redis answering without closing
// the connection (the proxy's connections stay open, but nothing moves):
// the subscription must notice through its ping.
func TestUnansweredHealthCheckIsDown(t *testing.T) {
	addr := redisAddr(t)
	channel := uniqueName(t)
	stall := tcpproxy.New(t, addr)
	b := newBus(t, stall.Addr(), channel, redisstore.WithHealthCheck(100*time.Millisecond))
	sub, err := b.Subscribe(t.Context())
	require.NoError(t, err)
	closeOnCleanup(t, sub)
	e, err := sub.Next(t.Context())
	require.NoError(t, err)
	require.Equal(t, localcache.EventUp, e.Kind)

	stall.Stall()
	start := time.Now()
	e, err = sub.Next(t.Context())
	require.NoError(t, err)
	require.Equal(t, localcache.EventDown, e.Kind)
	assert.Contains(t, e.Reason, "health check")
	assert.Less(t, time.Since(start), 2*time.Second, "an unanswered ping is noticed within three intervals of the last reply")

	stall.Resume()
	e, err = sub.Next(t.Context())
	require.NoError(t, err)
	require.Equal(t, localcache.EventUp, e.Kind, "once Redis answers again, the subscription is back")
}

// TestLargePurgeOnABusyCPUIsNotDown follows a large split purge (the bus
// conformance suite's) while goroutines keep every CPU busy: Redis answers
// every health check, late as the subscription may be to read it, so the
// subscription must not report EventDown (Follow would empty the store of
// every instance for nothing).
func TestLargePurgeOnABusyCPUIsNotDown(t *testing.T) {
	addr := redisAddr(t)
	channel := uniqueName(t)
	proxy := tcpproxy.New(t, addr)
	follower := newBus(t, proxy.Addr(), channel, redisstore.WithHealthCheck(200*time.Millisecond))
	publisher := newBus(t, addr, channel)
	sub, err := follower.Subscribe(t.Context())
	require.NoError(t, err)
	closeOnCleanup(t, sub)
	requireNext(t, sub, localcache.EventUp)

	stop := make(chan struct{})
	var spinners sync.WaitGroup
	for range 2 * runtime.NumCPU() {
		spinners.Go(func() {
			for n := 0; ; n++ {
				if n%1024 == 0 {
					select {
					case <-stop:
						return
					default:
					}
				}
			}
		})
	}
	t.Cleanup(func() { close(stop); spinners.Wait() })

	want := make([]string, 50_000)
	for i := range want {
		want[i] = fmt.Sprintf("p:https://example.com/articles/%08d/with-a-long-slug", i)
	}
	require.NoError(t, publisher.Publish(t.Context(), localcache.Event{Kind: localcache.EventPurge, Indexes: want}))
	require.NoError(t, publisher.Publish(t.Context(), localcache.Event{Kind: localcache.EventClear}))
	var got []string
	for {
		e := next(t, sub, 30*time.Second)
		require.NotEqual(t, localcache.EventDown, e.Kind, "an unexpected down event (reason %q)", e.Reason)
		if e.Kind == localcache.EventClear {
			break
		}
		got = append(got, e.Indexes...)
	}
	assert.Equal(t, len(want), len(got), "the split purge arrives whole")
}

// TestStalledHandshakeHoldsNeitherSubscribeNorClose subscribes through a
// proxy that accepts connections but passes nothing on, as in a silent
// network partition, so that the subscription's handshake with Redis never
// ends (go-redis waits for its dial and read timeouts, seconds): neither
// Subscribe nor Close may wait for it, at first or when subscribing again
// after a failed health check.
func TestStalledHandshakeHoldsNeitherSubscribeNorClose(t *testing.T) {
	addr := redisAddr(t)
	for _, tc := range []struct {
		name        string
		resubscribe bool // stall once up, so that the handshake stuck is a new subscription's
	}{
		{"first subscription", false},
		{"subscribing again", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			proxy := tcpproxy.New(t, addr)
			rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr()}) // go-redis's default timeouts
			t.Cleanup(func() { _ = rdb.Close() })
			b, err := redisstore.NewBus(rdb, uniqueName(t), redisstore.WithBusLogger(quiet()),
				redisstore.WithHealthCheck(100*time.Millisecond))
			require.NoError(t, err)
			if !tc.resubscribe {
				proxy.Stall()
			}

			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			start := time.Now()
			sub, err := b.Subscribe(ctx)
			if err == nil {
				closeOnCleanup(t, sub)
			}
			assert.Less(t, time.Since(start), time.Second, "Subscribe returns within its context's time")
			require.NoError(t, err)
			if tc.resubscribe {
				requireNext(t, sub, localcache.EventUp)
				proxy.Stall()
				requireNext(t, sub, localcache.EventDown)
			}
			_, err = tryNext(sub, 500*time.Millisecond)
			require.ErrorIs(t, err, context.DeadlineExceeded, "no EventUp while the handshake is stuck")

			cctx, ccancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer ccancel()
			start = time.Now()
			assert.NoError(t, sub.Close(cctx))
			assert.Less(t, time.Since(start), time.Second, "Close does not wait for the stuck handshake")
		})
	}
}

// tryNext returns sub's next event, or the error of a Next given d.
func tryNext(sub localcache.Subscription, d time.Duration) (localcache.Event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return sub.Next(ctx)
}

// TestReplyHeldPartWayLosesNothingSilently holds a large message part-way
// on the network, for less than and for more than twice the health check
// interval, with the rest of the message starting with '+' and with '-'
// (which a client reading on after a read timeout would take for a status
// reply, or an error reply): the subscription either delivers the purge,
// or reports EventDown and comes back Up, and then delivers the next.
func TestReplyHeldPartWayLosesNothingSilently(t *testing.T) {
	addr := redisAddr(t)
	const interval = 500 * time.Millisecond
	for _, tc := range []struct {
		name string
		rest byte
		hold time.Duration
	}{
		{"plus, held less than two intervals", '+', 800 * interval / 1000},
		{"minus, held less than two intervals", '-', 800 * interval / 1000},
		{"plus, held more than two intervals", '+', 3 * interval},
		{"minus, held more than two intervals", '-', 3 * interval},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			channel := uniqueName(t)
			marker := "HOLD-" + uniqueName(t)
			proxy := newHoldProxy(t, addr, marker, tc.hold)
			follower := newBus(t, proxy.Addr(), channel, redisstore.WithHealthCheck(interval))
			publisher := newBus(t, addr, channel)
			sub, err := follower.Subscribe(t.Context())
			require.NoError(t, err)
			closeOnCleanup(t, sub)
			requireNext(t, sub, localcache.EventUp)

			// Publish part-way through the first read interval, so that a
			// read deadline of one interval would expire during the hold.
			time.Sleep(3 * interval / 5)
			indexes := []string{marker + string(tc.rest) + "OK lost"}
			for i := range 5000 {
				indexes = append(indexes, fmt.Sprintf("p:/page/%d", i))
			}
			require.NoError(t, publisher.Publish(t.Context(), localcache.Event{Kind: localcache.EventPurge, Indexes: indexes}))

			e := next(t, sub, 5*time.Second)
			require.True(t, proxy.Held(), "the proxy held the message")
			switch e.Kind {
			case localcache.EventPurge:
				assert.Equal(t, indexes, e.Indexes)
			case localcache.EventDown:
				assert.False(t, strings.Contains(e.Reason, "OK lost") || strings.Contains(e.Reason, "p:/page/"),
					"the reason does not quote the message")
				requireNext(t, sub, localcache.EventUp)
			default:
				t.Fatalf("got a %s event, want the purge, or EventDown then EventUp", e.Kind)
			}

			require.NoError(t, publisher.Publish(t.Context(), localcache.Event{Kind: localcache.EventPurge, Indexes: []string{"p:/after"}}))
			e = next(t, sub, 5*time.Second)
			require.Equal(t, localcache.EventPurge, e.Kind, "the subscription delivers purges again")
			assert.Equal(t, []string{"p:/after"}, e.Indexes)
		})
	}
}

// next returns sub's next event, failing t if none comes within d.
func next(t *testing.T, sub localcache.Subscription, d time.Duration) localcache.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	e, err := sub.Next(ctx)
	require.NoError(t, err, "no event within %v: a purge was lost without EventDown, or the subscription never came back", d)
	return e
}

// requireNext fails t unless sub's next event, within 5 seconds, is of
// kind k.
func requireNext(t *testing.T, sub localcache.Subscription, k localcache.EventKind) localcache.Event {
	t.Helper()
	e := next(t, sub, 5*time.Second)
	require.Equal(t, k, e.Kind, "event (reason %q)", e.Reason)
	return e
}
