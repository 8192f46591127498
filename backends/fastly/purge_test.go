package fastly_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/fastly"
	"github.com/gormpurge/gormpurge/backends/fastly/fastlytest"
)

func tags(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("tag-%04d", i)
	}
	return out
}

// TestKeyBatches checks that tags go in batch surrogate-key purges of at
// most 256 keys, each key's purge ID in the result.
func TestKeyBatches(t *testing.T) {
	for _, c := range []struct {
		tags    int
		batches []int
	}{
		{1, []int{1}},
		{256, []int{256}},
		{257, []int{256, 1}},
		{600, []int{256, 256, 88}},
	} {
		t.Run(fmt.Sprint(c.tags), func(t *testing.T) {
			srv := newFake(t)
			b := newBackend(t, srv)
			r := backends.NewRequest(nil, tags(c.tags))
			res, err := b.Purge(t.Context(), r)
			require.NoError(t, err)
			var sizes []int
			for _, p := range srv.Purges() {
				require.Equal(t, fastlytest.KindKeys, p.Kind)
				require.Equal(t, srv.ServiceID(), p.ServiceID)
				sizes = append(sizes, len(p.Keys))
				for i, k := range p.Keys {
					assert.Equal(t, p.IDs[i], res.IDs[k], "the purge ID of %s", k)
				}
			}
			assert.ElementsMatch(t, c.batches, sizes)
			assert.ElementsMatch(t, r.Tags, srv.Keys())
			assert.Equal(t, c.tags, res.Objects)
		})
	}
	assert.Equal(t, 256, newBackend(t, newFake(t)).Limits().MaxTags, "Limits cut tags at Fastly's batch size")
}

// TestURLs checks how URLs become URL purges: one per hostname for a path,
// one for the http and https spellings of a page, the exact encoding, and
// each purge ID in the result.
func TestURLs(t *testing.T) {
	srv := newFake(t)
	b := newBackend(t, srv, fastly.WithHostnames("www.example.com", "EXAMPLE.com"))
	res, err := b.Purge(t.Context(), backends.Request{URLs: []string{
		"/posts/1?page=2",
		"http://cdn.example.net/caf\u00e9",
		"https://cdn.example.net/caf%C3%A9",
		"https://www.example.com/posts/1?page=2", // the path's purge already
	}})
	require.NoError(t, err)
	want := []string{"www.example.com/posts/1?page=2", "example.com/posts/1?page=2", "cdn.example.net/caf%C3%A9"}
	assert.ElementsMatch(t, want, srv.URLs(), "one purge per cached URL")
	for _, p := range srv.Purges() {
		assert.Equal(t, p.IDs[0], res.IDs[p.URL])
		assert.False(t, p.Soft)
	}
	assert.Equal(t, fastly.MaxURLRequests/2, b.Limits().MaxURLs, "Limits count a path once per hostname")
	assert.True(t, b.Limits().OneKind)
}

// TestSoftPurge checks that WithSoftPurge makes URL and key purges soft
// and that purge_all stays hard.
func TestSoftPurge(t *testing.T) {
	for _, soft := range []bool{false, true} {
		t.Run(fmt.Sprintf("soft=%t", soft), func(t *testing.T) {
			srv := newFake(t)
			var opts []fastly.Option
			if soft {
				opts = append(opts, fastly.WithSoftPurge())
			}
			b := newBackend(t, srv, opts...)
			_, err := b.Purge(t.Context(), backends.Request{URLs: []string{"https://www.example.com/"}})
			require.NoError(t, err)
			_, err = b.Purge(t.Context(), backends.Request{Tags: []string{"k"}})
			require.NoError(t, err)
			_, err = b.PurgeAll(t.Context())
			require.NoError(t, err)
			p := srv.Purges()
			require.Len(t, p, 3)
			assert.Equal(t, soft, p[0].Soft, "URL")
			assert.Equal(t, soft, p[1].Soft, "keys")
			assert.False(t, p[2].Soft, "purge_all is always hard")
			assert.Contains(t, b.String(), map[bool]string{false: "hard", true: "soft"}[soft])
		})
	}
}

