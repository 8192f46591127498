package localcache_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
)

// An encoded slash stays encoded in the cache key: "/tags/go%2Ffeed",
// routed by ServeMux to /tags/{name} with name "go/feed", cannot fill the
// entry of the feed at /tags/go/feed.
func TestEncodedSlashCannotPoisonAnotherPage(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /tags/{name}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "<html>tag "+r.PathValue("name"))
	})
	mux.HandleFunc("GET /tags/{name}/feed", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "<rss>feed of "+r.PathValue("name"))
	})
	store := newStore(t)
	h := localcache.Middleware(store, localcache.WithLogger(quiet))(mux)

	attack := get(t, h, "/tags/go%2Ffeed")
	require.Equal(t, "<html>tag go/feed", attack.body)
	feed := get(t, h, "/tags/go/feed")
	assert.Equal(t, "<rss>feed of go", feed.body, "the feed was poisoned by the tag page")
	assert.Equal(t, "MISS", feed.xcache)

	// Lower-case hex is the same page as upper case; an unreserved escape
	// (%61 is "a") is the same page as the letter.
	assert.Equal(t, "HIT", get(t, h, "/tags/go%2ffeed").xcache)
	assert.Equal(t, "HIT", get(t, h, "/t%61gs/go/feed").xcache)

	// Purges match the same canonical form.
	purge(t, store, []string{"/tags/go%2ffeed"}, nil)
	assert.Equal(t, "MISS", get(t, h, "/tags/go%2Ffeed").xcache)
	assert.Equal(t, "HIT", get(t, h, "/tags/go/feed").xcache, "a purge of the encoded page leaves the feed")
}

// A purge of any spelling of a page removes the entry every other spelling
// filled: what a user writes in a model, what a browser sends.
func TestPurgeOfAnySpellingFindsThePage(t *testing.T) {
	tests := []struct {
		name    string
		request string // as a browser sends it
		host    string
		purge   string // as a model or an operator writes it
	}{
		{"raw UTF-8 query", "/search?q=caf%C3%A9", "", "/search?q=caf\u00e9"},
		{"lower-case hex", "/search?q=caf%C3%A9", "", "/search?q=caf%c3%a9"},
		{"space in the query", "/x?a=b%20c", "", "/x?a=b c"},
		{"raw UTF-8 path", "/caf%C3%A9", "", "/caf\u00e9"},
		{"IDN host", "/x", "xn--exmple-cua.com", "http://ex\u00e4mple.com/x"},
		{"IDN host in upper case with a default port", "/x", "xn--exmple-cua.com", "http://EX\u00c4MPLE.com:80/x"},
		{"host with a trailing dot", "/x", "www.example.com.", "http://www.example.com/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, h := setup(t, &app{})
			getHost(t, h, tt.request, tt.host)
			require.Equal(t, "HIT", getHost(t, h, tt.request, tt.host).xcache)
			purge(t, store, []string{tt.purge}, nil)
			assert.Equal(t, "MISS", getHost(t, h, tt.request, tt.host).xcache)
		})
	}
}

// getHost is get with a Host header, when host is not empty.
func getHost(t *testing.T, h http.Handler, target, host string) result {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	if host != "" {
		r.Host = host
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	body, err := io.ReadAll(w.Result().Body)
	require.NoError(t, err)
	return result{status: w.Code, xcache: w.Result().Header.Get(localcache.XCache), body: string(body)}
}

// A request line holding "#" or a character net/http re-encodes is keyed as
// the client sent it: "GET /p#evil" (whose path the handler sees as
// "/p#evil") cannot fill the entry of "/p", and `/a"!b` (which net/http
// re-encodes as /a%22%21b) is found by a purge of `/a"!b`.
func TestRequestTargetsAreKeyedAsSent(t *testing.T) {
	store, h := setup(t, &app{respond: func(w http.ResponseWriter, r *http.Request, _ int64) {
		_, _ = io.WriteString(w, "path "+r.URL.Path)
	}})
	require.Equal(t, "path /p#evil", get(t, h, "/p#evil").body)
	page := get(t, h, "/p")
	assert.Equal(t, "path /p", page.body)
	assert.Equal(t, "MISS", page.xcache)

	get(t, h, `/a"!b`)
	require.Equal(t, "HIT", get(t, h, `/a"!b`).xcache)
	purge(t, store, []string{`/a"!b`}, nil)
	assert.Equal(t, "MISS", get(t, h, `/a"!b`).xcache)
}

// Query strings are keyed as the handler reads them: "#" in a request's
// query is data the handler sees (it cannot fill the entry of the query
// before it), and "100%" (a pair net/http's parser drops) is not "100%25".
func TestQueriesAreKeyedAsHandlersReadThem(t *testing.T) {
	_, h := setup(t, &app{respond: func(w http.ResponseWriter, r *http.Request, _ int64) {
		q, ok := r.URL.Query()["q"]
		_, _ = io.WriteString(w, "q="+strings.Join(q, ",")+" present="+strconv.FormatBool(ok))
	}})
	require.Equal(t, "q=go#<script> present=true", get(t, h, "/search?q=go#<script>").body)
	victim := get(t, h, "/search?q=go")
	assert.Equal(t, "q=go present=true", victim.body)
	assert.Equal(t, "MISS", victim.xcache)

	require.Equal(t, "q= present=false", get(t, h, "/offer?q=100%").body)
	victim = get(t, h, "/offer?q=100%25")
	assert.Equal(t, "q=100% present=true", victim.body)
	assert.Equal(t, "MISS", victim.xcache)
}
