package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/backends/localcache/natsbus"
	"github.com/gormpurge/gormpurge/backends/localcache/redisstore"
	"github.com/gormpurge/gormpurge/internal/testsvc"
)

// uniqueName returns a prefix, channel or subject no other test uses.
func uniqueName(*testing.T) string { return testsvc.UniqueName("cmdtest-") }

// cachedSite is an application's pages, cached in a store by the localcache
// middleware: each path's page lists the tag "tag<path>".
type cachedSite struct {
	t       *testing.T
	handler http.Handler
}

func newCachedSite(t *testing.T, store localcache.Store) *cachedSite {
	pages := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Surrogate-Key", "tag"+r.URL.Path[1:])
		_, _ = w.Write([]byte("page " + r.URL.Path))
	})
	return &cachedSite{t: t, handler: localcache.Middleware(store, localcache.WithUntilPurged())(pages)}
}

// get returns X-Cache for a GET of path on www.example.com.
func (s *cachedSite) get(path string) string {
	s.t.Helper()
	w := httptest.NewRecorder()
	s.handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://www.example.com"+path, nil))
	require.Equal(s.t, http.StatusOK, w.Code)
	return w.Header().Get(localcache.XCache)
}

// cached gets each path until it is a HIT.
func (s *cachedSite) cached(paths ...string) {
	s.t.Helper()
	for _, p := range paths {
		require.Eventually(s.t, func() bool { return s.get(p) == "HIT" }, 10*time.Second, 5*time.Millisecond, "%s never cached", p)
	}
}

// gone waits until each path is no longer cached: its next GET is a MISS.
func (s *cachedSite) gone(paths ...string) {
	s.t.Helper()
	for _, p := range paths {
		// A MISS stores the page again: get it once more to see it cached.
		require.Eventually(s.t, func() bool { return s.get(p) == "MISS" }, 10*time.Second, 5*time.Millisecond, "%s never purged", p)
	}
}

// redisClient returns a client of the test Redis, and deletes the keys of
// the store prefixed name when t ends.
func redisClient(t *testing.T, addr, name string) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, "*"+name+"*", 100).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		assert.NoError(t, iter.Err())
		if len(keys) > 0 {
			assert.NoError(t, rdb.Del(ctx, keys...).Err())
		}
		assert.NoError(t, rdb.Close())
	})
	return rdb
}

// Pages in a shared Redis store: cache purge removes a URL's page and a
// tag's, and nothing else; cache clear removes every page.
func TestCacheRedisStore(t *testing.T) {
	t.Parallel()
	addr := testsvc.Addr(t, testsvc.RedisEnv)
	prefix := uniqueName(t)
	store, err := redisstore.New(redisClient(t, addr, prefix), redisstore.WithPrefix(prefix))
	require.NoError(t, err)
	s := newCachedSite(t, store)
	s.cached("/a", "/b", "/c")

	r := gormpurge(t, "cache", "purge", "--redis", addr, "--redis-prefix", prefix, "/a", "--tags", "tagb")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, `^Purged 1 URL and 1 tag in \S+:\n  Redis store `+addr+`, prefix "`+prefix+`": removed 2 entries\n$`, r.stdout)
	s.gone("/a", "/b")
	assert.Equal(t, "HIT", s.get("/c"), "a page neither named nor tagged stays")

	s.cached("/a", "/b")
	r = gormpurge(t, "cache", "clear", "--redis", "redis://"+addr+"/0", "--redis-prefix", prefix, "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var rep cacheReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), r.stdout)
	assert.Equal(t, "clear", rep.Action)
	require.Len(t, rep.Caches, 1)
	assert.Equal(t, cacheTarget{Kind: "redis-store", Address: addr, Name: prefix, Detail: "removed 3 entries"}, *rep.Caches[0])
	s.gone("/a", "/b", "/c")
}

// follower is an instance keeping pages in memory, following a bus.
func follower(t *testing.T, bus localcache.Bus) *cachedSite {
	t.Helper()
	store, err := localcache.NewMemoryStore()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	store.Suspend() // until Follow is up: so that waiting for !Suspended below waits for it
	go func() {
		defer close(done)
		_ = localcache.Follow(ctx, store, bus, localcache.WithFollowLogger(slog.New(slog.DiscardHandler)))
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	require.Eventually(t, func() bool { return !store.Suspended() }, 10*time.Second, 5*time.Millisecond, "the bus never came up")
	return newCachedSite(t, store)
}

// A purge and a clear published on a bus reach an instance following it.
func TestCacheBus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, env string
		// follow returns an instance following the bus named name, and
		// the command's flags that reach it.
		follow func(t *testing.T, addr, name string) (*cachedSite, []string)
	}{
		{"redis", testsvc.RedisEnv, func(t *testing.T, addr, name string) (*cachedSite, []string) {
			bus, err := redisstore.NewBus(redisClient(t, addr, name), name)
			require.NoError(t, err)
			return follower(t, bus), []string{"--redis", addr, "--redis-channel", name}
		}},
		{"nats", testsvc.NATSEnv, func(t *testing.T, addr, name string) (*cachedSite, []string) {
			nc, err := nats.Connect(addr)
			require.NoError(t, err)
			t.Cleanup(nc.Close)
			bus, err := natsbus.New(nc, name)
			require.NoError(t, err)
			return follower(t, bus), []string{"--nats", addr, "--nats-subject", name}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := testsvc.Addr(t, tc.env)
			s, flags := tc.follow(t, addr, uniqueName(t))
			s.cached("/a", "/b", "/c")

			r := gormpurge(t, append([]string{"cache", "purge", "https://www.example.com/a", "--tags", "tagb,tagz"}, flags...)...)
			require.Equal(t, exitOK, r.code, r.stderr)
			assert.Regexp(t, `^Purged 1 URL and 2 tags in \S+:\n  .*: published (to every instance following it|to 1 subscribed instances)\n$`, r.stdout)
			s.gone("/a", "/b")
			assert.Equal(t, "HIT", s.get("/c"))

			r = gormpurge(t, append([]string{"cache", "clear"}, flags...)...)
			require.Equal(t, exitOK, r.code, r.stderr)
			assert.Contains(t, r.stdout, "Cleared the page cache in ")
			s.gone("/a", "/b", "/c")
		})
	}
}