// TestClassification checks how each answer of Fastly's reaches the
// dispatcher, for a request of URLs and one of tags.
func TestClassification(t *testing.T) {
	type class int
	const (
		temporary class = iota
		permanent
		retryAfter
	)
	cases := []struct {
		status int
		want   class
		text   string
	}{
		{400, permanent, "Fastly refused the request"},
		{401, permanent, "the API token was refused"},
		{403, permanent, "purge_select"},
		{404, permanent, "Record not found"},
		{429, retryAfter, "rate limit"},
		{500, temporary, "Internal Server Error"},
		{502, temporary, "Bad Gateway"},
		{503, temporary, "Service Unavailable"},
		{504, temporary, "Gateway Timeout"},
	}
	for _, c := range cases {
		for _, r := range []backends.Request{
			{URLs: []string{"https://www.example.com/a", "https://www.example.com/b"}},
			{Tags: []string{"a", "b"}},
		} {
			kind := map[bool]string{true: "urls", false: "tags"}[len(r.URLs) > 0]
			t.Run(fmt.Sprintf("%d/%s", c.status, kind), func(t *testing.T) {
				srv := newFake(t)
				b := newBackend(t, srv)
				srv.FailNext(c.status, 100)
				_, err := b.Purge(t.Context(), r)
				require.Error(t, err)
				var fe *fastly.Error
				require.ErrorAs(t, err, &fe)
				assert.Equal(t, c.status, fe.Status)
				assert.Contains(t, err.Error(), c.text)
				d, delayed := backends.RetryDelay(err)
				_, partial := backends.FailedObjects(err)
				assert.False(t, partial, "the whole request failed")
				assert.Equal(t, c.want == permanent, backends.IsPermanent(err), "permanent: %v", err)
				assert.Equal(t, c.want == retryAfter, delayed, "retry after: %v", err)
				if delayed {
					assert.Equal(t, time.Second, d, "Retry-After: 1")
					assert.ErrorIs(t, err, fastly.ErrRateLimited)
				}
			})
		}
	}
}

// TestUnknownService checks that a service the token does not know is a
// permanent failure naming the setting.
func TestUnknownService(t *testing.T) {
	srv := newFake(t)
	b := newBackend(t, srv, fastly.WithServiceID("nosuchservice"))
	_, err := b.Purge(t.Context(), backends.Request{Tags: []string{"k"}})
	require.Error(t, err)
	assert.True(t, backends.IsPermanent(err))
	assert.Contains(t, err.Error(), "Cannot find service 'nosuchservice'")
	assert.Contains(t, err.Error(), "WithServiceID or FASTLY_SERVICE_ID")
	_, err = b.PurgeAll(t.Context())
	assert.True(t, backends.IsPermanent(err), "%v", err)
}

// TestStopOnBadToken checks that a refused token stops the URL purges not
// sent yet: a bad token does not cost one request per URL.
func TestStopOnBadToken(t *testing.T) {
	srv := newFake(t)
	b := newBackend(t, srv, fastly.WithAPIToken("wrong"), fastly.WithConcurrency(2))
	var urls []string
	for i := range 100 {
		urls = append(urls, fmt.Sprintf("https://www.example.com/%d", i))
	}
	_, err := b.Purge(t.Context(), backends.NewRequest(urls, nil))
	require.Error(t, err)
	assert.True(t, backends.IsPermanent(err))
	_, partial := backends.FailedObjects(err)
	assert.False(t, partial)
	assert.LessOrEqual(t, srv.Responses()[401], 2, "at most the requests in flight")
}

