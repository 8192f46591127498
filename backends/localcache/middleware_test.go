package localcache_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/internal/testclock"
	"github.com/gormpurge/gormpurge/observe"
	"github.com/gormpurge/gormpurge/observe/observetest"
)

func TestSecondGetIsAHit(t *testing.T) {
	t.Parallel()
	a := &app{respond: respondWith(http.StatusOK, header(
		"Content-Type", "text/html",
		"Surrogate-Key", "article-1",
		"Connection", "close",
	), "<h1>one</h1>")}
	_, h := setup(t, a)

	first := get(t, h, "http://example.com/articles/1")
	second := get(t, h, "http://example.com/articles/1")

	assert.Equal(t, "MISS", first.xcache)
	assert.Equal(t, "HIT", second.xcache)
	assert.Equal(t, http.StatusOK, second.status)
	assert.Equal(t, "<h1>one</h1>", second.body)
	assert.Equal(t, "text/html", second.header.Get("Content-Type"))
	assert.Equal(t, "article-1", second.header.Get("Surrogate-Key"), "tags reach a CDN in front")
	assert.Equal(t, "12", second.header.Get("Content-Length"))
	assert.Empty(t, second.header.Get("Connection"), "hop-by-hop headers are not replayed")
	assert.EqualValues(t, 1, a.renders.Load())
}

func TestKeyIsSchemeHostPathAndQuery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, first, second string
		hit                 bool
	}{
		{"same URL", "http://example.com/a?x=1", "http://example.com/a?x=1", true},
		{"host case and default port", "http://example.com/a", "http://EXAMPLE.com:80/a", true},
		{"other host", "http://example.com/a", "http://other.example/a", false},
		{"other path", "http://example.com/a", "http://example.com/b", false},
		{"other query", "http://example.com/a?x=1", "http://example.com/a?x=2", false},
		{"query versus none", "http://example.com/a?x=1", "http://example.com/a", false},
		{"other scheme", "http://example.com/a", "https://example.com/a", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, h := setup(t, &app{})
			get(t, h, tt.first)
			got := get(t, h, tt.second)
			assert.Equal(t, tt.hit, got.xcache == "HIT", "X-Cache %q", got.xcache)
		})
	}
}

// TestResponsesThatAreNeverStored covers the responses a shared cache must
// not keep: each is rendered again for the next visitor.
func TestResponsesThatAreNeverStored(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		respond func(http.ResponseWriter, *http.Request, int64)
		opts    []localcache.Option
	}{
		{"Set-Cookie", respondWith(200, header("Set-Cookie", "sessionid=abc; HttpOnly"), "hello alice"), nil},
		{"set-cookie, not canonical", respondWith(200, http.Header{"set-cookie": {"sessionid=abc"}}, "hello alice"), nil},
		{"SET-COOKIE, not canonical", respondWith(200, http.Header{"SET-COOKIE": {"sessionid=abc"}}, "hello alice"), nil},
		{"cache-control no-store, not canonical", respondWith(200, http.Header{"cache-control": {"no-store"}}, "secret"), nil},
		{"vary *, not canonical", respondWith(200, http.Header{"VARY": {"*"}}, "x"), nil},
		{"private", respondWith(200, header("Cache-Control", "private, max-age=60"), "hello alice"), nil},
		{"no-store", respondWith(200, header("Cache-Control", "no-store"), "secret"), nil},
		{"no-cache", respondWith(200, header("Cache-Control", "public, no-cache"), "fresh"), nil},
		{"max-age=0", respondWith(200, header("Cache-Control", "max-age=0"), "x"), nil},
		{"s-maxage=0 wins over max-age", respondWith(200, header("Cache-Control", "max-age=60, s-maxage=0"), "x"), nil},
		{"malformed max-age", respondWith(200, header("Cache-Control", "max-age=soon"), "x"), nil},
		{"Vary: *", respondWith(200, header("Vary", "*"), "x"), nil},
		{"404", respondWith(404, nil, "not found"), nil},
		{"500", respondWith(500, nil, "oops"), nil},
		{"301", respondWith(301, header("Location", "/b"), ""), nil},
		{"nothing written", func(http.ResponseWriter, *http.Request, int64) {}, nil},
		{"too large", respondWith(200, nil, strings.Repeat("x", 101)), []localcache.Option{localcache.WithMaxEntryBytes(100)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := &app{respond: tt.respond}
			store, h := setup(t, a, tt.opts...)
			first := get(t, h, "/page")
			second := get(t, h, "/page")
			assert.Equal(t, "MISS", first.xcache)
			assert.Equal(t, "MISS", second.xcache)
			assert.Equal(t, first.body, second.body, "the client still gets the response")
			assert.EqualValues(t, 2, a.renders.Load())
			assert.Zero(t, store.Len())
		})
	}
}

