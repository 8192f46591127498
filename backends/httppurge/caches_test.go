package httppurge_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/httppurge"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/internal/cachetest"
)

// These tests run against real Varnish, nginx and Squid on loopback when
// GORMPURGE_TEST_CACHES=1 (see internal/cachetest); they skip otherwise.

const site = "www.example.test"

// cacheBackend returns a Backend for the nodes, with the tag mode the
// cache kind supports.
func cacheBackend(t *testing.T, kind cachetest.Kind, opts []httppurge.Option, nodes ...*cachetest.Cache) *httppurge.Backend {
	t.Helper()
	var urls []string
	for _, c := range nodes {
		urls = append(urls, c.URL)
	}
	base := []httppurge.Option{httppurge.WithNodes(urls...), httppurge.WithSiteHost(site), httppurge.WithName(string(kind))}
	if kind != cachetest.Varnish {
		base = append(base, httppurge.WithTagMode(httppurge.NoTags()))
	}
	return newBackend(t, append(base, opts...)...)
}

// warm fetches path from c until it is a hit and returns the cached body.
// nginx makes a response visible in its cache a moment after the client
// has read it, so a GET right after the first may still miss: it waits for
// the hit instead of assuming the second GET is one.
func warm(t *testing.T, c *cachetest.Cache, path string, kv ...string) string {
	t.Helper()
	first := c.Get(t, site, path, kv...)
	require.Equal(t, http.StatusOK, first.Status, "GET %s: %s", path, first.Body)
	served := []string{first.Body}
	var hit cachetest.Page
	require.Eventually(t, func() bool {
		hit = c.Get(t, site, path, kv...)
		if !hit.Hit {
			served = append(served, hit.Body)
		}
		return hit.Hit
	}, 5*time.Second, 10*time.Millisecond, "GET %s never became a hit, says %s", path, c.Kind.HitHeader())
	require.Contains(t, served, hit.Body, "the cache serves a page the origin rendered")
	return hit.Body
}

// assertPurged checks that the next GET of path is a miss with a new body.
func assertPurged(t *testing.T, c *cachetest.Cache, path, old string, kv ...string) {
	t.Helper()
	p := c.Get(t, site, path, kv...)
	assert.False(t, p.Hit, "%s: GET %s after the purge is a miss", c.Kind, path)
	assert.NotEqual(t, old, p.Body, "%s: GET %s shows a newly rendered page", c.Kind, path)
}

// assertCached checks that path is still served from the cache, unchanged.
func assertCached(t *testing.T, c *cachetest.Cache, path, old string, kv ...string) {
	t.Helper()
	p := c.Get(t, site, path, kv...)
	assert.True(t, p.Hit, "%s: GET %s is still a hit", c.Kind, path)
	assert.Equal(t, old, p.Body)
}

// On each cache, a purge by path (under the site host) or by absolute URL
// removes the page; other pages, and the same path on another host, stay.
func TestRealCachesPurgeURL(t *testing.T) {
	t.Parallel()
	for _, kind := range cachetest.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			cachetest.Require(t, kind)
			c := cachetest.Start(t, kind, cachetest.StartOrigin(t, nil))
			b := cacheBackend(t, kind, nil, c)

			byPath := warm(t, c, "/articles/1")
			byURL := warm(t, c, "/articles/2?page=2")
			other := warm(t, c, "/articles/3")
			c.Get(t, "other.example.test", "/articles/1")
			otherHost := c.Get(t, "other.example.test", "/articles/1")
			require.True(t, otherHost.Hit)

			res, err := b.Purge(t.Context(), backends.NewRequest(
				[]string{"/articles/1", "http://" + site + "/articles/2?page=2", "/never-cached"}, nil))
			require.NoError(t, err)
			assertPurged(t, c, "/articles/1", byPath)
			assertPurged(t, c, "/articles/2?page=2", byURL)
			assertCached(t, c, "/articles/3", other)
			p := c.Get(t, "other.example.test", "/articles/1")
			assert.True(t, p.Hit, "the same path on another host is another page")

			want := "ok: 2 purged, 1 not cached"
			if kind == cachetest.Varnish {
				want = "ok: 3 purged, 0 not cached" // return(purge) answers 200 either way
			}
			assert.Equal(t, want, res.IDs[c.URL])
		})
	}
}