// TestPartial checks that the objects that failed, and only they, are
// reported, as the Request held them, classified by their failures.
func TestPartial(t *testing.T) {
	cases := []struct {
		name      string
		hosts     []string
		fail      map[string]int // cached URL -> status
		urls      []string
		failed    []string
		permanent bool
		delayed   bool
	}{
		{name: "a 500 among 200s", fail: map[string]int{"b.example/x": 500},
			urls: []string{"http://a.example/x", "http://b.example/x", "http://c.example/x"}, failed: []string{"http://b.example/x"}},
		{name: "a 403 among 200s", fail: map[string]int{"b.example/x": 403},
			urls: []string{"http://a.example/x", "http://b.example/x"}, failed: []string{"http://b.example/x"}, permanent: true},
		{name: "a 403 and a 503", fail: map[string]int{"b.example/x": 403, "c.example/x": 503},
			urls: []string{"http://a.example/x", "http://b.example/x", "http://c.example/x"}, failed: []string{"http://b.example/x", "http://c.example/x"}},
		{name: "a path failing on one of two hosts", hosts: []string{"a.example", "b.example"}, fail: map[string]int{"b.example/p": 500},
			urls: []string{"/p", "/q"}, failed: []string{"/p"}},
		{name: "both spellings of a failed page", fail: map[string]int{"b.example/x": 403},
			urls: []string{"http://a.example/x", "http://b.example/x", "https://b.example/x"}, failed: []string{"http://b.example/x", "https://b.example/x"}, permanent: true},
		{name: "a path without hostnames", urls: []string{"/p", "http://a.example/x"}, failed: []string{"/p"}, permanent: true},
		{name: "only paths without hostnames", urls: []string{"/p", "/q"}, failed: []string{"/p", "/q"}, permanent: true},
		{name: "an invalid URL", urls: []string{"http://a.example/x", "http://b .example/"}, failed: []string{"http://b .example/"}, permanent: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := newFake(t)
			b := newBackend(t, srv, fastly.WithHostnames(c.hosts...))
			srv.Respond(func(call fastlytest.Call) (int, bool) {
				s, ok := c.fail[call.URL]
				return s, ok
			})
			_, err := b.Purge(t.Context(), backends.Request{URLs: c.urls})
			require.Error(t, err)
			failed, partial := backends.FailedObjects(err)
			require.True(t, partial, "%v", err)
			assert.Equal(t, c.failed, failed.URLs)
			assert.Empty(t, failed.Tags)
			assert.Equal(t, c.permanent, backends.IsPermanent(err), "%v", err)
			var fe *fastly.FailedError
			require.ErrorAs(t, err, &fe)
			for _, u := range srv.URLs() {
				assert.NotContains(t, c.fail, u)
			}
		})
	}
	t.Run("no hostname message", func(t *testing.T) {
		b := newBackend(t, newFake(t))
		_, err := b.Purge(t.Context(), backends.Request{URLs: []string{"/p"}})
		assert.ErrorIs(t, err, fastly.ErrNoHostname)
		assert.Contains(t, err.Error(), `"/p"`)
	})
	t.Run("tags after a failed batch", func(t *testing.T) {
		srv := newFake(t)
		b := newBackend(t, srv)
		srv.FailNext(503, 1)
		_, err := b.Purge(t.Context(), backends.NewRequest(nil, tags(300)))
		failed, partial := backends.FailedObjects(err)
		require.True(t, partial, "%v", err)
		assert.Len(t, slices.Concat(failed.Tags, srv.Keys()), 300, "each tag purged or failed")
		assert.False(t, backends.IsPermanent(err))
	})
}

