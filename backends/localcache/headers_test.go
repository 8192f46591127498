package localcache_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
)

// TestNonCanonicalETagIsKept: a handler that writes w.Header()["ETag"]
// keeps its ETag, once, on the miss, the hits and the 304s: the middleware
// adds no computed one beside it.
func TestNonCanonicalETagIsKept(t *testing.T) {
	t.Parallel()
	for _, spelling := range []string{"ETag", "etag", "ETAG"} {
		t.Run(spelling, func(t *testing.T) {
			t.Parallel()
			a := &app{respond: respondWith(http.StatusOK, http.Header{spelling: {`"v1"`}}, "x")}
			_, h := setup(t, a)

			for _, step := range []struct {
				xcache      string
				ifNoneMatch string
				status      int
			}{
				{"MISS", "", http.StatusOK},
				{"HIT", "", http.StatusOK},
				{"HIT", `"v1"`, http.StatusNotModified},
			} {
				var kv []string
				if step.ifNoneMatch != "" {
					kv = []string{"If-None-Match", step.ifNoneMatch}
				}
				got := get(t, h, "/a", kv...)
				require.Equal(t, step.xcache, got.xcache)
				assert.Equal(t, step.status, got.status)
				assert.Equal(t, http.Header{"Etag": {`"v1"`}}, only(got.header, "Etag"), "%s: the handler's, once, in one spelling", step.xcache)
			}
			assert.EqualValues(t, 1, a.renders.Load())
		})
	}
}

// TestNonCanonicalCacheControlIsReplaced: on an UntilPurged route, a
// handler's w.Header()["cache-control"] is read, and clients receive one
// Cache-Control, the middleware's.
func TestNonCanonicalCacheControlIsReplaced(t *testing.T) {
	t.Parallel()
	a := &app{respond: respondWith(http.StatusOK, http.Header{
		"cache-control": {"public, max-age=5, immutable"},
		"surrogate-key": {"page-a"},
	}, "x")}
	store, h := setup(t, a, localcache.WithUntilPurged())
	for _, xcache := range []string{"MISS", "HIT"} {
		got := get(t, h, "/a")
		require.Equal(t, xcache, got.xcache)
		assert.Equal(t, http.Header{"Cache-Control": {"max-age=5"}}, only(got.header, "Cache-Control"), xcache)
	}
	purge(t, store, nil, []string{"page-a"})
	assert.Equal(t, "MISS", get(t, h, "/a").xcache, "tagged by the tag header in any spelling")
}

// only returns the keys of h that spell name in any case, with their values.
func only(h http.Header, name string) http.Header {
	out := http.Header{}
	for k, vs := range h {
		if http.CanonicalHeaderKey(k) == name {
			out[k] = vs
		}
	}
	return out
}
