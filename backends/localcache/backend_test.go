package localcache_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/localcache"
)

// pages are cached before each purge case.
var pages = []struct {
	url  string
	lang string
	tags string
}{
	{"http://a.example/articles/1", "en", "article-1 articles"},
	{"http://a.example/articles/1", "fr", "article-1 articles"},
	{"http://a.example/articles/1?page=2", "en", "article-1 articles"},
	{"https://b.example/articles/1", "en", "article-1 articles"},
	{"http://a.example/articles/10", "en", "article-10 articles"},
	{"http://a.example/articles", "en", "articles"},
	{"http://a.example/", "en", "home"},
	{"http://a.example/caf%c3%a9", "en", "cafe"},
}

func TestBackendPurge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		tagHeader string // Surrogate-Key when empty
		urls      []string
		tags      []string
		removed   []int // indexes into pages
	}{
		{"path: every host, query and variant", "", []string{"/articles/1"}, nil, []int{0, 1, 2, 3}},
		{"absolute URL: its host only", "", []string{"http://a.example/articles/1"}, nil, []int{0, 1, 2}},
		{"absolute URL: scheme does not matter", "", []string{"https://a.example/articles/1"}, nil, []int{0, 1, 2}},
		{"absolute URL: host case and default port", "", []string{"https://B.EXAMPLE:443/articles/1"}, nil, []int{3}},
		{"path with query: that query only", "", []string{"/articles/1?page=2"}, nil, []int{2}},
		{"absolute URL with query", "", []string{"http://a.example/articles/1?page=2"}, nil, []int{2}},
		{"root path", "", []string{"/"}, nil, []int{6}},
		{"unknown path", "", []string{"/nope"}, nil, nil},
		{"other escaping and a trailing dot on the host", "", []string{"http://A.example./caf%C3%A9"}, nil, []int{7}},
		{"unescaped path", "", []string{"/caf\u00e9"}, nil, []int{7}},
		{"tag", "", nil, []string{"article-1"}, []int{0, 1, 2, 3}},
		{"shared tag", "", nil, []string{"articles"}, []int{0, 1, 2, 3, 4, 5}},
		{"tags and URLs", "", []string{"/"}, []string{"article-10"}, []int{4, 6}},
		{"xkey header", "xkey", nil, []string{"home"}, []int{6}},
		{"Edge-Cache-Tag header", "Edge-Cache-Tag", nil, []string{"article-10"}, []int{4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tagHeader, sep := "Surrogate-Key", " "
			var opts []localcache.Option
			if tt.tagHeader != "" {
				tagHeader = tt.tagHeader
				opts = append(opts, localcache.WithTagHeader(tt.tagHeader))
			}
			if tagHeader == "Edge-Cache-Tag" {
				sep = ", " // Akamai separates tags with commas
			}
			tagsOf := map[string]string{}
			for _, p := range pages {
				tagsOf[p.url] = p.tags
			}
			respond := func(w http.ResponseWriter, r *http.Request, _ int64) {
				w.Header().Set("Vary", "Accept-Language")
				w.Header().Set(tagHeader, strings.ReplaceAll(tagsOf[r.URL.String()], " ", sep))
				_, _ = io.WriteString(w, r.URL.String())
			}
			store, h := setup(t, &app{respond: respond}, opts...)
			for _, p := range pages {
				require.Equal(t, "MISS", get(t, h, p.url, "Accept-Language", p.lang).xcache, p.url)
			}

			b := newBackend(t, store)
			res, err := b.Purge(t.Context(), backends.NewRequest(tt.urls, tt.tags))
			require.NoError(t, err)
			assert.Equal(t, "localcache", res.Backend)

			for i, p := range pages {
				got := get(t, h, p.url, "Accept-Language", p.lang)
				want := "HIT"
				if slices.Contains(tt.removed, i) {
					want = "MISS"
				}
				assert.Equal(t, want, got.xcache, "%s (%s)", p.url, p.lang)
			}
		})
	}
}

func TestBackendPurgeRejectsBadURLsButPurgesTheRest(t *testing.T) {
	t.Parallel()
	store, h := setup(t, &app{})
	get(t, h, "/a")
	b := newBackend(t, store)

	res, err := b.Purge(t.Context(), backends.NewRequest([]string{"/a", "ftp://x.example/a", "articles/1"}, nil))
	require.Error(t, err)
	assert.True(t, backends.IsPermanent(err), "retrying cannot fix a URL")
	assert.ErrorContains(t, err, `"ftp://x.example/a"`)
	assert.ErrorContains(t, err, `"articles/1"`)
	assert.Equal(t, "removed 1 entries", res.Detail)
	assert.Equal(t, "MISS", get(t, h, "/a").xcache)
}

func TestBackendDescribesItself(t *testing.T) {
	t.Parallel()
	b := newBackend(t, newStore(t))
	assert.Equal(t, localcache.BackendName, b.Name())
	assert.Equal(t, backends.Limits{}, b.Limits())
}

func TestNewBackendRefusesNilStore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		store localcache.Store
		want  string
	}{
		{"nil", nil, "localcache: invalid backend configuration:\nNewBackend(nil): pass the Store given to Middleware, such as one from NewMemoryStore"},
		{"typed nil", (*localcache.MemoryStore)(nil),
			"localcache: invalid backend configuration:\nNewBackend((*localcache.MemoryStore)(nil)): the Store is a nil *localcache.MemoryStore: pass the Store given to Middleware, such as one from NewMemoryStore"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := localcache.NewBackend(tt.store)
			assert.Nil(t, b)
			assert.EqualError(t, err, tt.want)
		})
	}
}
