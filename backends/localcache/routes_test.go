package localcache_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
)

// TestRoutesShareOneStore: each route has its own Middleware and options,
// and one store, purged and cleared as one.
func TestRoutesShareOneStore(t *testing.T) {
	t.Parallel()
	clock, store := clockedStore(t)
	search, article := &app{}, &app{}
	mux := http.NewServeMux()
	mux.Handle("GET /search", cached(store, search, localcache.WithTTL(time.Minute)))
	mux.Handle("GET /articles/1", cached(store, article, localcache.WithUntilPurged()))

	for _, want := range []string{"MISS", "HIT"} {
		assert.Equal(t, want, get(t, mux, "/search?q=go").xcache)
		assert.Equal(t, want, get(t, mux, "/articles/1").xcache)
	}

	clock.Advance(25 * time.Hour)
	assert.Equal(t, "MISS", get(t, mux, "/search?q=go").xcache, "the TTL route expired")
	assert.Equal(t, "HIT", get(t, mux, "/articles/1").xcache, "the until-purged route did not")
	assert.EqualValues(t, 1, article.renders.Load())

	purge(t, store, []string{"/articles/1"}, nil)
	got := get(t, mux, "/articles/1")
	assert.Equal(t, "MISS", got.xcache, "purged")
	assert.Equal(t, "page /articles/1", got.body)
	assert.EqualValues(t, 2, article.renders.Load(), "rendered again")
	assert.Equal(t, "HIT", get(t, mux, "/articles/1").xcache)
	assert.Equal(t, "HIT", get(t, mux, "/search?q=go").xcache, "the other route was not purged")

	n, err := store.Clear(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.Equal(t, "MISS", get(t, mux, "/search?q=go").xcache)
	assert.Equal(t, "MISS", get(t, mux, "/articles/1").xcache)
}

func TestUntilPurgedLifetime(t *testing.T) {
	t.Parallel()
	const forever = 0
	tests := []struct {
		name         string
		cacheControl string
		live         time.Duration // still a hit just before this; forever: after ten years
	}{
		{"no Cache-Control", "", forever},
		{"max-age is for browsers", "public, max-age=10", forever},
		{"even max-age=0", "max-age=0", forever},
		{"s-maxage bounds it", "max-age=86400, s-maxage=10", 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock, store := clockedStore(t)
			a := &app{respond: respondWith(http.StatusOK, header("Cache-Control", tt.cacheControl), "x")}
			h := cached(store, a, localcache.WithUntilPurged())

			require.Equal(t, "MISS", get(t, h, "/a").xcache)
			if tt.live == forever {
				clock.Advance(10 * 365 * 24 * time.Hour)
				assert.Equal(t, "HIT", get(t, h, "/a").xcache)
				assert.EqualValues(t, 1, a.renders.Load())
				return
			}
			clock.Advance(tt.live - time.Second)
			assert.Equal(t, "HIT", get(t, h, "/a").xcache)
			clock.Advance(time.Second)
			assert.Equal(t, "MISS", get(t, h, "/a").xcache, "expired")
		})
	}
}

// TestUntilPurgedStillRefusesPrivateResponses: keeping pages longer must
// not mean keeping the ones that must never be shared.
func TestUntilPurgedStillRefusesPrivateResponses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		h    http.Header
	}{
		{"no-store", header("Cache-Control", "no-store")},
		{"no-cache", header("Cache-Control", "no-cache")},
		{"private", header("Cache-Control", "private, max-age=600")},
		{"Set-Cookie", header("Set-Cookie", "sessionid=abc; HttpOnly")},
		{"s-maxage=0", header("Cache-Control", "s-maxage=0")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := newStore(t)
			a := &app{respond: respondWith(http.StatusOK, tt.h, "hello alice")}
			h := cached(store, a, localcache.WithUntilPurged())
			first, second := get(t, h, "/me"), get(t, h, "/me")
			assert.Equal(t, "MISS", first.xcache)
			assert.Equal(t, "MISS", second.xcache)
			assert.EqualValues(t, 2, a.renders.Load())
			assert.Zero(t, store.Len())
			assert.Equal(t, tt.h.Get("Cache-Control"), second.header.Get("Cache-Control"), "passed through as the handler wrote it")
		})
	}
}

