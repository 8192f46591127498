package warm_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/warm"
)

func TestFetchFetchesEachDistinctURLOnce(t *testing.T) {
	var hits counter
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.add(r.URL.Path)
		_, _ = w.Write([]byte("page " + r.URL.Path))
	}))
	w := newWarmer(t, warm.WithBaseURL(srv.URL), warm.WithConcurrency(3))

	urls := []string{"/a", "/b", "/a", srv.URL + "/c", "/b", "/a", "/d", srv.URL + "/c"}
	var seen []string
	sum := w.Fetch(context.Background(), urls, func(r warm.Result) {
		seen = append(seen, r.URL) // progress runs on this goroutine, one call at a time
		assert.NoError(t, r.Err)
		assert.Equal(t, http.StatusOK, r.Status)
		assert.Equal(t, int64(len("page /a")), r.Bytes)
	})

	assert.Equal(t, map[string]int{"/a": 1, "/b": 1, "/c": 1, "/d": 1}, hits.all())
	assert.ElementsMatch(t, []string{"/a", "/b", srv.URL + "/c", "/d"}, seen, "progress is called once per distinct URL")
	assert.Equal(t, 4, sum.URLs)
	assert.Equal(t, 4, sum.OK)
	assert.Equal(t, 0, sum.Failed)
	assert.Equal(t, map[int]int{200: 4}, sum.ByStatus)
	assert.LessOrEqual(t, sum.Min, sum.Median)
	assert.LessOrEqual(t, sum.Median, sum.P95)
	assert.LessOrEqual(t, sum.P95, sum.Max)
	assert.Equal(t, warm.Stats{Fetched: 4}, w.Stats())
}

// barrier is a handler that holds each request until limit requests are in
// flight at once (or every expected request has arrived), and records the
// most it saw in flight. A Warmer that respects the limit cannot push the
// maximum past it, and one that fetches concurrently at all must reach it,
// or the test hangs.
type barrier struct {
	limit, total int

	mu                     sync.Mutex
	cond                   *sync.Cond
	inflight, max, arrived int
	wave                   int // incremented to release the requests waiting
}

func (b *barrier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.inflight++
	b.arrived++
	b.max = max(b.max, b.inflight)
	mine := b.wave
	if b.inflight >= b.limit || b.arrived == b.total {
		b.wave++
		b.cond.Broadcast()
	}
	for b.wave == mine {
		b.cond.Wait()
	}
	b.inflight--
	b.mu.Unlock()
	_, _ = w.Write([]byte("ok"))
}

func TestFetchRespectsConcurrency(t *testing.T) {
	for _, limit := range []int{1, 3, 8} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			const total = 40
			b := &barrier{limit: limit, total: total}
			b.cond = sync.NewCond(&b.mu)
			srv := newServer(t, b)
			w := newWarmer(t, warm.WithBaseURL(srv.URL), warm.WithConcurrency(limit))

			urls := make([]string, total)
			for i := range urls {
				urls[i] = fmt.Sprintf("/p/%d", i)
			}
			sum := w.Fetch(context.Background(), urls, nil)

			require.Equal(t, total, sum.OK)
			b.mu.Lock()
			defer b.mu.Unlock()
			assert.Equal(t, limit, b.max, "the most fetches in flight at once")
		})
	}
}

