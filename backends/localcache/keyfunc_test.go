package localcache_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/gormpurge/gormpurge/backends/localcache"
)

// withoutTracking keys a request by its path and its query without the
// utm_ parameters, which do not change the page.
func withoutTracking(r *http.Request) string {
	q := r.URL.Query()
	for k := range q {
		if strings.HasPrefix(k, "utm_") {
			q.Del(k)
		}
	}
	return r.URL.Path + "?" + q.Encode()
}

func TestKeyFuncSharesOneEntry(t *testing.T) {
	t.Parallel()
	a := &app{}
	_, h := setup(t, a, localcache.WithKeyFunc(withoutTracking))

	steps := []struct{ target, xcache string }{
		{"/a?utm_source=x", "MISS"},
		{"/a?utm_source=y", "HIT"},
		{"/a?utm_medium=email&utm_source=z", "HIT"},
		{"/a", "HIT"},
		{"/a?page=2&utm_source=x", "MISS"},
		{"/a?page=2", "HIT"},
		{"/b?utm_source=x", "MISS"},
	}
	for _, s := range steps {
		assert.Equal(t, s.xcache, get(t, h, s.target).xcache, s.target)
	}
	assert.EqualValues(t, 3, a.renders.Load())
	assert.Equal(t, "page /a?utm_source=x", get(t, h, "/a?utm_source=y").body, "the page that filled the entry")
}

func TestKeyFuncEntriesArePurged(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		urls   []string
		tags   []string
		purged bool
	}{
		{"path", []string{"/a"}, nil, true},
		{"host and path", []string{"http://example.com/a"}, nil, true},
		{"tag", nil, []string{"page-a"}, true},
		{"the query that filled it", []string{"/a?utm_source=x"}, nil, true},
		{"another query", []string{"/a?utm_source=y"}, nil, false},
		{"another path", []string{"/b"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := &app{respond: respondWith(http.StatusOK, header("Surrogate-Key", "page-a"), "a")}
			store, h := setup(t, a, localcache.WithKeyFunc(withoutTracking))
			get(t, h, "http://example.com/a?utm_source=x")

			purge(t, store, tt.urls, tt.tags)
			want := "HIT"
			if tt.purged {
				want = "MISS"
			}
			assert.Equal(t, want, get(t, h, "http://example.com/a?utm_source=y").xcache)
		})
	}
}

// TestKeyFuncPurgeByQueryMatchesOnlyTheFillingQuery pins what KeyFunc
// documents: a purge naming a query matches the raw query of the request
// that filled the entry, not the KeyFunc's key; a purge by path removes it.
func TestKeyFuncPurgeByQueryMatchesOnlyTheFillingQuery(t *testing.T) {
	t.Parallel()
	store, h := setup(t, &app{}, localcache.WithKeyFunc(withoutTracking), localcache.WithUntilPurged())
	assert.Equal(t, "MISS", get(t, h, "/list?page=2&utm_source=newsletter").xcache)

	purge(t, store, []string{"/list?page=2", "/list?utm_source=newsletter&page=2"}, nil)
	assert.Equal(t, "HIT", get(t, h, "/list?page=2").xcache, "not the query that filled the entry")
	purge(t, store, []string{"/list"}, nil)
	assert.Equal(t, "MISS", get(t, h, "/list?page=2").xcache, "a purge by path removes it")
}

func TestKeyFuncEmptyPassesThrough(t *testing.T) {
	t.Parallel()
	a := &app{}
	store, h := setup(t, a, localcache.WithKeyFunc(func(r *http.Request) string {
		if r.URL.Query().Has("preview") {
			return ""
		}
		return r.URL.Path
	}))
	for range 2 {
		got := get(t, h, "/a?preview=1")
		assert.Empty(t, got.xcache, "not cached")
		assert.Equal(t, "page /a?preview=1", got.body)
	}
	assert.EqualValues(t, 2, a.renders.Load())
	assert.Zero(t, store.Len())
}

func TestKeyFuncStillHonoursVary(t *testing.T) {
	t.Parallel()
	a := &app{respond: func(w http.ResponseWriter, r *http.Request, _ int64) {
		w.Header().Set("Vary", "Accept-Language")
		_, _ = io.WriteString(w, "lang="+r.Header.Get("Accept-Language"))
	}}
	_, h := setup(t, a, localcache.WithKeyFunc(withoutTracking))
	for _, s := range []struct{ target, lang, xcache string }{
		{"/a?utm_source=x", "en", "MISS"},
		{"/a?utm_source=y", "fr", "MISS"},
		{"/a?utm_source=z", "en", "HIT"},
		{"/a", "fr", "HIT"},
	} {
		got := get(t, h, s.target, "Accept-Language", s.lang)
		assert.Equal(t, s.xcache, got.xcache, "%s %s", s.target, s.lang)
		assert.Equal(t, "lang="+s.lang, got.body)
	}
}

// TestKeyFuncNeverServesAnotherRoutesPage: keys from a KeyFunc and default
// keys live apart in a shared store, whatever the KeyFunc returns.
func TestKeyFuncNeverServesAnotherRoutesPage(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	plain := cached(store, &app{respond: respondWith(http.StatusOK, nil, "plain")})
	keyed := cached(store, &app{respond: respondWith(http.StatusOK, nil, "keyed")},
		localcache.WithKeyFunc(func(*http.Request) string { return "http://example.com/a?" }))

	assert.Equal(t, "plain", get(t, plain, "http://example.com/a").body)
	got := get(t, keyed, "http://example.com/a")
	assert.Equal(t, "MISS", got.xcache)
	assert.Equal(t, "keyed", got.body)
}
