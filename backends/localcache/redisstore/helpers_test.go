package redisstore_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache/redisstore"
	"github.com/gormpurge/gormpurge/internal/testsvc"
)

// redisAddr returns the address of the Redis to test against, or skips t.
func redisAddr(t testing.TB) string {
	t.Helper()
	return testsvc.RedisAddr(t)
}

// newClient returns a client of the Redis at addr, closed when t ends.
func newClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// uniqueName returns a name no other test uses, for prefixes and channels.
func uniqueName(testing.TB) string { return testsvc.UniqueName("gormpurge-test-") }

// quiet is a logger for stores and buses whose logs the test does not read.
func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// deleteKeys deletes, when t ends, every key of the store with prefix.
func deleteKeys(t testing.TB, rdb redis.UniversalClient, prefix string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, k := range keysOf(t, ctx, rdb, prefix) {
			_ = rdb.Del(ctx, k).Err()
		}
	})
}

// keysOf lists the keys of the store with prefix.
func keysOf(t testing.TB, ctx context.Context, rdb redis.UniversalClient, prefix string) []string {
	var keys []string
	scan := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, "{"+prefix+"}:*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		return iter.Err()
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		// Every key of a store is in one slot: ask its master.
		var node *redis.Client
		node, err = c.MasterForKey(ctx, "{"+prefix+"}")
		if err == nil {
			err = scan(ctx, node)
		}
	case *redis.Client:
		err = scan(ctx, c)
	}
	if err != nil {
		t.Logf("listing the keys of %s: %v", prefix, err)
	}
	return keys
}

// newStore returns a Store with a fresh prefix on rdb, whose keys are
// deleted when t ends.
func newStore(t testing.TB, rdb redis.UniversalClient, opts ...redisstore.Option) (*redisstore.Store, string) {
	t.Helper()
	prefix := uniqueName(t)
	s, err := redisstore.New(rdb, append([]redisstore.Option{redisstore.WithPrefix(prefix), redisstore.WithLogger(quiet())}, opts...)...)
	require.NoError(t, err)
	deleteKeys(t, rdb, prefix)
	return s, prefix
}