func TestFetchSummaryCountsByStatus(t *testing.T) {
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Header().Set("X-Cache", "MISS")
			_, _ = w.Write([]byte("ok"))
		case "/boom":
			http.Error(w, "boom", http.StatusInternalServerError)
		default:
			http.NotFound(w, r)
		}
	}))
	refused := closedURL(t)             // on an allowed host: fetched, and the connection is refused
	elsewhere := "http://localhost:1/x" // on a host not allowed: not fetched
	w := newWarmer(t, warm.WithBaseURL(srv.URL), warm.WithAllowedHosts("127.0.0.1"))

	got := map[string]warm.Result{}
	sum := w.Fetch(context.Background(), []string{"/ok", "/missing", "/boom", refused, elsewhere}, func(r warm.Result) { got[r.URL] = r })

	assert.Equal(t, 5, sum.URLs)
	assert.Equal(t, 1, sum.OK)
	assert.Equal(t, 4, sum.Failed)
	assert.Equal(t, 1, sum.Refused)
	assert.Equal(t, map[int]int{0: 2, 200: 1, 404: 1, 500: 1}, sum.ByStatus)
	assert.Contains(t, sum.String(), "5 URLs: 1 OK, 4 failed (404×1, 500×1, error×1, refused×1); p50 ")
	assert.ErrorIs(t, got[elsewhere].Err, warm.ErrRefused)
	assert.NotErrorIs(t, got[refused].Err, warm.ErrRefused)

	assert.Equal(t, "MISS", got["/ok"].Cache)
	assert.Equal(t, http.StatusNotFound, got["/missing"].Status)
	assert.NoError(t, got["/missing"].Err, "an answer is not an error, whatever its status")
	assert.Equal(t, 0, got[refused].Status)
	require.Error(t, got[refused].Err)
	assert.Contains(t, got[refused].Err.Error(), refused)
	assert.Equal(t, warm.Stats{Fetched: 1, Failed: 4, Refused: 1}, w.Stats())
}

func TestSummaryString(t *testing.T) {
	tests := []struct {
		name string
		sum  warm.Summary
		want string
	}{
		{"empty", warm.Summary{}, "0 URLs: 0 OK, 0 failed in 0s"},
		{"all OK", warm.Summary{
			URLs: 3, OK: 3, ByStatus: map[int]int{200: 2, 204: 1},
			Min: time.Millisecond, Median: 2345 * time.Microsecond, P95: 3 * time.Millisecond, Max: 3 * time.Millisecond,
			Elapsed: 4 * time.Millisecond,
		}, "3 URLs: 3 OK, 0 failed; p50 2.3ms p95 3ms max 3ms in 4ms"},
		{"failures", warm.Summary{
			URLs: 120, OK: 118, Failed: 2, ByStatus: map[int]int{0: 1, 200: 118, 404: 1},
			Min: 3 * time.Millisecond, Median: 12345 * time.Microsecond, P95: 40 * time.Millisecond, Max: 80 * time.Millisecond,
			Elapsed: 1234 * time.Millisecond,
		}, "120 URLs: 118 OK, 2 failed (404×1, error×1); p50 12ms p95 40ms max 80ms in 1.2s"},
		{"no answer at all", warm.Summary{
			URLs: 2, Failed: 2, ByStatus: map[int]int{0: 2}, Elapsed: 350 * time.Microsecond,
		}, "2 URLs: 0 OK, 2 failed (error×2) in 350µs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.sum.String())
		})
	}
}

func TestFetchSendsConfiguredHeaders(t *testing.T) {
	tests := []struct {
		name  string
		opts  []warm.Option
		check func(t *testing.T, r *http.Request)
	}{
		{"defaults", nil, func(t *testing.T, r *http.Request) {
			assert.Equal(t, warm.DefaultUserAgent, r.UserAgent())
			assert.Empty(t, r.Header.Values("Cookie"))
			assert.Empty(t, r.Header.Values("Authorization"))
		}},
		{"headers", []warm.Option{warm.WithHeader("Accept-Language", "fr"), warm.WithHeader("x-warm", "1"), warm.WithHeader("X-Warm", "2")}, func(t *testing.T, r *http.Request) {
			assert.Equal(t, "fr", r.Header.Get("Accept-Language"))
			assert.Equal(t, []string{"1", "2"}, r.Header.Values("X-Warm"))
		}},
		{"cookie", []warm.Option{warm.WithHeader("Cookie", "sessionid=warmup")}, func(t *testing.T, r *http.Request) {
			c, err := r.Cookie("sessionid")
			require.NoError(t, err)
			assert.Equal(t, "warmup", c.Value)
		}},
		{"basic auth", []warm.Option{warm.WithBasicAuth("ops", "s3cr:et")}, func(t *testing.T, r *http.Request) {
			user, pass, ok := r.BasicAuth()
			assert.True(t, ok)
			assert.Equal(t, "ops", user)
			assert.Equal(t, "s3cr:et", pass)
		}},
		{"user agent", []warm.Option{warm.WithUserAgent("acme-warm/2")}, func(t *testing.T, r *http.Request) {
			assert.Equal(t, "acme-warm/2", r.UserAgent())
		}},
		{"host", []warm.Option{warm.WithHeader("Host", "www.example.com")}, func(t *testing.T, r *http.Request) {
			assert.Equal(t, "www.example.com", r.Host)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reqs := make(chan *http.Request, 1)
			srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reqs <- r.Clone(context.Background())
			}))
			w := newWarmer(t, append([]warm.Option{warm.WithBaseURL(srv.URL)}, tt.opts...)...)

			sum := w.Fetch(context.Background(), []string{"/page"}, nil)
			require.Equal(t, 1, sum.OK, sum)
			r := <-reqs
			assert.Equal(t, http.MethodGet, r.Method)
			tt.check(t, r)
		})
	}
}