func TestLargeResponseStillReachesClient(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("x", 1000)
	a := &app{respond: respondWith(200, nil, body)}
	_, h := setup(t, a, localcache.WithMaxEntryBytes(10))
	assert.Equal(t, body, get(t, h, "/big").body)
}

// TestPersonalRequestsBypassTheCache is about security: a request with
// credentials must never see a cached page, nor leave its own page behind
// for others.
func TestPersonalRequestsBypassTheCache(t *testing.T) {
	t.Parallel()
	personalised := func(w http.ResponseWriter, r *http.Request, _ int64) {
		who := "anonymous"
		if r.Header.Get("Authorization") != "" {
			who = "authorized"
		} else if c, err := r.Cookie("sessionid"); err == nil {
			who = "session " + c.Value
		}
		_, _ = io.WriteString(w, "hello "+who) // no Cache-Control: a careless app
	}
	tests := []struct {
		name     string
		opts     []localcache.Option
		kv       []string
		personal bool
	}{
		{"Authorization", nil, []string{"Authorization", "Bearer t0k3n"}, true},
		{"any cookie by default", nil, []string{"Cookie", "sessionid=alice"}, true},
		{"analytics cookie by default", nil, []string{"Cookie", "_ga=GA1.2"}, true},
		{"named session cookie", []localcache.Option{localcache.WithSessionCookies("sessionid")}, []string{"Cookie", "_ga=GA1.2; sessionid=alice"}, true},
		{"other cookie when sessions are named", []localcache.Option{localcache.WithSessionCookies("sessionid")}, []string{"Cookie", "_ga=GA1.2"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := &app{respond: personalised}
			_, h := setup(t, a, tt.opts...)

			// A personal request on a cold cache: its page must not be kept.
			got := get(t, h, "/dashboard", tt.kv...)
			anon := get(t, h, "/dashboard")
			if tt.personal {
				assert.Empty(t, got.xcache)
				assert.Equal(t, "MISS", anon.xcache, "the personal page was not stored")
				assert.Equal(t, "hello anonymous", anon.body)
			}

			// A personal request on a warm cache: it must not be answered
			// from the cache.
			require.Equal(t, "HIT", get(t, h, "/dashboard").xcache)
			before := a.renders.Load()
			got = get(t, h, "/dashboard", tt.kv...)
			if tt.personal {
				assert.Empty(t, got.xcache)
				assert.Equal(t, before+1, a.renders.Load(), "rendered for this visitor")
			} else {
				assert.Equal(t, "HIT", got.xcache)
			}
		})
	}
}

func TestOnlyGetAndHeadAreCached(t *testing.T) {
	t.Parallel()
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions} {
		t.Run(m, func(t *testing.T) {
			t.Parallel()
			a := &app{}
			store, h := setup(t, a)
			get(t, h, "/form")
			got := do(t, h, m, "/form")
			assert.Empty(t, got.xcache)
			assert.EqualValues(t, 2, a.renders.Load(), "never answered from the cache")
			assert.Equal(t, 1, store.Len())
		})
	}
}

func TestHead(t *testing.T) {
	t.Parallel()
	a := &app{}
	_, h := setup(t, a)

	cold := do(t, h, http.MethodHead, "/a")
	assert.Equal(t, "MISS", cold.xcache)
	assert.Equal(t, "MISS", get(t, h, "/a").xcache, "a HEAD miss is not stored")

	warm := do(t, h, http.MethodHead, "/a")
	assert.Equal(t, "HIT", warm.xcache)
	assert.Empty(t, warm.body)
	assert.Equal(t, fmt.Sprint(len("page /a")), warm.header.Get("Content-Length"))
}

func TestVaryKeepsOneEntryPerVariant(t *testing.T) {
	t.Parallel()
	a := &app{respond: func(w http.ResponseWriter, r *http.Request, _ int64) {
		w.Header().Set("Vary", "Accept-Language, accept-encoding")
		w.Header().Set("Surrogate-Key", "home")
		_, _ = io.WriteString(w, "lang="+r.Header.Get("Accept-Language"))
	}}
	store, h := setup(t, a)

	for _, step := range []struct {
		lang, xcache string
	}{
		{"en", "MISS"}, {"fr", "MISS"}, {"en", "HIT"}, {"fr", "HIT"}, {"", "MISS"}, {"", "HIT"},
	} {
		got := get(t, h, "/", "Accept-Language", step.lang)
		assert.Equal(t, step.xcache, got.xcache, "Accept-Language %q", step.lang)
		assert.Equal(t, "lang="+step.lang, got.body, "never another variant's page")
	}
	assert.Equal(t, "MISS", get(t, h, "/", "Accept-Language", "en", "Accept-Encoding", "gzip").xcache)

	purge(t, store, []string{"/"}, nil)
	assert.Zero(t, store.Len(), "a purge of the path removes every variant")
	purge(t, store, nil, nil)
	get(t, h, "/", "Accept-Language", "en")
	purge(t, store, nil, []string{"home"})
	assert.Zero(t, store.Len(), "and so does a purge of its tag")
}