// TestRateLimitHeaders checks the pacing: purge_all waits for the window
// to reset once Fastly says no requests remain, and purges wait as long as
// a 429 asked.
func TestRateLimitHeaders(t *testing.T) {
	t.Run("purge_all", func(t *testing.T) {
		srv := newFake(t, fastlytest.WithHourlyLimit(2))
		b := newBackend(t, srv, fastly.WithHourlyLimit(1_000_000))
		for range 2 {
			_, err := b.PurgeAll(t.Context())
			require.NoError(t, err)
		}
		// Fastly said 0 remain: the next waits for the reset, up to an
		// hour, and a caller with a deadline is told at once.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := b.PurgeAll(ctx)
		require.Error(t, err)
		d, ok := backends.RetryDelay(err)
		require.True(t, ok, "%v", err)
		assert.InDelta(t, time.Hour.Seconds(), d.Seconds(), 60)
		assert.ErrorIs(t, err, fastly.ErrRateLimited)
		assert.Equal(t, 2, srv.PurgeAlls())
		assert.Equal(t, map[int]int{200: 2}, srv.Responses(), "nothing sent while held")
		// URL and key purges do not count against the hourly limit.
		require.NoError(t, b.Pace(ctx, backends.Request{Tags: []string{"k"}}))
		_, err = b.Purge(ctx, backends.Request{Tags: []string{"k"}})
		require.NoError(t, err)
	})
	t.Run("429 to purge_all", func(t *testing.T) {
		srv := newFake(t, fastlytest.WithHourlyLimit(1))
		b1 := newBackend(t, srv)
		b2 := newBackend(t, srv) // another client of the same user
		_, err := b1.PurgeAll(t.Context())
		require.NoError(t, err)
		_, err = b2.PurgeAll(t.Context()) // b2 does not know yet
		require.Error(t, err)
		d, ok := backends.RetryDelay(err)
		require.True(t, ok, "%v", err)
		assert.InDelta(t, time.Hour.Seconds(), d.Seconds(), 60, "until Fastly-RateLimit-Reset")
		assert.False(t, backends.IsPermanent(err))
	})
	t.Run("purge_all spaced over the hourly budget", func(t *testing.T) {
		srv := newFake(t)
		b := newBackend(t, srv, fastly.WithHourlyLimit(10)) // one per 6 minutes
		_, err := b.PurgeAll(t.Context())
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err = b.PurgeAll(ctx)
		d, ok := backends.RetryDelay(err)
		require.True(t, ok, "%v", err)
		assert.InDelta(t, (6 * time.Minute).Seconds(), d.Seconds(), 5)
		assert.Equal(t, 1, srv.PurgeAlls())
	})
	t.Run("429 to a purge", func(t *testing.T) {
		srv := newFake(t)
		var logs bytes.Buffer
		b := newBackend(t, srv, fastly.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		srv.FailNext(http.StatusTooManyRequests, 1)
		r := backends.Request{URLs: []string{"https://www.example.com/"}}
		_, err := b.Purge(t.Context(), r)
		d, ok := backends.RetryDelay(err)
		require.True(t, ok, "%v", err)
		assert.Equal(t, time.Second, d)
		assert.Contains(t, logs.String(), `level=WARN msg="fastly: rate limited" backend=fastly op="purge url" wait=1s`)
		// Pace holds the next purge for Retry-After.
		short, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		err = b.Pace(short, r)
		d, ok = backends.RetryDelay(err)
		require.True(t, ok, "%v", err)
		assert.Greater(t, d, 500*time.Millisecond)
		require.NoError(t, b.Pace(t.Context(), r), "waits the second out")
		_, err = b.Purge(t.Context(), r)
		require.NoError(t, err)
	})
	t.Run("ended ctx", func(t *testing.T) {
		b := newBackend(t, newFake(t))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		assert.ErrorIs(t, b.Pace(ctx, backends.Request{Tags: []string{"k"}}), context.Canceled)
		_, err := b.PurgeAll(ctx)
		assert.ErrorIs(t, err, context.Canceled)
	})
}

// TestPurgeAll checks purge_all's request and result.
func TestPurgeAll(t *testing.T) {
	srv := newFake(t)
	b := newBackend(t, srv, fastly.WithHourlyLimit(1_000_000))
	var pa backends.PurgeAller = b
	require.NoError(t, pa.CanPurgeAll())
	require.NoError(t, b.CanPurgeTags())
	res, err := pa.PurgeAll(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "fastly", res.Backend)
	assert.Contains(t, res.Detail, srv.ServiceID())
	p := srv.Purges()
	require.Len(t, p, 1)
	assert.Equal(t, fastlytest.KindAll, p[0].Kind)
	assert.Equal(t, srv.ServiceID(), p[0].ServiceID)

	srv.FailNext(503, 1)
	_, err = b.PurgeAll(t.Context())
	require.Error(t, err)
	assert.False(t, backends.IsPermanent(err))
	var fe *fastly.Error
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "purge_all", fe.Op)
	srv.FailNext(403, 1)
	_, err = b.PurgeAll(t.Context())
	assert.True(t, backends.IsPermanent(err))
	assert.Contains(t, err.Error(), "purge_all")
	assert.False(t, errors.Is(err, fastly.ErrRateLimited))
}