func TestFetchSendsNoCookiesItWasGiven(t *testing.T) {
	cookies := make(chan []*http.Cookie, 2)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cookies <- r.Cookies()
		http.SetCookie(w, &http.Cookie{Name: "sessionid", Value: "new"})
	}))
	w := newWarmer(t, warm.WithBaseURL(srv.URL), warm.WithConcurrency(1))

	sum := w.Fetch(context.Background(), []string{"/first", "/second"}, nil)

	require.Equal(t, 2, sum.OK)
	assert.Empty(t, <-cookies)
	assert.Empty(t, <-cookies, "the default client has no cookie jar")
}

func TestFetchFollowsNoRedirectByDefault(t *testing.T) {
	var hits counter
	mux := http.NewServeMux()
	mux.HandleFunc("/old", func(w http.ResponseWriter, r *http.Request) {
		hits.add(r.URL.Path)
		http.Redirect(w, r, "/new", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/new", func(w http.ResponseWriter, r *http.Request) {
		hits.add(r.URL.Path)
		w.Header().Set("X-Cache-Status", "HIT")
		_, _ = w.Write([]byte("new"))
	})

	for _, mode := range []string{"network", "handler"} {
		t.Run(mode, func(t *testing.T) {
			opt := warm.WithHandler(mux)
			if mode == "network" {
				opt = warm.WithBaseURL(newServer(t, mux).URL)
			}
			w := newWarmer(t, opt)
			var got warm.Result
			sum := w.Fetch(context.Background(), []string{"/old"}, func(r warm.Result) { got = r })
			assert.NoError(t, got.Err)
			assert.Equal(t, http.StatusMovedPermanently, got.Status)
			assert.Equal(t, 1, sum.Failed, "a redirect is not a page a cache keeps")
		})
	}
	t.Run("a client of the caller's follows its own policy", func(t *testing.T) {
		srv := newServer(t, mux)
		w := newWarmer(t, warm.WithBaseURL(srv.URL), warm.WithHTTPClient(srv.Client()))
		var got warm.Result
		w.Fetch(context.Background(), []string{"/old"}, func(r warm.Result) { got = r })
		assert.Equal(t, warm.Result{URL: "/old", Status: http.StatusOK, Cache: "HIT", Duration: got.Duration, Bytes: 3}, got)
	})
	assert.Equal(t, map[string]int{"/old": 3, "/new": 1}, hits.all())
}

// A redirect to another site must not take the warm-up's headers and
// credentials there, nor count as the page warmed.
func TestFetchKeepsHeadersFromRedirectTargets(t *testing.T) {
	var elsewhere counter
	other := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.add(r.Header.Get("X-Warmup-Token") + " " + r.Header.Get("Authorization"))
		_, _ = w.Write([]byte("someone else's page"))
	}))
	origin := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/landing", http.StatusFound)
	}))
	w := newWarmer(t, warm.WithBaseURL(origin.URL), warm.WithHeader("X-Warmup-Token", "s3cret"), warm.WithBasicAuth("ops", "pw"))

	sum := w.Fetch(context.Background(), []string{"/articles/7"}, nil)

	assert.Empty(t, elsewhere.all(), "nothing was sent to the redirect's target")
	assert.Equal(t, warm.Summary{URLs: 1, Failed: 1, ByStatus: map[int]int{http.StatusFound: 1},
		Min: sum.Min, Median: sum.Median, P95: sum.P95, Max: sum.Max, Elapsed: sum.Elapsed}, sum)
}

