package redisstore_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/backends/localcache/redisstore"
	"github.com/gormpurge/gormpurge/backends/localcache/storetest"
)

// sentinelMaster is the name the throwaway sentinel monitors its master by.
const sentinelMaster = "m"

// startSentinel starts a throwaway master, one replica of it, and a
// sentinel monitoring them as sentinelMaster, stopped when t ends; it
// returns their addresses once the sentinel knows the replica. It skips t
// when the Redis tests are off or redis-server is not on PATH.
func startSentinel(t *testing.T) (master, replica, sentinel string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a Redis master, a replica and a sentinel")
	}
	master = startRedis(t)
	host, port, err := net.SplitHostPort(master)
	require.NoError(t, err)
	replica = startRedis(t, "--replicaof", host, port)
	rc := redis.NewClient(&redis.Options{Addr: replica})
	defer rc.Close()
	require.Eventually(t, func() bool {
		info, err := rc.Info(t.Context(), "replication").Result()
		return err == nil && infoHas(info, "master_link_status", "up")
	}, 10*time.Second, 20*time.Millisecond, "the replica syncs with the master")

	// A sentinel rewrites its config file: give it one of its own.
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil, "sentinel monitor %[1]s %[2]s %[3]s 1\n"+
		"sentinel down-after-milliseconds %[1]s 1000\n"+
		"sentinel failover-timeout %[1]s 5000\n", sentinelMaster, host, port), 0o600))
	sentinel = startRedisWithConfig(t, conf, "--sentinel")
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinel})
	defer sc.Close()
	require.Eventually(t, func() bool {
		replicas, err := sc.Replicas(t.Context(), sentinelMaster).Result()
		return err == nil && len(replicas) == 1 && replicas[0]["flags"] == "slave" &&
			replicas[0]["master-link-status"] == "ok"
	}, 20*time.Second, 50*time.Millisecond, "the sentinel finds the replica")
	return master, replica, sentinel
}

// infoHas reports whether field has value want in the text of an INFO
// reply.
func infoHas(info, field, want string) bool {
	for line := range strings.Lines(info) {
		if strings.TrimRight(line, "\r\n") == field+":"+want {
			return true
		}
	}
	return false
}

// TestStoreConformanceOnSentinel runs the store conformance suite through a
// Sentinel failover client, on a throwaway master with one replica, then
// fails the master over to the replica and checks that the store goes on
// working on the new master, with what was replicated to it.
func TestStoreConformanceOnSentinel(t *testing.T) {
	_, replica, sentinel := startSentinel(t)
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		MasterName: sentinelMaster,
		Addrs:      []string{sentinel},
	})
	t.Cleanup(func() { _ = rdb.Close() })

	storetest.Run(t, func(t *testing.T) localcache.Store {
		s, _ := newStore(t, rdb, redisstore.WithMaxEntryBytes(64<<10))
		return s
	}, storetest.WithMaxEntryBytes(64<<10))

	t.Run("Failover", func(t *testing.T) {
		ctx := t.Context()
		s, _ := newStore(t, rdb)
		page := func(path string) *localcache.Entry {
			return &localcache.Entry{Body: []byte("page " + path), Indexes: []string{"p:" + path, "t:post:1"}}
		}
		set := func(key string) {
			t.Helper()
			gen, err := s.Generation(ctx)
			require.NoError(t, err)
			ok, err := s.Set(ctx, key, page(key), gen)
			require.NoError(t, err)
			require.True(t, ok, "Set %s stores", key)
		}
		set("/a")
		set("/b")
		n, err := rdb.Do(ctx, "WAIT", 1, 1000).Int()
		require.NoError(t, err)
		require.Equal(t, 1, n, "the replica has the entries")

		sc := redis.NewSentinelClient(&redis.Options{Addr: sentinel})
		defer sc.Close()
		require.Eventually(t, func() bool { // refused while the sentinel is not sure of the replica
			return sc.Failover(ctx, sentinelMaster).Err() == nil
		}, 10*time.Second, 100*time.Millisecond, "SENTINEL FAILOVER starts")
		require.Eventually(t, func() bool {
			info, err := rdb.Info(ctx, "server").Result()
			_, port, _ := net.SplitHostPort(replica)
			return err == nil && infoHas(info, "tcp_port", port)
		}, 10*time.Second, 20*time.Millisecond, "the client reaches the new master, the old replica")

		e, ok, err := s.Get(ctx, "/a")
		require.NoError(t, err)
		require.True(t, ok, "an entry replicated before the failover is on the new master")
		assert.Equal(t, "page /a", string(e.Body))
		n, err = s.Purge(ctx, []string{"p:/a"})
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		_, ok, err = s.Get(ctx, "/a")
		require.NoError(t, err)
		assert.False(t, ok, "the purged page is gone")
		_, ok, err = s.Get(ctx, "/b")
		require.NoError(t, err)
		assert.True(t, ok, "the page not purged stays")
		set("/c")
		e, ok, err = s.Get(ctx, "/c")
		require.NoError(t, err)
		require.True(t, ok, "the new master stores pages")
		assert.Equal(t, "page /c", string(e.Body))
	})
}
