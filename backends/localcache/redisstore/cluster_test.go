package redisstore_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/backends/localcache/bustest"
	"github.com/gormpurge/gormpurge/backends/localcache/redisstore"
	"github.com/gormpurge/gormpurge/backends/localcache/storetest"
	"github.com/gormpurge/gormpurge/internal/tcpproxy"
)

// startCluster starts a Redis Cluster of three throwaway masters, stopped
// when t ends, and returns their addresses once the cluster is up; it
// skips t when the Redis tests are off or redis-server or redis-cli is
// not on PATH.
func startCluster(t *testing.T) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	redisAddr(t)
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli is not on PATH: install Redis to run the cluster tests")
	}
	var addrs []string
	for range 3 {
		addrs = append(addrs, startRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000", "--cluster-port", strconv.Itoa(freePort(t))))
	}
	out, err := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	require.NoError(t, err, "redis-cli --cluster create: %s", out)
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
	return addrs
}

// newClusterClient returns a client of the cluster of addrs, closed when t
// ends, that knows every node's slots.
func newClusterClient(t *testing.T, opt *redis.ClusterOptions) *redis.ClusterClient {
	t.Helper()
	rdb := redis.NewClusterClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	rdb.ReloadState(t.Context())
	return rdb
}

// TestStoreConformanceOnCluster starts a Redis Cluster of three throwaway
// masters and runs the store conformance suite on it: the store's keys
// share a hash tag, so its scripts run on one node.
func TestStoreConformanceOnCluster(t *testing.T) {
	addrs := startCluster(t)
	rdb := newClusterClient(t, &redis.ClusterOptions{Addrs: addrs})
	storetest.Run(t, func(t *testing.T) localcache.Store {
		s, _ := newStore(t, rdb, redisstore.WithMaxEntryBytes(64<<10))
		return s
	}, storetest.WithMaxEntryBytes(64<<10))
}

// TestBusConformanceOnCluster runs the bus conformance suite on a Redis
// Cluster of three throwaway masters (PUBLISH on any node reaches the
// subscribers of every node), with the publisher and the follower on
// cluster clients of their own. Each client dials every node through a
// proxy of its own, so that cutting the proxies cuts that client off the
// whole cluster, wherever its subscription or publishes went.
func TestBusConformanceOnCluster(t *testing.T) {
	addrs := startCluster(t)
	bustest.Run(t, func(t *testing.T) *bustest.Harness {
		channel := uniqueName(t)
		publisher, cutPublisher, _ := newProxiedClusterClient(t, addrs)
		follower, cutFollower, restoreFollower := newProxiedClusterClient(t, addrs)
		pb, err := redisstore.NewBus(publisher, channel, redisstore.WithBusLogger(quiet()))
		require.NoError(t, err)
		fb, err := redisstore.NewBus(follower, channel, redisstore.WithBusLogger(quiet()),
			redisstore.WithHealthCheck(200*time.Millisecond))
		require.NoError(t, err)
		return &bustest.Harness{
			Publisher:    pb,
			Follower:     fb,
			Cut:          cutFollower,
			Restore:      restoreFollower,
			CutPublisher: cutPublisher,
		}
	})
}

// newProxiedClusterClient returns a client of the cluster of addrs that
// dials each node through a tcpproxy of its own, and functions that cut
// and restore every one of those proxies.
func newProxiedClusterClient(t *testing.T, addrs []string) (rdb *redis.ClusterClient, cut, restore func()) {
	t.Helper()
	proxies := make(map[string]*tcpproxy.Proxy, len(addrs))
	for _, a := range addrs {
		proxies[a] = tcpproxy.New(t, a)
	}
	var d net.Dialer
	rdb = newClusterClient(t, &redis.ClusterOptions{
		Addrs:       addrs,
		DialTimeout: time.Second,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			p, ok := proxies[addr]
			if !ok { // a node the proxies do not cover: Cut would miss it
				return nil, fmt.Errorf("no proxy for the node %s", addr)
			}
			return d.DialContext(ctx, network, p.Addr())
		},
	})
	cut = func() {
		for _, p := range proxies {
			p.Cut()
		}
	}
	restore = func() {
		for _, p := range proxies {
			p.Restore()
		}
	}
	return rdb, cut, restore
}