func TestFetchThroughHandler(t *testing.T) {
	type seen struct {
		host, remoteAddr, requestURI string
		tls                          bool
	}
	tests := []struct {
		url   string
		base  string
		hosts []string // WithAllowedHosts
		want  seen
	}{
		{"/p?q=1", "", nil, seen{host: "localhost", requestURI: "/p?q=1"}},
		{"http://LOCALHOST:80/p", "", nil, seen{host: "localhost", requestURI: "/p"}}, // the canonical host, as the local cache keys it
		{"http://ex\u00e4mple.com/p", "", []string{"EX\u00c4MPLE.com"}, seen{host: "xn--exmple-cua.com", requestURI: "/p"}},
		{"/p#frag", "https://shop.example:8443/ignored", nil, seen{host: "shop.example:8443", requestURI: "/p", tls: true}},
		{"https://other.example/x", "http://127.0.0.1:8080", []string{"Other.Example"}, seen{host: "other.example", requestURI: "/x", tls: true}},
		{"http://other.example/y", "", []string{"other.example"}, seen{host: "other.example", requestURI: "/y"}},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			var got seen
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = seen{host: r.Host, remoteAddr: r.RemoteAddr, requestURI: r.RequestURI, tls: r.TLS != nil}
				w.Header().Set("X-Cache-Status", "MISS")
				_, _ = w.Write(make([]byte, 10_000))
				_, _ = w.Write(make([]byte, 240))
			})
			opts := []warm.Option{warm.WithHandler(h)}
			if tt.base != "" {
				opts = append(opts, warm.WithBaseURL(tt.base))
			}
			if tt.hosts != nil {
				opts = append(opts, warm.WithAllowedHosts(tt.hosts...))
			}
			w := newWarmer(t, opts...)

			var res warm.Result
			w.Fetch(context.Background(), []string{tt.url}, func(r warm.Result) { res = r })

			require.NoError(t, res.Err)
			tt.want.remoteAddr = "127.0.0.1:0"
			assert.Equal(t, tt.want, got)
			assert.Equal(t, http.StatusOK, res.Status)
			assert.Equal(t, "MISS", res.Cache)
			assert.Equal(t, int64(10_240), res.Bytes)
		})
	}
}

func TestFetchThroughHandlerFailures(t *testing.T) {
	tests := []struct {
		name    string
		h       http.HandlerFunc
		opts    []warm.Option
		want    string
		wantErr error
	}{
		{"panic", func(http.ResponseWriter, *http.Request) { panic("template missing") }, nil,
			`warm: /page: the handler panicked: template missing`, nil},
		{"abort", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }, nil,
			`warm: /page: the handler aborted the response`, http.ErrAbortHandler},
		{"invalid status", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(0) }, nil,
			`warm: /page: the handler panicked: invalid WriteHeader code 0`, nil},
		{"timeout", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, []warm.Option{warm.WithTimeout(time.Nanosecond)},
			"warm: /page: context deadline exceeded", context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWarmer(t, append([]warm.Option{warm.WithHandler(tt.h)}, tt.opts...)...)
			var res warm.Result
			sum := w.Fetch(context.Background(), []string{"/page"}, func(r warm.Result) { res = r })

			require.Error(t, res.Err)
			assert.Contains(t, res.Err.Error(), tt.want)
			if tt.wantErr != nil {
				assert.ErrorIs(t, res.Err, tt.wantErr)
			}
			assert.Equal(t, 0, res.Status)
			assert.Equal(t, map[int]int{0: 1}, sum.ByStatus)
		})
	}
}

func TestFetchStopsWhenContextEnds(t *testing.T) {
	g := newGate(t)
	defer g.open()
	w := newWarmer(t, warm.WithHandler(g), warm.WithConcurrency(1))
	errShutdown := errors.New("operator pressed ^C")
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		<-g.arrived // the first fetch is in flight
		cancel(errShutdown)
	}()

	got := map[string]error{}
	sum := w.Fetch(ctx, []string{"/1", "/2", "/3"}, func(r warm.Result) { got[r.URL] = r.Err })

	assert.Equal(t, warm.Summary{URLs: 3, Failed: 3, ByStatus: map[int]int{0: 3}, Elapsed: sum.Elapsed}, sum)
	assert.ErrorIs(t, got["/1"], errShutdown, "the fetch in flight is cancelled")
	for _, u := range []string{"/2", "/3"} {
		assert.ErrorIs(t, got[u], errShutdown)
		assert.ErrorContains(t, got[u], "warm: "+u+": not fetched: ")
	}
}

