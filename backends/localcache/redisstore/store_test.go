package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/backends/localcache/redisstore"
	"github.com/gormpurge/gormpurge/backends/localcache/storetest"
	"github.com/gormpurge/gormpurge/internal/tcpproxy"
)

// TestStoreConformance runs the store conformance suite, which the memory
// store passes too, on the Redis store.
func TestStoreConformance(t *testing.T) {
	rdb := newClient(t, redisAddr(t))
	storetest.Run(t, func(t *testing.T) localcache.Store {
		s, _ := newStore(t, rdb, redisstore.WithMaxEntryBytes(64<<10))
		return s
	}, storetest.WithMaxEntryBytes(64<<10))
}

func TestNewReportsEveryInvalidOption(t *testing.T) {
	_, err := redisstore.New(nil,
		nil,
		redisstore.WithPrefix(""),
		redisstore.WithPrefix("a{b}"),
		redisstore.WithMaxEntryBytes(0),
		redisstore.WithRetryAfterError(-time.Second),
		redisstore.WithLogger(nil),
	)
	require.Error(t, err)
	for _, want := range []string{"New(nil)", "an Option is nil", `WithPrefix("")`, `WithPrefix("a{b}")`,
		"WithMaxEntryBytes(0)", "WithRetryAfterError(-1s)", "WithLogger(nil)"} {
		assert.Contains(t, err.Error(), want)
	}
	_, err = redisstore.New((*redis.Client)(nil))
	assert.ErrorContains(t, err, "nil *redis.Client")
}

// TestExpiredEntriesLeaveTheirIndexes checks that the index sets, the
// entries' index lists and expiry times shrink back once entries expire:
// a site caching many short-lived pages does not grow Redis for ever.
func TestExpiredEntriesLeaveTheirIndexes(t *testing.T) {
	rdb := newClient(t, redisAddr(t))
	s, prefix := newStore(t, rdb)
	ctx := t.Context()
	tag := "{" + prefix + "}"
	g, err := s.Generation(ctx)
	require.NoError(t, err)

	const n = 500
	for i := range n {
		e := &localcache.Entry{Body: []byte("x"), Indexes: []string{"t shared", fmt.Sprint("p /", i)}, TTL: time.Second}
		ok, err := s.Set(ctx, fmt.Sprint("k", i), e, g)
		require.NoError(t, err)
		require.True(t, ok)
	}
	require.EqualValues(t, n, rdb.SCard(ctx, tag+":i:t shared").Val())
	require.EqualValues(t, n, rdb.HLen(ctx, tag+":x").Val())
	entries := make([]string, n)
	for i := range entries {
		entries[i] = fmt.Sprint(tag, ":e:k", i)
	}
	require.Eventually(t, func() bool { return rdb.Exists(ctx, entries...).Val() == 0 }, 10*time.Second, 50*time.Millisecond,
		"every entry expires")

	// Writes go on with a few long-lived entries; each sweeps some expired
	// entries out.
	for i := range 2 * n / 32 {
		e := &localcache.Entry{Body: []byte("y"), Indexes: []string{"t live"}, TTL: time.Hour}
		ok, err := s.Set(ctx, fmt.Sprint("live", i%3), e, g)
		require.NoError(t, err)
		require.True(t, ok)
	}
	assert.Zero(t, rdb.Exists(ctx, tag+":i:t shared").Val(), "the shared index set is gone")
	keys := keysOf(t, ctx, rdb, prefix)
	assert.ElementsMatch(t, []string{
		tag + ":g", tag + ":x", tag + ":t", tag + ":i:t live",
		tag + ":e:live0", tag + ":e:live1", tag + ":e:live2",
	}, keys, "only the live entries' keys are left")
	assert.EqualValues(t, 3, rdb.HLen(ctx, tag+":x").Val())
	assert.EqualValues(t, 3, rdb.ZCard(ctx, tag+":t").Val())
	assert.EqualValues(t, 3, rdb.SCard(ctx, tag+":i:t live").Val())

	// Purges sweep too.
	for i := range n {
		e := &localcache.Entry{Body: []byte("x"), Indexes: []string{"t shared"}, TTL: 100 * time.Millisecond}
		_, err := s.Set(ctx, fmt.Sprint("k", i), e, g)
		require.NoError(t, err)
	}
	time.Sleep(150 * time.Millisecond)
	for range n/32 + 1 {
		_, err := s.Purge(ctx, []string{"t unrelated"})
		require.NoError(t, err)
	}
	assert.Zero(t, rdb.Exists(ctx, tag+":i:t shared").Val())
	assert.EqualValues(t, 3, rdb.HLen(ctx, tag+":x").Val())
}

// TestZeroTTLHasNoExpiry checks the Redis side of TTL 0: no EX or PX.
func TestZeroTTLHasNoExpiry(t *testing.T) {
	rdb := newClient(t, redisAddr(t))
	s, prefix := newStore(t, rdb)
	g, err := s.Generation(t.Context())
	require.NoError(t, err)
	ok, err := s.Set(t.Context(), "k", &localcache.Entry{Body: []byte("x")}, g)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, time.Duration(-1), rdb.PTTL(t.Context(), "{"+prefix+"}:e:k").Val(), "the key has no expiry")
	ok, err = s.Set(t.Context(), "k", &localcache.Entry{Body: []byte("x"), TTL: time.Nanosecond}, g)
	require.NoError(t, err)
	assert.True(t, ok, "a TTL under a millisecond is one millisecond, not no expiry")
}

