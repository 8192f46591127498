package redisstore_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache/redisstore"
	"github.com/gormpurge/gormpurge/internal/tcpproxy"
)

// TestOutageLogsAreRateLimited makes every request fail while Redis is
// away (WithRetryAfterError(0): each asks Redis): the store logs once, and
// Stats counts every failure and the outages.
func TestOutageLogsAreRateLimited(t *testing.T) {
	proxy := tcpproxy.New(t, redisAddr(t))
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	var logs syncBuffer
	s, _ := newStore(t, rdb, redisstore.WithRetryAfterError(0), redisstore.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	ctx := t.Context()

	for round := range 2 { // two outages within the log interval
		proxy.Cut()
		for range 20 {
			_, _, err := s.Get(ctx, "k")
			require.Error(t, err)
		}
		proxy.Restore()
		require.Eventually(t, func() bool { _, _, err := s.Get(ctx, "k"); return err == nil }, 5*time.Second, 10*time.Millisecond,
			"round %d: the store answers once Redis is back", round)
	}
	assert.Equal(t, 1, strings.Count(logs.String(), "Redis unreachable"), "one warning for both outages:\n%s", logs.String())
	assert.Equal(t, 1, strings.Count(logs.String(), "reachable again"), "one notice for both recoveries:\n%s", logs.String())
	st := s.Stats()
	assert.GreaterOrEqual(t, st.Errors, uint64(40), "every failure is counted")
	assert.EqualValues(t, 2, st.Outages, "every outage is counted")
}

// TestUnreadableEntryLogsAreRateLimited stores what the store cannot read
// under an entry's key, as another version of the package might: every
// Get is a miss, counted, and logged once.
func TestUnreadableEntryLogsAreRateLimited(t *testing.T) {
	rdb := newClient(t, redisAddr(t))
	var logs syncBuffer
	s, prefix := newStore(t, rdb, redisstore.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	ctx := t.Context()
	require.NoError(t, rdb.Set(ctx, "{"+prefix+"}:e:k", "not an entry", time.Minute).Err())
	for range 10 {
		_, ok, err := s.Get(ctx, "k")
		require.NoError(t, err)
		assert.False(t, ok)
	}
	assert.Equal(t, 1, strings.Count(logs.String(), "level=WARN"), "one warning:\n%s", logs.String())
	st := s.Stats()
	assert.EqualValues(t, 10, st.Unreadable)
	assert.EqualValues(t, 10, st.Misses)
}