func TestInvalidURLs(t *testing.T) {
	tests := []struct {
		url  string
		opts []warm.Option
		want string
	}{
		{"", nil, `need an absolute http or https URL, or a path beginning with "/"`},
		{"posts/1", nil, `need an absolute http or https URL`},
		{"ftp://example.com/x", nil, `need an absolute http or https URL`},
		{"mailto:ops@example.com", nil, `need an absolute http or https URL`},
		{"//example.com/x", nil, `need an absolute http or https URL`},
		{"http:///x", nil, `need an absolute http or https URL`},
		{"/posts/1", nil, `is a path: set WithBaseURL`},
		{"/posts/1", []warm.Option{warm.WithHTTPClient(http.DefaultClient)}, `is a path: set WithBaseURL`},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			onResult, ch := results()
			w := newWarmer(t, append(tt.opts, onResult)...)

			var res warm.Result
			sum := w.Fetch(context.Background(), []string{tt.url}, func(r warm.Result) { res = r })
			assert.Equal(t, warm.Summary{URLs: 1, Failed: 1, ByStatus: map[int]int{0: 1}, Elapsed: sum.Elapsed}, sum)
			assert.Equal(t, tt.url, res.URL)
			assert.ErrorContains(t, res.Err, fmt.Sprintf("%q", tt.url), "the error names the URL")
			assert.ErrorContains(t, res.Err, tt.want)
			assert.Equal(t, res, <-ch)

			w.Enqueue(tt.url) // reported before Enqueue returns
			select {
			case r := <-ch:
				assert.Equal(t, res.Err.Error(), r.Err.Error())
			default:
				t.Fatal("Enqueue did not report the invalid URL")
			}
			assert.Equal(t, warm.Stats{Failed: 2}, w.Stats())
		})
	}
}

func TestWarmAfterPurgeWithLocalcache(t *testing.T) {
	var mu sync.Mutex
	version, renders := 1, 0
	mux := http.NewServeMux()
	mux.HandleFunc("GET /articles/{id}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		renders++
		fmt.Fprintf(w, "article %s, version %d", r.PathValue("id"), version)
	})
	store, err := localcache.NewMemoryStore()
	require.NoError(t, err)
	site := localcache.Middleware(store, localcache.WithLogger(quiet))(mux)
	onResult, fetched := results()
	w := newWarmer(t, warm.WithHandler(site), warm.WithBaseURL("http://example.com"), onResult)

	visit := func() (string, string) {
		rec := httptest.NewRecorder()
		site.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://example.com/articles/7", nil))
		return rec.Header().Get(localcache.XCache), rec.Body.String()
	}
	cache, body := visit()
	require.Equal(t, "MISS", cache)
	require.Equal(t, "article 7, version 1", body)

	mu.Lock()
	version, renders = 2, 0 // the row changed and the transaction committed
	mu.Unlock()
	local, err := localcache.NewBackend(store)
	require.NoError(t, err)
	_, err = local.Purge(context.Background(), backends.NewRequest([]string{"/articles/7"}, nil))
	require.NoError(t, err)

	w.Enqueue("/articles/7")
	res := <-fetched
	require.NoError(t, res.Err)
	assert.Equal(t, "/articles/7", res.URL)
	assert.Equal(t, http.StatusOK, res.Status)
	assert.Equal(t, "MISS", res.Cache, "the warm-up rendered the page")

	cache, body = visit() // the first real visitor after the purge
	assert.Equal(t, "HIT", cache)
	assert.Equal(t, "article 7, version 2", body)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 1, renders, "the page was rendered once after the purge, for the warm-up")
}

