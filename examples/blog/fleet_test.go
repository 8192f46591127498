package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/internal/tcpproxy"
	"github.com/gormpurge/gormpurge/internal/testsvc"
)

// uniqueName returns a -cache-name no other run uses: the Redis prefix and
// channel, or the NATS subject, of one test.
func uniqueName(*testing.T) string { return testsvc.UniqueName("blogtest-") }

// deleteRedisKeys deletes, when t ends, the keys of the Redis store named
// name: pages kept until purged would otherwise stay in the shared Redis.
func deleteRedisKeys(t *testing.T, addr, name string) {
	t.Cleanup(func() {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		defer rdb.Close()
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
	})
}

// binary is the blog built once for the tests that run it as processes,
// in a directory TestMain removes.
var binary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// blogBinary builds the blog, once, and returns its path.
func blogBinary(t *testing.T) string {
	t.Helper()
	binary.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			binary.err = fmt.Errorf("the go command is needed to build the blog: %w", err)
			return
		}
		if binary.dir, binary.err = os.MkdirTemp("", "blog-e2e-"); binary.err != nil {
			return
		}
		binary.path = filepath.Join(binary.dir, "blog")
		out, err := exec.Command(goTool, "build", "-o", binary.path, ".").CombinedOutput()
		if err != nil {
			binary.err = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	require.NoError(t, binary.err)
	return binary.path
}

// removeBinary removes what blogBinary built.
func removeBinary() {
	if binary.dir != "" {
		_ = os.RemoveAll(binary.dir)
	}
}

// instance is the blog running as a process of its own.
type instance struct {
	t      *testing.T
	name   string
	url    string
	client *http.Client
	out    *syncBuffer // stdout and stderr
}