// A client outside the cache's purge ACL is refused for good, with a hint
// naming the address the cache saw; the page stays cached.
func TestRealCachesRefuseOtherClients(t *testing.T) {
	t.Parallel()
	for _, kind := range cachetest.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			cachetest.Require(t, kind)
			c := cachetest.Start(t, kind, cachetest.StartOrigin(t, nil))
			tr := &http.Transport{DialContext: (&net.Dialer{
				LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, // not in the caches' ACLs
			}).DialContext}
			t.Cleanup(tr.CloseIdleConnections)
			b := cacheBackend(t, kind, []httppurge.Option{httppurge.WithHTTPClient(&http.Client{Transport: tr})}, c)
			body := warm(t, c, "/articles/1")

			_, err := b.Purge(t.Context(), backends.NewRequest([]string{"/articles/1"}, nil))
			require.Error(t, err)
			assert.True(t, backends.IsPermanent(err))
			errs := nodeErrors(err)
			require.Len(t, errs, 1)
			want := map[cachetest.Kind]int{cachetest.Varnish: 405, cachetest.Nginx: 403, cachetest.Squid: 403}[kind]
			assert.Equal(t, want, errs[0].StatusCode, errs[0].Status)
			assert.Equal(t, c.URL, errs[0].Node)
			assert.Contains(t, errs[0].Hint, "from this client (127.0.0.2): add it to the cache's purge ACL")
			assertCached(t, c, "/articles/1", body)
		})
	}
}

// One purge removes every Vary variant of a page from Varnish.
func TestVarnishPurgesEveryVariant(t *testing.T) {
	t.Parallel()
	cachetest.Require(t, cachetest.Varnish)
	c := cachetest.Start(t, cachetest.Varnish, cachetest.StartOrigin(t, nil))
	b := cacheBackend(t, cachetest.Varnish, nil, c)
	en := warm(t, c, "/vary/page", "Accept-Language", "en")
	fr := warm(t, c, "/vary/page", "Accept-Language", "fr")
	require.NotEqual(t, en, fr, "two variants")

	_, err := b.Purge(t.Context(), backends.NewRequest([]string{"/vary/page"}, nil))
	require.NoError(t, err)
	assertPurged(t, c, "/vary/page", en, "Accept-Language", "en")
	assertPurged(t, c, "/vary/page", fr, "Accept-Language", "fr")
}

// An xkey purge removes every page with the tag, and only those, also when
// the tags are too many for one header.
func TestVarnishXkey(t *testing.T) {
	t.Parallel()
	cachetest.Require(t, cachetest.Varnish)
	c := cachetest.Start(t, cachetest.Varnish, cachetest.StartOrigin(t, nil))
	b := cacheBackend(t, cachetest.Varnish, nil, c)

	t.Run("one tag", func(t *testing.T) {
		a := warm(t, c, "/x/1?tags=row-1")
		bb := warm(t, c, "/x/2?tags=row-1,row-2")
		other := warm(t, c, "/x/3?tags=row-2")
		_, err := b.Purge(t.Context(), backends.NewRequest(nil, []string{"row-1"}))
		require.NoError(t, err)
		assertPurged(t, c, "/x/1?tags=row-1", a)
		assertPurged(t, c, "/x/2?tags=row-1,row-2", bb)
		assertCached(t, c, "/x/3?tags=row-2", other)
	})

	t.Run("more tags than one header holds", func(t *testing.T) {
		var tags []string
		for i := range 1500 {
			tags = append(tags, fmt.Sprintf("filler-tag-number-%04d", i)) // 23 bytes: 36 KB in all
		}
		tags = append(tags, "zz-last") // sorted last, so in the last request
		page := warm(t, c, "/split/1?tags=zz-last")
		kept := warm(t, c, "/split/2?tags=zz-other")

		unsplit := httppurge.XKey()
		unsplit.MaxHeaderBytes = 0
		whole := newBackend(t, httppurge.WithNodes(c.URL), httppurge.WithTagMode(unsplit))
		_, err := whole.Purge(t.Context(), backends.NewRequest(nil, tags))
		require.Error(t, err, "Varnish refuses a 36 KB header")
		t.Logf("unsplit: %v", err)
		assertCached(t, c, "/split/1?tags=zz-last", page)

		res, err := b.Purge(t.Context(), backends.NewRequest(nil, tags))
		require.NoError(t, err)
		assert.Equal(t, "ok: 5 purged, 0 not cached", res.IDs[c.URL], "1501 tags of 24 bytes in 8000-byte headers")
		assertPurged(t, c, "/split/1?tags=zz-last", page)
		assertCached(t, c, "/split/2?tags=zz-other", kept)
	})

	t.Run("soft purge", func(t *testing.T) {
		soft := cacheBackend(t, cachetest.Varnish, []httppurge.Option{httppurge.WithTagMode(httppurge.XKeySoft())}, c)
		old := warm(t, c, "/soft/1?tags=soft-1")
		_, err := soft.Purge(t.Context(), backends.NewRequest(nil, []string{"soft-1"}))
		require.NoError(t, err)
		// Varnish may serve the stale page once while it fetches a new one.
		require.Eventually(t, func() bool { return c.Get(t, site, "/soft/1?tags=soft-1").Body != old },
			5*time.Second, 10*time.Millisecond)
	})
}