func TestEnqueueDropsWhenQueueIsFull(t *testing.T) {
	g := newGate(t)
	defer g.open()
	var drops []string
	var mu sync.Mutex
	logger := hookLogger(func(msg string) {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasPrefix(msg, "warm: URLs dropped") {
			drops = append(drops, msg)
		}
	})
	onResult, fetched := results()
	w := newWarmer(t, warm.WithHandler(g), warm.WithConcurrency(1), warm.WithQueueSize(3), warm.WithLogger(logger), onResult)

	w.Enqueue("/a")
	<-g.arrived // /a holds the only fetch slot; the rest must wait
	w.Enqueue("/b", "/c", "/d")
	assert.Equal(t, warm.Stats{Queued: 3}, w.Stats())
	w.Enqueue("/e", "/b", "/f") // /b is already waiting: neither queued nor dropped
	assert.Equal(t, warm.Stats{Queued: 3, Dropped: 2}, w.Stats())
	mu.Lock()
	assert.Equal(t, []string{"warm: URLs dropped: the queue is full"}, drops, "one record for the call's 2 drops")
	mu.Unlock()

	g.open()
	var got []string
	for range 4 {
		r := <-fetched
		assert.Equal(t, http.StatusOK, r.Status)
		got = append(got, r.URL)
	}
	assert.ElementsMatch(t, []string{"/a", "/b", "/c", "/d"}, got)
	require.NoError(t, w.Close(context.Background()))
	assert.Equal(t, warm.Stats{Fetched: 4, Dropped: 2}, w.Stats())
}

func TestCloseLetsFetchesInFlightFinish(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	g := newGate(t)
	defer g.open()
	closing := make(chan struct{})
	logger := hookLogger(func(msg string) {
		if msg == "warm: URLs dropped at Close" {
			close(closing)
		}
	})
	onResult, fetched := results()
	w, err := warm.New(warm.WithHandler(g), warm.WithConcurrency(1), warm.WithLogger(logger), onResult)
	require.NoError(t, err)

	w.Enqueue("/a")
	<-g.arrived
	w.Enqueue("/b", "/c")
	closed := make(chan error)
	go func() { closed <- w.Close(context.Background()) }()
	<-closing // Close has begun, and waits for /a
	g.open()

	require.NoError(t, <-closed)
	r := <-fetched
	assert.Equal(t, "/a", r.URL)
	assert.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, warm.Stats{Fetched: 1, Dropped: 2}, w.Stats())

	require.NoError(t, w.Close(context.Background()), "Close is idempotent")
	w.Enqueue("/late")
	assert.Equal(t, warm.Stats{Fetched: 1, Dropped: 3}, w.Stats(), "Enqueue after Close drops")
	var res warm.Result
	w.Fetch(context.Background(), []string{"/late"}, func(r warm.Result) { res = r })
	assert.ErrorIs(t, res.Err, warm.ErrClosed)
}

func TestCloseCancelsFetchesWhenContextEnds(t *testing.T) {
	for _, mode := range []string{"handler", "network"} {
		t.Run(mode, func(t *testing.T) {
			g := newGate(t)
			defer g.open()
			onResult, fetched := results()
			opts := []warm.Option{warm.WithConcurrency(1), onResult}
			if mode == "handler" {
				opts = append(opts, warm.WithHandler(g))
			} else {
				opts = append(opts, warm.WithBaseURL(newServer(t, g).URL))
			}
			w, err := warm.New(append(opts, warm.WithLogger(quiet))...)
			require.NoError(t, err)

			w.Enqueue("/a")
			<-g.arrived
			w.Enqueue("/b")
			errShutdown := errors.New("shutdown deadline")
			ctx, cancel := context.WithCancelCause(context.Background())
			cancel(errShutdown)
			err = w.Close(ctx)

			assert.ErrorIs(t, err, errShutdown)
			r := <-fetched
			assert.Equal(t, "/a", r.URL)
			assert.ErrorIs(t, r.Err, context.Canceled)
			assert.Equal(t, warm.Stats{Failed: 1, Dropped: 1}, w.Stats())
			assert.NoError(t, w.Close(context.Background()))
		})
	}
}