// startInstance runs the blog named name (in messages) as a process, on a
// free 127.0.0.1 port, on the SQLite file db, with args; it waits until
// the blog serves, and stops it when t ends.
func startInstance(t *testing.T, name, db string, args ...string) *instance {
	t.Helper()
	cmd := exec.Command(blogBinary(t), append([]string{"-addr", "127.0.0.1:0", "-db", db}, args...)...)
	in := &instance{t: t, name: name, out: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = in.out, in.out
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		in.client.CloseIdleConnections()
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
			assert.NoError(t, waitErr, "%s exits cleanly", name)
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("%s did not shut down within 20s", name)
		}
		if t.Failed() {
			t.Logf("log of %s:\n%s", name, in.out.String())
		}
	})
	in.client = &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	running := regexp.MustCompile(`(?m)^Blog running at (http://127\.0\.0\.1:\d+)/ `)
	deadline := time.After(60 * time.Second)
	for {
		if m := running.FindStringSubmatch(in.out.String()); m != nil {
			in.url = m[1]
			return in
		}
		select {
		case <-exited:
			require.FailNow(t, name+" exited before serving", "%v\n%s", waitErr, in.out.String())
		case <-deadline:
			require.FailNow(t, name+" did not serve within 60s", "%s", in.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// get gets path.
func (in *instance) get(path string) page {
	in.t.Helper()
	return in.send(http.MethodGet, path, nil)
}

// send sends a request for path, with form as its body when not nil.
func (in *instance) send(method, path string, form url.Values) page {
	in.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(in.t.Context(), method, in.url+path, body)
	require.NoError(in.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := in.client.Do(req)
	require.NoError(in.t, err, "%s %s on %s", method, path, in.name)
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	require.NoError(in.t, err)
	return page{status: res.StatusCode, cache: res.Header.Get(localcache.XCache), header: res.Header, body: string(data)}
}

// edit saves the edit form of the post at path with a new title.
func (in *instance) edit(path, title string) {
	in.t.Helper()
	p := in.send(http.MethodPost, path+"/edit", url.Values{"title": {title}, "body": {"Edited."}, "tags": {"caching, gormpurge"}})
	require.Equal(in.t, http.StatusSeeOther, p.status, "saving the edit on %s: %s", in.name, p.body)
}

// waitHit gets path until it is served from the cache, showing want, and
// fails if that takes more than 30 seconds. An instance with a bus caches
// nothing until it follows the bus.
func (in *instance) waitHit(path, want string) page {
	in.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p := in.get(path)
		require.Equal(in.t, http.StatusOK, p.status, "%s on %s: %s", path, in.name, p.body)
		require.Contains(in.t, p.body, want, "%s on %s", path, in.name)
		if p.cache == "HIT" {
			return p
		}
		require.True(in.t, time.Now().Before(deadline), "%s on %s: no HIT after 30s", path, in.name)
		time.Sleep(20 * time.Millisecond)
	}
}

// fleetMode is one way of sharing the page cache between instances.
type fleetMode struct {
	name string
	env  string // the service's address
	// args returns an instance's flags for the service at addr and the
	// cache named name.
	args func(addr, name string) []string
}

var fleetModes = []fleetMode{
	{"redis-store", testsvc.RedisEnv, func(addr, name string) []string {
		return []string{"-redis", addr, "-cache-name", name}
	}},
	{"redis-bus", testsvc.RedisEnv, func(addr, name string) []string {
		return []string{"-redis", addr, "-redis-bus", "-cache-name", name}
	}},
	{"nats-bus", testsvc.NATSEnv, func(addr, name string) []string {
		return []string{"-nats", addr, "-cache-name", name}
	}},
}

// startPair starts two instances of the blog, A then B (A creates the
// database), on one SQLite file, with the cache mode m: A reaches the
// service at its address, B at bAddr (a proxy, or the same address).
func startPair(t *testing.T, m fleetMode, addr, bAddr string) (a, b *instance) {
	t.Helper()
	name := uniqueName(t)
	if m.env == testsvc.RedisEnv {
		deleteRedisKeys(t, addr, name)
	}
	db := filepath.Join(t.TempDir(), "blog.db")
	a = startInstance(t, "A", db, m.args(addr, name)...)
	b = startInstance(t, "B", db, m.args(bAddr, name)...)
	return a, b
}

// Two instances of the blog, two processes on one SQLite file, share their
// page cache: a page cached on both, an edit through A, and the next view
// on B is fresh, with the new title. For each mode: one Redis store shared
// by both, a memory store on each kept coherent over Redis pub/sub, or
// over NATS.
func TestTwoInstances(t *testing.T) {
	for _, m := range fleetModes {
		t.Run(m.name, func(t *testing.T) {
			addr := testsvc.Addr(t, m.env)
			a, b := startPair(t, m, addr, addr)

			a.waitHit(firstPost, oldTitle)
			b.waitHit(firstPost, oldTitle)
			for _, in := range []*instance{a, b} {
				p := in.get(firstPost)
				assert.Equal(t, "HIT", p.cache, "the second view on %s", in.name)
				assert.Contains(t, p.body, hitBadge)
			}

			const newTitle = "Edited on A"
			a.edit(firstPost, newTitle)

			// A's purge reached the bus before A answered (saving waits
			// for it); B applies it one delivery later.
			p, stale := viewAfterPurge(t, b, firstPost)
			if stale > 0 {
				t.Logf("B served the old page %d times while the purge was on its way", stale)
			}
			assert.Equal(t, "MISS", p.cache, "the first view on B after the purge")
			assert.Contains(t, p.body, newTitle)
			assert.NotContains(t, p.body, oldTitle)
			b.waitHit(firstPost, newTitle)

			p = a.get(firstPost)
			assert.Contains(t, p.body, newTitle)
			assert.NotContains(t, p.body, oldTitle)
		})
	}
}

// viewAfterPurge gets path on in until the old page is gone, for at most
// 10 seconds, and returns the first view without it and how many views
// still had it: with a bus, the purge reaches the other instance one
// delivery after the editor's instance published it.
func viewAfterPurge(t *testing.T, in *instance, path string) (page, int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for stale := 0; ; stale++ {
		p := in.get(path)
		require.Equal(t, http.StatusOK, p.status, p.body)
		if !strings.Contains(p.body, oldTitle) {
			return p, stale
		}
		require.True(t, time.Now().Before(deadline), "%s on %s still shows the old title 10s after the purge", path, in.name)
		time.Sleep(time.Millisecond)
	}
}

// B's connection to the bus is cut while A purges the page B has cached:
// B must never serve it again. While cut, B renders every page; once
// restored, it caches again, and the page it caches is the new one.
func TestTwoInstancesSurviveABusOutage(t *testing.T) {
	for _, m := range fleetModes {
		if m.name == "redis-store" {
			continue // no bus
		}
		t.Run(m.name, func(t *testing.T) {
			addr := testsvc.Addr(t, m.env)
			target := addr
			if m.env == testsvc.NATSEnv {
				u, err := url.Parse(addr)
				require.NoError(t, err)
				target = u.Host
			}
			proxy := tcpproxy.New(t, target)
			bAddr := proxy.Addr()
			if m.env == testsvc.NATSEnv {
				bAddr = "nats://" + bAddr
			}
			a, b := startPair(t, m, addr, bAddr)
			a.waitHit(firstPost, oldTitle)
			b.waitHit(firstPost, oldTitle)

			proxy.Cut()
			// B notices, and stops serving from its cache.
			deadline := time.Now().Add(30 * time.Second)
			for b.get(firstPost).cache != "MISS" {
				require.True(t, time.Now().Before(deadline), "B still serves from its cache 30s after its bus was cut")
				time.Sleep(10 * time.Millisecond)
			}

			const newTitle = "Edited during the outage"
			a.edit(firstPost, newTitle) // reaches A and the bus, not B
			noOldPage := func(p page, when string) {
				t.Helper()
				require.Equal(t, http.StatusOK, p.status, p.body)
				assert.NotContains(t, p.body, oldTitle, "B %s", when)
				assert.Contains(t, p.body, newTitle, "B %s", when)
			}
			for range 20 {
				p := b.get(firstPost)
				noOldPage(p, "while cut")
				assert.Equal(t, "MISS", p.cache, "B renders every page while cut")
				time.Sleep(10 * time.Millisecond)
			}

			proxy.Restore()
			deadline = time.Now().Add(30 * time.Second)
			for {
				p := b.get(firstPost)
				noOldPage(p, "after the restore")
				if p.cache == "HIT" {
					break
				}
				require.True(t, time.Now().Before(deadline), "B caches nothing 30s after its bus was restored")
				time.Sleep(10 * time.Millisecond)
			}
			for range 5 {
				p := b.get(firstPost)
				noOldPage(p, "after it caches again")
				assert.Equal(t, "HIT", p.cache)
			}
		})
	}
}

// With the shared Redis store out of reach, the blog renders every page
// (the cache fails open), never answering 500; once Redis is back, pages
// are served from it again.
func TestSharedRedisStoreFailsOpen(t *testing.T) {
	addr := testsvc.Addr(t, testsvc.RedisEnv)
	proxy := tcpproxy.New(t, addr)
	name := uniqueName(t)
	deleteRedisKeys(t, addr, name)
	b := startBlog(t, config{redis: proxy.Addr(), cacheName: name})

	b.miss(firstPost, oldTitle)
	b.hit(firstPost, oldTitle)

	proxy.Cut()
	for range 3 {
		b.miss(firstPost, oldTitle)
		b.miss("/", oldTitle)
	}
	assert.Contains(t, b.log.String(), "localcache: store get failed", "the failures are logged")

	proxy.Restore()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p := b.get(firstPost)
		require.Equal(t, http.StatusOK, p.status, p.body)
		if p.cache == "HIT" {
			break
		}
		require.True(t, time.Now().Before(deadline), "no HIT 30s after Redis came back")
		time.Sleep(10 * time.Millisecond)
	}
	b.hit(firstPost, oldTitle)
}

// A -nats server list (one URL or several, separated by commas) with
// passwords or tokens never shows them, whether the list parses, whether
// the servers answer, and in the error as in the log.
func TestNATSCredentialsNeverShown(t *testing.T) {
	down := strings.TrimPrefix(downNode(t), "http://")
	secrets := []string{"alice", "s3cret", "T0KEN", `T"0K\EN`, "s3%zz"}
	for name, tc := range map[string]struct {
		nats string
		want string // in the error
	}{
		"token down":             {"nats://T0KEN@" + down, "-nats nats://REDACTED@" + down},
		"list down":              {"nats://alice:s3cret@" + down + ",nats://T0KEN@" + down, "-nats nats://REDACTED@" + down + ",nats://REDACTED@" + down},
		"list with a bad port":   {"nats://T0KEN@" + down + ", nats://alice:s3cret@127.0.0.1:x", "-nats nats://REDACTED@" + down + ", REDACTED@127.0.0.1:x: server URL REDACTED@127.0.0.1:x does not parse"},
		"list with a bad escape": {"nats://T0KEN@" + down + ",nats://alice:s3%zz@127.0.0.1:1", "-nats nats://REDACTED@" + down + ",REDACTED@127.0.0.1:1"},
		"quoted token":           {`nats://T"0K\EN@127.0.0.1:x`, "-nats REDACTED@127.0.0.1:x"},
		"mixed schemes":          {"nats://T0KEN@" + down + ",ws://alice:s3cret@" + down, "-nats nats://REDACTED@" + down + ",ws://REDACTED@" + down},
	} {
		t.Run(name, func(t *testing.T) {
			var out syncBuffer
			_, err := newApp(config{nats: tc.nats, dbPath: filepath.Join(t.TempDir(), "blog.db")}, &out)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			for _, s := range secrets {
				assert.NotContains(t, err.Error(), s)
				assert.NotContains(t, out.String(), s)
			}
		})
	}

	t.Run("log", func(t *testing.T) {
		host := strings.TrimPrefix(testsvc.Addr(t, testsvc.NATSEnv), "nats://")
		var out syncBuffer
		a, err := newApp(config{
			nats:      "nats://T0KEN@" + host + ",nats://alice:s3cret@" + host,
			cacheName: uniqueName(t),
			dbPath:    filepath.Join(t.TempDir(), "blog.db"),
		}, &out)
		require.NoError(t, err)
		require.NoError(t, a.Close(context.Background()))
		assert.Contains(t, out.String(), "nats://REDACTED@"+host+",nats://REDACTED@"+host)
		for _, s := range secrets {
			assert.NotContains(t, out.String(), s)
		}
	})
}

// blockedBus is a bus whose subscription never comes up.
type blockedBus struct{}

func (blockedBus) Publish(context.Context, localcache.Event) error { return nil }

func (blockedBus) Subscribe(ctx context.Context) (localcache.Subscription, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// With a bus, the memory store serves nothing from the moment the blog
// starts following it until the subscription is up: a page cached before
// could be one whose purge the bus carried meanwhile.
func TestMemoryStoreOffUntilTheBusIsUp(t *testing.T) {
	ctx := context.Background()
	store, err := localcache.NewMemoryStore()
	require.NoError(t, err)
	gen, err := store.Generation(ctx)
	require.NoError(t, err)
	ok, err := store.Set(ctx, "/page", &localcache.Entry{Body: []byte("cached before the bus")}, gen)
	require.NoError(t, err)
	require.True(t, ok)

	var out syncBuffer
	a := &app{memory: store, store: store, bus: blockedBus{}, log: slog.New(slog.NewTextHandler(&out, nil))}
	a.follow()
	defer a.stopFollow()
	_, hit, err := store.Get(ctx, "/page")
	require.NoError(t, err)
	assert.False(t, hit, "a page cached before the bus is up is dropped, not served")
	assert.True(t, store.Suspended())
	assert.Contains(t, out.String(), "page cache: off until the bus is up")
}

// -redis user:password@host without a scheme is refused, never dialled as
// an address, whose errors (and go-redis's own log) would quote it.
func TestRedisCredentialsWithoutASchemeNeverShown(t *testing.T) {
	down := strings.TrimPrefix(downNode(t), "http://")
	for _, addr := range []string{"app:s3cretpw@" + down, "s3cretpw@" + down, "app:s3cretpw@" + down + "/0"} {
		var out syncBuffer
		_, err := newApp(config{redis: addr, cacheName: "blog", dbPath: filepath.Join(t.TempDir(), "blog.db")}, &out)
		require.Error(t, err, addr)
		assert.Contains(t, err.Error(), "want host:port, or a URL such as redis://")
		assert.NotContains(t, err.Error(), "s3cretpw")
		assert.NotContains(t, out.String(), "s3cretpw")
	}
}