// A purge published on a Redis channel nobody follows (a mistyped
// --redis-channel) says so, instead of claiming every instance got it.
func TestCacheBusWithoutListenersSaysSo(t *testing.T) {
	t.Parallel()
	addr := testsvc.Addr(t, testsvc.RedisEnv)
	r := gormpurge(t, "cache", "purge", "/a", "--redis", addr, "--redis-channel", uniqueName(t))
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "no instance is subscribed to this channel: check --redis-channel")
}

// closedPort returns a 127.0.0.1 address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// Usage errors send nothing and say what to fix; no password is printed.
func TestCacheErrors(t *testing.T) {
	t.Parallel()
	down := closedPort(t)
	for _, tc := range []struct {
		name string
		args []string
		vars map[string]string
		code int
		want string
	}{
		{"no cache", []string{"cache", "clear"}, nil, exitUsage, "no cache named: pass --redis ADDR"},
		{"no command", []string{"cache"}, nil, exitUsage, "no command given"},
		{"channel without redis", []string{"cache", "clear", "--redis-channel", "blog"}, nil, exitUsage, "--redis-channel and --redis-prefix need --redis"},
		{"nats without subject", []string{"cache", "clear", "--nats", "nats://127.0.0.1:4222"}, nil, exitUsage, "--nats needs --nats-subject"},
		{"subject without nats", []string{"cache", "clear", "--nats-subject", "blog"}, nil, exitUsage, "--nats-subject needs --nats URL"},
		{"nothing to purge", []string{"cache", "purge", "--redis", down}, nil, exitUsage, "nothing to purge"},
		{"invalid URL", []string{"cache", "purge", "--redis", down, "ftp://www.example.com/a"}, nil, exitUsage, `argument 1: "ftp://www.example.com/a"`},
		{"invalid tag", []string{"cache", "purge", "--redis", down, "--tags", "a b"}, nil, exitUsage, `--tags value 1: "a b"`},
		{"clear takes no URL", []string{"cache", "clear", "--redis", down, "/a"}, nil, exitUsage, "takes no arguments"},
		{"bad timeout", []string{"cache", "clear", "--redis", down, "--timeout", "0s"}, nil, exitUsage, "--timeout 0s"},
		{"redis down", []string{"cache", "clear", "--redis", "redis://app:s3cret@" + down + "/1"}, nil, exitFailed,
			"reaching Redis at " + down + "/1: "},
		{"redis down from the environment", []string{"cache", "clear"}, map[string]string{redisURLEnv: "redis://:s3cret@" + down}, exitFailed,
			"reaching Redis at " + down + ": "},
		{"redis URL", []string{"cache", "clear", "--redis", "redis://app:s3cret@127.0.0.1:6379/x"}, nil, exitUsage,
			"--redis redis://REDACTED@127.0.0.1:6379/x: "},
		{"redis address", []string{"cache", "clear", "--redis", "app:s3cret@127.0.0.1:6379"}, nil, exitUsage,
			"--redis REDACTED@127.0.0.1:6379: want host:port"},
		{"nats down", []string{"cache", "clear", "--nats", "nats://app:s3cret@" + down, "--nats-subject", "blog"}, nil, exitFailed,
			"reaching NATS at nats://REDACTED@" + down + ": "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := tc.args
			if !slices.Contains(args, "--timeout") {
				args = append(slices.Clone(args), "--timeout", "5s")
			}
			r := harness{vars: tc.vars}.run(t, args...)
			assert.Equal(t, tc.code, r.code, r.stderr)
			assert.Contains(t, r.stderr, tc.want)
			assert.NotContains(t, r.stderr+r.stdout, "s3cret")
			assert.Empty(t, r.stdout)
		})
	}
}

func TestCacheHelp(t *testing.T) {
	t.Parallel()
	r := gormpurge(t, "cache", "purge", "--help")
	require.Equal(t, exitOK, r.code)
	for _, want := range []string{"--redis ADDR", "--redis-prefix PREFIX", "--redis-channel CHANNEL", "--nats URL",
		"--nats-subject SUBJECT", "--tags T", "Caches:", "Objects:"} {
		assert.Contains(t, r.stdout, want)
	}
	r = gormpurge(t, "--help")
	require.Equal(t, exitOK, r.code)
	assert.Contains(t, r.stdout, "cache ")
}