func TestNewRejectsInvalidOptions(t *testing.T) {
	tests := []struct {
		opts []warm.Option
		want string
	}{
		{[]warm.Option{warm.WithConcurrency(0)}, "WithConcurrency(0): need at least 1"},
		{[]warm.Option{warm.WithDelay(-time.Second)}, "WithDelay(-1s): use 0 to fetch at once"},
		{[]warm.Option{warm.WithBaseURL("example.com")}, `WithBaseURL("example.com"): need an absolute http or https URL`},
		{[]warm.Option{warm.WithBaseURL("ftp://example.com")}, `WithBaseURL("ftp://example.com"): need an absolute http or https URL`},
		{[]warm.Option{warm.WithBaseURL("http://example.com/?page=1")}, `WithBaseURL("http://example.com/?page=1"): remove the query`},
		{[]warm.Option{warm.WithBaseURL("http://[::1")}, `WithBaseURL("http://[::1"): missing ']' in host`},
		{[]warm.Option{warm.WithAllowedHosts("static.example.com:443")}, `WithAllowedHosts("static.example.com:443"): give a host name`},
		{[]warm.Option{warm.WithAllowedHosts("https://static.example.com")}, `WithAllowedHosts("https://static.example.com"): give a host name`},
		{[]warm.Option{warm.WithAllowedHosts("")}, `WithAllowedHosts(""): give a host name`},
		{[]warm.Option{warm.WithHandler(nil)}, "WithHandler(nil): pass the application's http.Handler"},
		{[]warm.Option{warm.WithHTTPClient(nil)}, "WithHTTPClient(nil): pass an *http.Client"},
		{[]warm.Option{warm.WithHandler(http.NotFoundHandler()), warm.WithHTTPClient(http.DefaultClient)}, "WithHandler and WithHTTPClient: use one"},
		{[]warm.Option{warm.WithTimeout(0)}, "WithTimeout(0s): need a positive duration"},
		{[]warm.Option{warm.WithHeader("", "x")}, `WithHeader("", ...): the name must be`},
		{[]warm.Option{warm.WithHeader("X Warm", "x")}, `WithHeader("X Warm", ...): the name must be`},
		{[]warm.Option{warm.WithHeader("X-Warm", "a\r\nb")}, `WithHeader("X-Warm", ...): the value must not contain CR, LF or NUL`},
		{[]warm.Option{warm.WithBasicAuth("", "pw")}, `WithBasicAuth("", ...): the user must be non-empty`},
		{[]warm.Option{warm.WithBasicAuth("a:b", "pw")}, `WithBasicAuth("a:b", ...): the user must be non-empty and must not contain a colon`},
		{[]warm.Option{warm.WithUserAgent("")}, `WithUserAgent(""): name the client`},
		{[]warm.Option{warm.WithQueueSize(0)}, "WithQueueSize(0): need room for at least 1 URL"},
		{[]warm.Option{warm.WithLogger(nil)}, "WithLogger(nil): pass slog.New(slog.DiscardHandler)"},
		{[]warm.Option{warm.WithOnResult(nil)}, "WithOnResult(nil): pass a function"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			w, err := warm.New(tt.opts...)
			assert.Nil(t, w)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "warm: invalid configuration:\n")
			assert.Contains(t, err.Error(), tt.want)
		})
	}

	t.Run("every problem is reported", func(t *testing.T) {
		_, err := warm.New(warm.WithConcurrency(-1), warm.WithQueueSize(-1))
		assert.ErrorContains(t, err, "WithConcurrency(-1)")
		assert.ErrorContains(t, err, "WithQueueSize(-1)")
	})
	t.Run("valid", func(t *testing.T) {
		w, err := warm.New(warm.WithOnResult(func(warm.Result) {}), warm.WithBaseURL("https://www.example.com/"), warm.WithLogger(quiet))
		require.NoError(t, err)
		assert.NoError(t, w.Close(context.Background()))
	})
}