func TestTTLFromCacheControl(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		cacheControl string
		opts         []localcache.Option
		live         time.Duration // still a hit just before this
	}{
		{"default TTL", "", []localcache.Option{localcache.WithTTL(time.Minute)}, time.Minute},
		{"max-age", "public, max-age=100", nil, 100 * time.Second},
		{"s-maxage wins", "max-age=100, s-maxage=10", nil, 10 * time.Second},
		{"quoted", `max-age="30"`, nil, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := testclock.New()
			store := newStore(t, localcache.WithClock(clock.Now))
			a := &app{respond: respondWith(200, header("Cache-Control", tt.cacheControl), "x")}
			h := localcache.Middleware(store, append(tt.opts, localcache.WithLogger(quiet))...)(a)

			get(t, h, "/a")
			clock.Advance(tt.live - time.Second)
			assert.Equal(t, "HIT", get(t, h, "/a").xcache)
			clock.Advance(time.Second)
			assert.Equal(t, "MISS", get(t, h, "/a").xcache, "expired")
		})
	}
}

// TestConcurrentMissesRenderOnce shows that a hot page rendered after a
// purge reaches the handler once, not once per waiting visitor, and that
// the observer counts those who waited on the render as hits.
func TestConcurrentMissesRenderOnce(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	a := &app{respond: func(w http.ResponseWriter, _ *http.Request, n int64) {
		if n == 1 {
			close(entered)
			<-release
		}
		_, _ = io.WriteString(w, "hot")
	}}
	obs := new(observetest.Recorder)
	_, h := setup(t, a, localcache.WithObserver(obs))

	const visitors = 20
	results := make(chan result, visitors)
	var wg sync.WaitGroup
	wg.Go(func() { results <- get(t, h, "/hot") })
	<-entered
	for range visitors - 1 {
		wg.Go(func() { results <- get(t, h, "/hot") })
	}
	close(release)
	wg.Wait()
	close(results)

	// Whether a visitor waited on the render or came after it was stored,
	// the handler ran once.
	assert.EqualValues(t, 1, a.renders.Load())
	misses := 0
	for r := range results {
		assert.Equal(t, "hot", r.body)
		if r.xcache == "MISS" {
			misses++
		}
	}
	assert.Equal(t, 1, misses)
	assert.Equal(t, map[string]float64{"hit": visitors - 1, "miss": 1, "bypass": 0}, requests(obs))
	assert.Equal(t, float64(1), figure(obs, observe.CacheStores))
}

// TestWaitingVisitorsNeverShareAPersonalResponse: when the page rendered
// for one visitor may not be cached, those who waited on it render their
// own, so no one receives another's Set-Cookie.
func TestWaitingVisitorsNeverShareAPersonalResponse(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	a := &app{respond: func(w http.ResponseWriter, _ *http.Request, n int64) {
		if n == 1 {
			close(entered)
			<-release
		}
		w.Header().Set("Set-Cookie", fmt.Sprintf("csrftoken=%d", n))
		_, _ = fmt.Fprintf(w, "token %d", n)
	}}
	_, h := setup(t, a)

	const visitors = 10
	results := make(chan result, visitors)
	var wg sync.WaitGroup
	wg.Go(func() { results <- get(t, h, "/login") })
	<-entered
	for range visitors - 1 {
		wg.Go(func() { results <- get(t, h, "/login") })
	}
	close(release)
	wg.Wait()
	close(results)

	seen := map[string]bool{}
	for r := range results {
		cookie := r.header.Get("Set-Cookie")
		assert.False(t, seen[cookie], "cookie %q handed to two visitors", cookie)
		seen[cookie] = true
		assert.Equal(t, "MISS", r.xcache)
	}
	assert.EqualValues(t, visitors, a.renders.Load())
}

func TestWaitingVisitorsShareWhenTheStoreFails(t *testing.T) {
	t.Parallel()
	a := &app{}
	h := localcache.Middleware(failingStore{newStore(t)}, localcache.WithLogger(quiet))(a)
	assert.Equal(t, "MISS", get(t, h, "/a").xcache)
	assert.Equal(t, "MISS", get(t, h, "/a").xcache, "nothing was stored")
	assert.Equal(t, "page /a", get(t, h, "/a").body, "the site still works")
}