// A BAN expression built from tags removes the tagged pages.
func TestVarnishBanTags(t *testing.T) {
	t.Parallel()
	cachetest.Require(t, cachetest.Varnish)
	c := cachetest.Start(t, cachetest.Varnish, cachetest.StartOrigin(t, nil))
	b := cacheBackend(t, cachetest.Varnish, []httppurge.Option{httppurge.WithTagMode(httppurge.BanTags("X-Ban-Tags"))}, c)
	tagged := warm(t, c, "/ban/1?tags=post.7")
	near := warm(t, c, "/ban/2?tags=post-7,post.77")
	_, err := b.Purge(t.Context(), backends.NewRequest(nil, []string{"post.7", "feed(rss)"}))
	require.NoError(t, err)
	assertPurged(t, c, "/ban/1?tags=post.7", tagged)
	assertCached(t, c, "/ban/2?tags=post-7,post.77", near) // the dot is quoted, and tags match whole
}

// logRecords is a slog handler that keeps every record as a line.
type logRecords struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecords) WithGroup(string) slog.Handler            { return l }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, b.String())
	return nil
}

// has reports whether a record contains every one of parts.
func (l *logRecords) has(parts ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// Two Varnish servers as a cluster: both are purged; with one stopped, the
// other is purged all the same, and the stopped one's failure is reported
// and retried until it is back. Both designs: one Backend for the cluster,
// and one Backend per node.
// It is long because it is one story, told in steps: both up, one down,
// the other back.
func TestVarnishCluster(t *testing.T) {
	t.Parallel()
	for _, perNode := range []bool{false, true} {
		name := map[bool]string{false: "New", true: "NewCluster"}[perNode]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cachetest.Require(t, cachetest.Varnish)
			origin := cachetest.StartOrigin(t, nil)
			v1 := cachetest.Start(t, cachetest.Varnish, origin)
			v2 := cachetest.Start(t, cachetest.Varnish, origin)
			opts := []httppurge.Option{
				httppurge.WithNodes(v1.URL, v2.URL), httppurge.WithSiteHost(site),
				httppurge.WithName("varnish"), httppurge.WithLogger(quiet),
			}
			var bs []backends.Backend
			if perNode {
				c, err := httppurge.NewCluster(opts...)
				require.NoError(t, err)
				t.Cleanup(func() { require.NoError(t, c.Close(context.Background())) })
				bs = c.Backends()
			} else {
				bs = []backends.Backend{newBackend(t, opts...)}
			}
			logs := &logRecords{}
			rep := &reports{}
			d, err := dispatcher.New(bs,
				dispatcher.WithLogger(slog.New(logs)),
				dispatcher.WithLinger(0),
				dispatcher.WithBackoff(20*time.Millisecond, 100*time.Millisecond),
				// Retry for as long as the stopped node takes to come back,
				// however loaded the machine.
				dispatcher.WithMaxAttempts(100_000),
				dispatcher.WithMaxElapsed(time.Minute),
				dispatcher.WithOnResult(rep.add))
			require.NoError(t, err)
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				require.NoError(t, d.Close(ctx))
			})
			purge := func(path string) {
				t.Helper()
				require.NoError(t, d.Enqueue(t.Context(), backends.NewRequest([]string{path}, nil)))
			}

			// Both up: both purged.
			old1, old2 := warm(t, v1, "/page"), warm(t, v2, "/page")
			purge("/page")
			require.NoError(t, d.Flush(t.Context()))
			assertPurged(t, v1, "/page", old1)
			assertPurged(t, v2, "/page", old2)

			// One down: the other is purged all the same.
			v2.Stop()
			old1 = warm(t, v1, "/page")
			purge("/page")
			require.Eventually(t, func() bool {
				p := v1.Get(t, site, "/page")
				return !p.Hit && p.Body != old1
			}, 10*time.Second, 10*time.Millisecond, "v1 is purged while v2 is down")
			require.Eventually(t, func() bool {
				return logs.has("will retry", v2.URL, "connection refused")
			}, 10*time.Second, 10*time.Millisecond, "v2's failure is reported")

			// v2 comes back: the retry reaches it.
			v2.Restart()
			require.NoError(t, d.Flush(t.Context()))
			name2 := "varnish"
			if perNode {
				name2 = "varnish@" + strings.TrimPrefix(v2.URL, "http://")
			}
			reps := rep.of(name2)
			require.NotEmpty(t, reps)
			last := reps[len(reps)-1]
			assert.Equal(t, dispatcher.Delivered, last.Outcome)
			assert.GreaterOrEqual(t, last.Attempts, 2, "v2 was retried until it came back")
			assert.Equal(t, "ok: 1 purged, 0 not cached", last.Result.IDs[v2.URL])
			if !perNode {
				assert.Equal(t, "ok in an earlier attempt", last.Result.IDs[v1.URL], "v1 was not purged again")
			}
		})
	}
}