func TestFetchAsksForGzipUnlessTold(t *testing.T) {
	noCompression := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(noCompression.CloseIdleConnections)
	tests := []struct {
		name  string
		opts  []warm.Option
		modes []string
		want  []string
	}{
		{"default", nil, []string{"network", "handler"}, []string{"gzip"}},
		{"a client whose transport asks for none", []warm.Option{warm.WithHTTPClient(noCompression)}, []string{"network"}, []string{"gzip"}},
		{"given", []warm.Option{warm.WithHeader("accept-encoding", "identity")}, []string{"network", "handler"}, []string{"identity"}},
	}
	for _, tt := range tests {
		for _, mode := range tt.modes {
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				got := make(chan []string, 1)
				h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					got <- r.Header.Values("Accept-Encoding")
				})
				opts := []warm.Option{warm.WithHandler(h)}
				if mode == "network" {
					opts = []warm.Option{warm.WithBaseURL(newServer(t, h).URL)}
				}
				w := newWarmer(t, append(opts, tt.opts...)...)
				require.Equal(t, 1, w.Fetch(context.Background(), []string{"/p"}, nil).OK)
				assert.Equal(t, tt.want, <-got)
			})
		}
	}
}

// A page that varies on Accept-Encoding is warmed in the variant browsers
// get.
func TestWarmTheGzipVariant(t *testing.T) {
	store, err := localcache.NewMemoryStore()
	require.NoError(t, err)
	site := localcache.Middleware(store, localcache.WithLogger(quiet))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "Accept-Encoding")
		_, _ = w.Write([]byte("page"))
	}))
	w := newWarmer(t, warm.WithHandler(site), warm.WithBaseURL("http://www.example.com"))
	require.Equal(t, 1, w.Fetch(context.Background(), []string{"/a"}, nil).OK)

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "http://www.example.com/a", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	site.ServeHTTP(rec, req)
	assert.Equal(t, "HIT", rec.Header().Get(localcache.XCache))
}

func TestCloseOnceIdleIgnoresAnEndedContext(t *testing.T) {
	w, err := warm.New(warm.WithLogger(quiet))
	require.NoError(t, err)
	require.NoError(t, w.Close(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 100 { // a select between idle and ctx would pick ctx half the time
		require.NoError(t, w.Close(ctx), "nothing was left to cancel")
	}
}

func TestFetchProgressPanicLeavesNoFetchBehind(t *testing.T) {
	g := newGate(t) // holds /slow until its context ends
	h := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			g.ServeHTTP(rw, r)
		}
	})
	w := newWarmer(t, warm.WithHandler(h), warm.WithConcurrency(2))
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	assert.PanicsWithValue(t, "progress bar broke", func() {
		w.Fetch(context.Background(), []string{"/slow", "/fast"}, func(r warm.Result) {
			assert.Equal(t, "/fast", r.URL)
			panic("progress bar broke")
		})
	})
	assert.Equal(t, "/slow", <-g.arrived)
	// Deferred: goleak checks that /slow was cancelled and its goroutine
	// ended, although nobody receives its result.
}

func TestOnResultPanicIsRecoveredAndLogged(t *testing.T) {
	logged := make(chan string, 10)
	logger := hookLogger(func(msg string) {
		if strings.Contains(msg, "panicked") {
			logged <- msg
		}
	})
	w := newWarmer(t, warm.WithHandler(http.NotFoundHandler()), warm.WithLogger(logger),
		warm.WithOnResult(func(warm.Result) { panic("metrics exporter broke") }))

	w.Enqueue("/a") // in the background: a panic there would end the process
	assert.Equal(t, "warm: the WithOnResult function panicked", <-logged)
	w.Enqueue("not a URL", "/b")
	assert.Equal(t, "warm: the WithOnResult function panicked", <-logged, "Enqueue went on")
	assert.Equal(t, "warm: the WithOnResult function panicked", <-logged)
	sum := w.Fetch(context.Background(), []string{"/c"}, nil)
	assert.Equal(t, 1, sum.URLs)
	assert.Equal(t, "warm: the WithOnResult function panicked", <-logged)
	require.NoError(t, w.Close(context.Background()))
	assert.Equal(t, warm.Stats{Failed: 4}, w.Stats())
}

func TestOnResultMayCallClose(t *testing.T) {
	closed := make(chan error, 1)
	var w *warm.Warmer
	w = newWarmer(t, warm.WithHandler(http.NotFoundHandler()), warm.WithOnResult(func(r warm.Result) {
		closed <- w.Close(context.Background()) // must not wait for this very call
	}))
	w.Enqueue("/a")
	require.NoError(t, <-closed)
	w.Enqueue("/b")
	assert.Equal(t, warm.Stats{Failed: 1, Dropped: 1}, w.Stats())
}
