package redisstore_test

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/backends/localcache/redisstore"
	"github.com/gormpurge/gormpurge/backends/localcache/storetest"
)

// TestStoreConformanceOnCluster starts a Redis Cluster of three throwaway
// masters and runs the store conformance suite on it: the store's keys
// share a hash tag, so its scripts run on one node.
func TestStoreConformanceOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	redisAddr(t)
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli is not on PATH: install Redis to run the cluster test")
	}
	var addrs []string
	for range 3 {
		addrs = append(addrs, startRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000", "--cluster-port", strconv.Itoa(freePort(t))))
	}
	out, err := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	require.NoError(t, err, "redis-cli --cluster create: %s", out)

	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { _ = rdb.Close() })
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		for _, a := range addrs {
			c := redis.NewClient(&redis.Options{Addr: a})
			info, err := c.ClusterInfo(ctx).Result()
			_ = c.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				return false
			}
		}
		return true
	}, 20*time.Second, 50*time.Millisecond, "the cluster comes up")
	rdb.ReloadState(t.Context())

	storetest.Run(t, func(t *testing.T) localcache.Store {
		s, _ := newStore(t, rdb, redisstore.WithMaxEntryBytes(64<<10))
		return s
	}, storetest.WithMaxEntryBytes(64<<10))
}
