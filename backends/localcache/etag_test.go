package localcache_test

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
)

// versioned is an app whose page shows the version of its data.
func versioned(version *atomic.Int64, h http.Header) *app {
	return &app{respond: func(w http.ResponseWriter, _ *http.Request, _ int64) {
		for k, vs := range h {
			w.Header()[k] = vs
		}
		_, _ = fmt.Fprintf(w, "version %d", version.Load())
	}}
}

func TestHitCarriesAnETag(t *testing.T) {
	t.Parallel()
	var version atomic.Int64
	store, h := setup(t, versioned(&version, nil))

	miss := get(t, h, "/a")
	assert.Empty(t, miss.header.Get("ETag"), "the miss streams before its body is known")
	hit := get(t, h, "/a")
	assert.Regexp(t, `^"[0-9a-f]{32}"$`, hit.header.Get("ETag"), "strong, from the body")
	assert.Equal(t, hit.header.Get("ETag"), get(t, h, "/a").header.Get("ETag"), "stable")

	version.Store(1)
	purge(t, store, []string{"/a"}, nil)
	get(t, h, "/a")
	changed := get(t, h, "/a")
	assert.Equal(t, "version 1", changed.body)
	assert.NotEqual(t, hit.header.Get("ETag"), changed.header.Get("ETag"), "a new body, a new ETag")

	got := get(t, h, "/a", "If-None-Match", hit.header.Get("ETag"))
	assert.Equal(t, http.StatusOK, got.status, "the old ETag no longer matches")
	assert.Equal(t, "version 1", got.body)
}

func TestIfNoneMatch(t *testing.T) {
	t.Parallel()
	// Each language is a variant with its own body, so its own ETag.
	a := &app{respond: func(w http.ResponseWriter, r *http.Request, _ int64) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language")
		w.Header().Set("Surrogate-Key", "a")
		_, _ = fmt.Fprint(w, "version 0", r.Header.Get("Accept-Language"))
	}}
	_, h := setup(t, a)
	get(t, h, "/a")
	etag := get(t, h, "/a").header.Get("ETag")
	require.NotEmpty(t, etag)
	get(t, h, "/a", "Accept-Language", "fr")
	frETag := get(t, h, "/a", "Accept-Language", "fr").header.Get("ETag")
	require.NotEmpty(t, frETag)
	require.NotEqual(t, etag, frETag)

	tests := []struct {
		name        string
		method      string
		ifNoneMatch []string // one request header line each
		want        int
	}{
		{"same ETag", http.MethodGet, []string{etag}, http.StatusNotModified},
		{"in a list", http.MethodGet, []string{`"x", ` + etag + `, "y"`}, http.StatusNotModified},
		{"on a second line", http.MethodGet, []string{`"x"`, etag}, http.StatusNotModified},
		{"any", http.MethodGet, []string{"*"}, http.StatusNotModified},
		{"weak form", http.MethodGet, []string{"W/" + etag}, http.StatusNotModified},
		{"HEAD", http.MethodHead, []string{etag}, http.StatusNotModified},
		{"other ETag", http.MethodGet, []string{`"other"`}, http.StatusOK},
		{"another variant's ETag", http.MethodGet, []string{frETag}, http.StatusOK},
		{"unquoted", http.MethodGet, []string{etag[1 : len(etag)-1]}, http.StatusOK},
		{"empty", http.MethodGet, []string{""}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var kv []string
			for _, v := range tt.ifNoneMatch {
				kv = append(kv, "If-None-Match", v)
			}
			before := a.renders.Load()
			got := do(t, h, tt.method, "/a", kv...)

			assert.Equal(t, tt.want, got.status)
			assert.Equal(t, "HIT", got.xcache)
			assert.Equal(t, before, a.renders.Load(), "answered from the cache")
			assert.Equal(t, etag, got.header.Get("ETag"))
			assert.Equal(t, "max-age=60", got.header.Get("Cache-Control"))
			assert.Equal(t, "Accept-Language", got.header.Get("Vary"))
			if tt.want == http.StatusNotModified {
				assert.Empty(t, got.body)
				assert.Empty(t, got.header.Get("Surrogate-Key"), "a 304 repeats only what a cache updates")
			} else if tt.method == http.MethodGet {
				assert.Equal(t, "version 0", got.body)
			}
		})
	}

	t.Run("another variant's ETag, own variant not cached", func(t *testing.T) {
		got := get(t, h, "/a", "Accept-Language", "de", "If-None-Match", frETag)
		assert.Equal(t, http.StatusOK, got.status)
		assert.Equal(t, "MISS", got.xcache)
		assert.Equal(t, "version 0de", got.body)
	})
}

func TestHandlersOwnETagIsKept(t *testing.T) {
	t.Parallel()
	var version atomic.Int64
	a := versioned(&version, header("ETag", `"v0"`))
	_, h := setup(t, a)

	assert.Equal(t, `"v0"`, get(t, h, "/a").header.Get("ETag"), "on the miss too")
	assert.Equal(t, `"v0"`, get(t, h, "/a").header.Get("ETag"))
	for _, inm := range []string{`"v0"`, `W/"v0"`} {
		got := get(t, h, "/a", "If-None-Match", inm)
		assert.Equal(t, http.StatusNotModified, got.status, inm)
	}
	assert.EqualValues(t, 1, a.renders.Load())
}

// TestConditionalMissReachesTheHandler: on a miss the middleware has
// nothing to compare with, so the handler answers, and the page it renders
// is stored for the next request.
func TestConditionalMissReachesTheHandler(t *testing.T) {
	t.Parallel()
	a := &app{}
	_, h := setup(t, a, localcache.WithUntilPurged())
	got := get(t, h, "/a", "If-None-Match", `"stale"`)
	assert.Equal(t, http.StatusOK, got.status)
	assert.Equal(t, "MISS", got.xcache)
	hit := get(t, h, "/a")
	assert.Equal(t, "HIT", hit.xcache)
	assert.Equal(t, http.StatusNotModified, get(t, h, "/a", "If-None-Match", hit.header.Get("ETag")).status)
	assert.EqualValues(t, 1, a.renders.Load())
}