// TestBrowserCacheControl lists the Cache-Control and Expires a client
// receives, on the miss that stores a page and on the hits after it. The
// handler's response is already 5 seconds old (Age: 5): its max-age counts
// from then, so clients, who do not receive the Age, get 5 seconds less.
func TestBrowserCacheControl(t *testing.T) {
	t.Parallel()
	const expires = "Thu, 01 Jan 2099 00:00:00 GMT"
	tests := []struct {
		name         string
		opts         []localcache.Option
		cacheControl string // the handler's
		wantCC       string
		wantExpires  string
	}{
		{"until purged: 60 s by default", []localcache.Option{localcache.WithUntilPurged()}, "public, max-age=86400", "max-age=60", ""},
		{"until purged, browser 30 s", []localcache.Option{localcache.WithUntilPurged(), localcache.WithBrowserMaxAge(30 * time.Second)}, "public, max-age=86400", "max-age=30", ""},
		{"until purged, browser 0: revalidate", []localcache.Option{localcache.WithUntilPurged(), localcache.WithBrowserMaxAge(0)}, "public, max-age=86400", "no-cache", ""},
		{"s-maxage is not passed on", []localcache.Option{localcache.WithUntilPurged()}, "s-maxage=3600, max-age=600, immutable", "max-age=60", ""},
		{"until purged, handler's shorter max-age, less its Age", []localcache.Option{localcache.WithUntilPurged()}, "public, max-age=15", "max-age=10", ""},
		{"until purged, handler's max-age used up by its Age", []localcache.Option{localcache.WithUntilPurged()}, "public, max-age=5", "max-age=0", ""},
		{"until purged, handler's max-age=0", []localcache.Option{localcache.WithUntilPurged()}, "max-age=0", "max-age=0", ""},
		{"until purged, handler's max-age=0, must-revalidate", []localcache.Option{localcache.WithUntilPurged()}, "max-age=0, must-revalidate", "max-age=0, must-revalidate", ""},
		{"until purged, no max-age written", []localcache.Option{localcache.WithUntilPurged()}, "public", "max-age=60", ""},
		{"revalidation directives kept, immutable and stale-* dropped", []localcache.Option{localcache.WithUntilPurged()},
			"public, max-age=86400, Must-Revalidate, proxy-revalidate, no-transform, immutable, stale-while-revalidate=600, stale-if-error=600",
			"max-age=60, must-revalidate, proxy-revalidate, no-transform", ""},
		{"repeated max-age: the smallest", []localcache.Option{localcache.WithUntilPurged()}, "max-age=30, MAX-AGE=10, max-age=20", "max-age=5", ""},
		{"malformed max-age: 0", []localcache.Option{localcache.WithUntilPurged()}, "max-age=soon", "max-age=0", ""},
		{"browser 0 keeps must-revalidate", []localcache.Option{localcache.WithUntilPurged(), localcache.WithBrowserMaxAge(0)}, "max-age=0, must-revalidate", "no-cache, must-revalidate", ""},
		{"TTL route, browser 30 s, handler's max-age=0", []localcache.Option{localcache.WithTTL(time.Hour), localcache.WithBrowserMaxAge(30 * time.Second)}, "s-maxage=600, max-age=0", "max-age=0", ""},
		{"TTL route, browser 30 s, handler's max-age=10", []localcache.Option{localcache.WithTTL(time.Hour), localcache.WithBrowserMaxAge(30 * time.Second)}, "max-age=10, no-transform", "max-age=5, no-transform", ""},
		{"TTL route, browser 30 s", []localcache.Option{localcache.WithTTL(time.Hour), localcache.WithBrowserMaxAge(30 * time.Second)}, "public, max-age=300", "max-age=30", ""},
		{"TTL route: replayed as written", []localcache.Option{localcache.WithTTL(time.Hour)}, "public, max-age=300", "public, max-age=300", expires},
		{"TTL route, none written", nil, "", "", expires},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := &app{respond: respondWith(http.StatusOK, header("Cache-Control", tt.cacheControl, "Expires", expires, "Age", "5"), "x")}
			h := cached(newStore(t), a, tt.opts...)
			for _, step := range []struct{ method, xcache string }{
				{http.MethodHead, "MISS"}, {http.MethodGet, "MISS"}, {http.MethodGet, "HIT"}, {http.MethodHead, "HIT"},
			} {
				got := do(t, h, step.method, "/a")
				require.Equal(t, step.xcache, got.xcache, step.method)
				assert.Equal(t, tt.wantCC, got.header.Get("Cache-Control"), "%s %s", step.method, step.xcache)
				assert.Equal(t, tt.wantExpires, got.header.Get("Expires"), "%s %s", step.method, step.xcache)
				if tt.wantExpires == "" {
					assert.Empty(t, got.header.Get("Age"), "max-age counts from now")
				}
			}
		})
	}
}

// TestBrowserCacheControlLeavesOtherResponsesAlone: only pages the cache
// stores get the browser lifetime; a private page or an error keeps the
// handler's Cache-Control, so that no shared cache downstream stores it.
func TestBrowserCacheControlLeavesOtherResponsesAlone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		respond func(http.ResponseWriter, *http.Request, int64)
		kv      []string
	}{
		{"private", respondWith(http.StatusOK, header("Cache-Control", "private, max-age=600"), "alice"), nil},
		{"404", respondWith(http.StatusNotFound, header("Cache-Control", "max-age=600"), "not found"), nil},
		{"personal request", respondWith(http.StatusOK, header("Cache-Control", "max-age=600"), "alice"), []string{"Cookie", "sessionid=alice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := cached(newStore(t), &app{respond: tt.respond}, localcache.WithUntilPurged())
			got := get(t, h, "/a", tt.kv...)
			assert.NotEqual(t, "HIT", got.xcache)
			assert.Contains(t, got.header.Get("Cache-Control"), "max-age=600", "as the handler wrote it")
		})
	}
}

func TestBrowserMaxAgeAppliesToLargeUnstoredPages(t *testing.T) {
	t.Parallel()
	a := &app{respond: respondWith(http.StatusOK, header("Cache-Control", "max-age=86400"), "too large to keep")}
	h := cached(newStore(t), a, localcache.WithUntilPurged(), localcache.WithMaxEntryBytes(5))
	got := get(t, h, "/big")
	assert.Equal(t, "too large to keep", got.body)
	assert.Equal(t, "max-age=60", got.header.Get("Cache-Control"), "judged by its headers, as it streamed")
}