func TestStatsCount(t *testing.T) {
	rdb := newClient(t, redisAddr(t))
	s, _ := newStore(t, rdb, redisstore.WithMaxEntryBytes(100))
	ctx := t.Context()
	e := &localcache.Entry{Body: []byte("x"), Indexes: []string{"t a"}}
	g, err := s.Generation(ctx)
	require.NoError(t, err)
	_, _ = s.Set(ctx, "k", e, g)
	_, _ = s.Set(ctx, "big", &localcache.Entry{Body: make([]byte, 200)}, g)
	_, _, _ = s.Get(ctx, "k")
	_, _, _ = s.Get(ctx, "none")
	_, _ = s.Purge(ctx, []string{"t a"})
	_, _ = s.Set(ctx, "k", e, g) // stale
	assert.Equal(t, redisstore.Stats{Hits: 1, Misses: 1, Stores: 1, Stale: 1, Refused: 1, Purged: 1}, s.Stats())
}

// policyHook answers CONFIG GET with a fixed reply or error, as a Redis
// with that policy, or one refusing CONFIG, would.
type policyHook struct {
	policy string
	err    error
}

func (h policyHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h policyHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h policyHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c, ok := cmd.(*redis.MapStringStringCmd)
		if !ok || cmd.Name() != "config" {
			return next(ctx, cmd)
		}
		if h.err != nil {
			c.SetErr(h.err)
			return h.err
		}
		c.SetVal(map[string]string{"maxmemory-policy": h.policy})
		return nil
	}
}

func TestNewChecksTheEvictionPolicy(t *testing.T) {
	addr := redisAddr(t)
	tests := []struct {
		name    string
		hook    policyHook
		refused bool
	}{
		{"noeviction", policyHook{policy: "noeviction"}, false},
		{"volatile-lru", policyHook{policy: "volatile-lru"}, false},
		{"allkeys-lru", policyHook{policy: "allkeys-lru"}, true},
		{"allkeys-random", policyHook{policy: "allkeys-random"}, true},
		{"CONFIG refused", policyHook{err: errors.New("ERR unknown command 'CONFIG'")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rdb := newClient(t, addr)
			rdb.AddHook(tt.hook)
			_, err := redisstore.New(rdb, redisstore.WithLogger(quiet()), redisstore.WithPrefix(uniqueName(t)))
			if tt.refused {
				require.ErrorIs(t, err, redisstore.ErrUnsuitableServer)
				assert.Contains(t, err.Error(), tt.hook.policy)
				assert.Contains(t, err.Error(), "noeviction")
				return
			}
			require.NoError(t, err)
		})
	}
	t.Run("real server", func(t *testing.T) {
		_, err := redisstore.New(newClient(t, addr), redisstore.WithLogger(quiet()))
		require.NoError(t, err, "the shared test Redis runs with noeviction")
	})
}

// TestFailsOpen cuts the store's connection to Redis: pages are still
// rendered (never a 500), errors are counted, the store fails fast while
// Redis is away, and caching resumes once it is back.
func TestFailsOpen(t *testing.T) {
	proxy := tcpproxy.New(t, redisAddr(t))
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	retry := 200 * time.Millisecond
	s, _ := newStore(t, rdb, redisstore.WithRetryAfterError(retry))

	var renders atomic.Int64
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		renders.Add(1)
		fmt.Fprint(w, "the page")
	})
	srv := httptest.NewServer(localcache.Middleware(s, localcache.WithTTL(time.Hour), localcache.WithLogger(quiet()))(page))
	t.Cleanup(srv.Close)
	get := func() string {
		t.Helper()
		res, err := http.Get(srv.URL + "/a")
		require.NoError(t, err)
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode, "the cache's failure must never fail the page")
		require.Equal(t, "the page", string(body))
		return res.Header.Get(localcache.XCache)
	}
	require.Equal(t, "MISS", get())
	require.Eventually(t, func() bool { return get() == "HIT" }, 5*time.Second, 10*time.Millisecond)

	proxy.Cut()
	before := renders.Load()
	for range 20 {
		assert.Equal(t, "MISS", get(), "with Redis away, every request renders")
	}
	assert.EqualValues(t, 20, renders.Load()-before)
	st := s.Stats()
	assert.NotZero(t, st.Errors, "errors are counted")
	assert.NotZero(t, st.FailedFast, "after an error the store fails fast")

	proxy.Restore()
	require.Eventually(t, func() bool { return get() == "HIT" }, 5*time.Second, 20*time.Millisecond,
		"caching resumes once Redis is back")
}

// TestNewRefusesARedisEvictingAnyKey starts a Redis of its own with
// maxmemory-policy allkeys-lru (the shared one is never reconfigured).
func TestNewRefusesARedisEvictingAnyKey(t *testing.T) {
	addr := startRedis(t, "--maxmemory-policy", "allkeys-lru")
	_, err := redisstore.New(newClient(t, addr), redisstore.WithLogger(quiet()))
	require.ErrorIs(t, err, redisstore.ErrUnsuitableServer)
	assert.Contains(t, err.Error(), "allkeys-lru")
}