// TestPurgeDuringRenderIsNotStored: a page rendered from data read before a
// commit must not be stored after the purge that follows the commit.
func TestPurgeDuringRenderIsNotStored(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	a := &app{respond: func(w http.ResponseWriter, _ *http.Request, n int64) {
		if n == 1 {
			close(entered)
			<-release
		}
		_, _ = fmt.Fprintf(w, "version %d", n)
	}}
	store, h := setup(t, a)

	first := make(chan result, 1)
	go func() { first <- get(t, h, "/article") }()
	<-entered
	purge(t, store, []string{"/article"}, nil) // the commit's purge
	close(release)
	assert.Equal(t, "version 1", (<-first).body)

	got := get(t, h, "/article")
	assert.Equal(t, "MISS", got.xcache)
	assert.Equal(t, "version 2", got.body)
	assert.Equal(t, "HIT", get(t, h, "/article").xcache)
}

func TestPanickingHandler(t *testing.T) {
	t.Parallel()
	a := &app{respond: func(w http.ResponseWriter, _ *http.Request, n int64) {
		if n == 1 {
			panic(http.ErrAbortHandler)
		}
		_, _ = io.WriteString(w, "ok")
	}}
	_, h := setup(t, a)
	assert.PanicsWithValue(t, http.ErrAbortHandler, func() { get(t, h, "/a") }, "the panic reaches net/http")
	assert.Equal(t, "ok", get(t, h, "/a").body, "nothing was stored")
}

// TestStreamingHandlerCanFlush: a handler that flushes part of its page
// reaches the client through the middleware; a flushed page is a stream,
// so it is not stored.
func TestStreamingHandlerCanFlush(t *testing.T) {
	t.Parallel()
	a := &app{respond: func(w http.ResponseWriter, _ *http.Request, _ int64) {
		_, _ = io.WriteString(w, "part 1 ")
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, "part 2")
	}}
	_, h := setup(t, a)
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, want := range []string{"MISS", "MISS"} {
		res, err := srv.Client().Get(srv.URL + "/stream")
		require.NoError(t, err)
		body, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		assert.Equal(t, "part 1 part 2", string(body))
		assert.Equal(t, want, res.Header.Get(localcache.XCache))
	}
}

func TestMiddlewareRefusesInvalidConfiguration(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	tests := []struct {
		name  string
		store localcache.Store
		opts  []localcache.Option
		want  string
	}{
		{"nil store", nil, []localcache.Option{localcache.WithTTL(time.Second)}, "pass a Store"},
		{"ttl", store, []localcache.Option{localcache.WithTTL(0)}, "need a positive duration"},
		{"tag header", store, []localcache.Option{localcache.WithTagHeader("")}, `name a header such as "Surrogate-Key"`},
		{"session cookies", store, []localcache.Option{localcache.WithSessionCookies()}, "name at least one cookie"},
		{"max entry", store, []localcache.Option{localcache.WithMaxEntryBytes(0)}, "positive size"},
		{"ttl and until purged", store, []localcache.Option{localcache.WithUntilPurged(), localcache.WithTTL(time.Hour)}, "WithTTL(1h0m0s) and WithUntilPurged(): choose one"},
		{"browser max age", store, []localcache.Option{localcache.WithBrowserMaxAge(-time.Second)}, "WithBrowserMaxAge(-1s): need 0"},
		{"browser max age under a second", store, []localcache.Option{localcache.WithBrowserMaxAge(500 * time.Millisecond)}, "WithBrowserMaxAge(500ms): need 0 (clients revalidate each time) or a positive whole number of seconds"},
		{"browser max age not whole seconds", store, []localcache.Option{localcache.WithBrowserMaxAge(1500 * time.Millisecond)}, "WithBrowserMaxAge(1.5s): need 0"},
		{"key func", store, []localcache.Option{localcache.WithKeyFunc(nil)}, "WithKeyFunc(nil): pass a function"},
		{"nil logger", store, []localcache.Option{localcache.WithLogger(nil)}, "WithLogger(nil): pass slog.New(slog.DiscardHandler)"},
		{"typed-nil store", (*localcache.MemoryStore)(nil), nil,
			"Middleware((*localcache.MemoryStore)(nil)): the Store is a nil *localcache.MemoryStore: pass a Store, such as one from NewMemoryStore"},
		{"nil option", store, []localcache.Option{localcache.WithTTL(time.Second), nil},
			"an Option is nil: remove it, or pass one made by a With... function"},
		{"nil store and an invalid option", nil, []localcache.Option{localcache.WithTTL(0)}, "WithTTL(0s): need a positive duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mw, err := localcache.NewMiddleware(tt.store, tt.opts...)
			assert.Nil(t, mw)
			require.Error(t, err)
			assert.ErrorContains(t, err, tt.want)
			// Middleware, for options written in code, panics with the same message.
			assert.PanicsWithValue(t, err.Error(), func() { localcache.Middleware(tt.store, tt.opts...) })
		})
	}
}
