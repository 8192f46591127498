package localcache_test

import (
	"context"
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/backends/localcache/bustest"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// The application caches its own pages; a purge sent through the
// dispatcher (as the gormpurge plugin does after a commit) removes them.
func Example() {
	var version atomic.Int64 // read by the server's goroutines
	version.Store(1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /articles/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Surrogate-Key", "article-"+r.PathValue("id"))
		fmt.Fprintf(w, "article %s, version %d", r.PathValue("id"), version.Load())
	})

	store, err := localcache.NewMemoryStore(localcache.WithMaxBytes(64 << 20))
	if err != nil {
		fmt.Println(err)
		return
	}
	local, err := localcache.NewBackend(store)
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(localcache.Middleware(store)(mux))
	defer srv.Close()

	d, err := dispatcher.New([]backends.Backend{local},
		dispatcher.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close(context.Background())

	show := func() {
		res, err := http.Get(srv.URL + "/articles/7")
		if err != nil {
			fmt.Println(err)
			return
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		fmt.Printf("%s: %s\n", res.Header.Get("X-Cache"), body)
	}
	show()
	show()

	version.Store(2) // the row changed and the transaction committed
	ctx := context.Background()
	_ = d.Enqueue(ctx, backends.NewRequest(nil, []string{"article-7"}))
	_ = d.Flush(ctx)
	show()
	// Output:
	// MISS: article 7, version 1
	// HIT: article 7, version 1
	// MISS: article 7, version 2
}

// With WithSessionCookies, only the named cookies make a request personal;
// visitors with other cookies (consent, analytics) are served from the
// cache.
func ExampleWithSessionCookies() {
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "home")
	})
	store, err := localcache.NewMemoryStore()
	if err != nil {
		fmt.Println(err)
		return
	}
	h := localcache.Middleware(store, localcache.WithSessionCookies("sessionid"))(page)

	for _, cookie := range []string{"", "consent=yes", "sessionid=alice"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Printf("%q -> X-Cache %q\n", cookie, w.Header().Get("X-Cache"))
	}
	// Output:
	// "" -> X-Cache "MISS"
	// "consent=yes" -> X-Cache "HIT"
	// "sessionid=alice" -> X-Cache ""
}

// Each route gets its own Middleware on one shared store: articles, purged
// by gormpurge whenever they change, are kept until purged, and reach
// browsers with a 30-second max-age so that a purge shows within 30
// seconds; search results, which no purge covers, expire after a minute.
func ExampleWithUntilPurged() {
	store, err := localcache.NewMemoryStore()
	if err != nil {
		fmt.Println(err)
		return
	}
	local, err := localcache.NewBackend(store)
	if err != nil {
		fmt.Println(err)
		return
	}
	articles := localcache.Middleware(store, localcache.WithUntilPurged(), localcache.WithBrowserMaxAge(30*time.Second))
	search := localcache.Middleware(store, localcache.WithTTL(time.Minute))

	mux := http.NewServeMux()
	mux.Handle("GET /articles/{id}", articles(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400") // what browsers no longer see
		io.WriteString(w, "article "+r.PathValue("id"))
	})))
	mux.Handle("GET /search", search(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=60")
		io.WriteString(w, "results for "+r.FormValue("q"))
	})))

	show := func(target string) {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
		fmt.Printf("%-14s %-4s Cache-Control: %s\n", target, w.Header().Get("X-Cache"), w.Header().Get("Cache-Control"))
	}
	show("/articles/7")
	show("/articles/7")
	show("/search?q=go")
	show("/search?q=go")

	// The article changed: the dispatcher calls the backend after the commit.
	_, _ = local.Purge(context.Background(), backends.NewRequest([]string{"/articles/7"}, nil))
	show("/articles/7")
	// Output:
	// /articles/7    MISS Cache-Control: max-age=30
	// /articles/7    HIT  Cache-Control: max-age=30
	// /search?q=go   MISS Cache-Control: public, max-age=60
	// /search?q=go   HIT  Cache-Control: public, max-age=60
	// /articles/7    MISS Cache-Control: max-age=30
}

// A WithKeyFunc function that ignores tracking parameters: links shared with
// utm_source and friends are served from one entry.
func ExampleWithKeyFunc() {
	withoutTracking := func(r *http.Request) string {
		q := r.URL.Query()
		for k := range q {
			if strings.HasPrefix(k, "utm_") {
				q.Del(k)
			}
		}
		return r.Host + r.URL.Path + "?" + q.Encode()
	}
	renders := 0
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		renders++
		io.WriteString(w, "spring sale")
	})
	store, err := localcache.NewMemoryStore()
	if err != nil {
		fmt.Println(err)
		return
	}
	h := localcache.Middleware(store, localcache.WithKeyFunc(withoutTracking))(page)

	for _, target := range []string{"/sale?utm_source=newsletter", "/sale?utm_source=twitter", "/sale"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
		fmt.Printf("%-28s %s\n", target, w.Header().Get("X-Cache"))
	}
	fmt.Println("renders:", renders)
	// Output:
	// /sale?utm_source=newsletter  MISS
	// /sale?utm_source=twitter     HIT
	// /sale                        HIT
	// renders: 1
}

// ClearHandler is mounted behind the application's admin authentication,
// here a stand-in that checks HTTP basic credentials.
func ExampleClearHandler() {
	store, err := localcache.NewMemoryStore()
	if err != nil {
		fmt.Println(err)
		return
	}
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "home") })
	site := localcache.Middleware(store)(page)
	site.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))

	requireStaff := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user, pass, ok := r.BasicAuth()
			if !ok || user != "ops" || subtle.ConstantTimeCompare([]byte(pass), []byte("s3cret")) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="admin"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	admin := http.NewServeMux()
	admin.Handle("/admin/cache/clear", localcache.ClearHandler(store))
	h := requireStaff(admin)

	for _, auth := range []bool{false, true} {
		r := httptest.NewRequest(http.MethodPost, "/admin/cache/clear", nil)
		if auth {
			r.SetBasicAuth("ops", "s3cret")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Print(w.Code, " ", w.Body.String())
	}
	// Output:
	// 401 unauthorized
	// 200 removed 1 entries
}

// A lifetime read from configuration goes through NewMiddleware, which
// returns what is wrong with it instead of panicking as Middleware does.
func ExampleNewMiddleware() {
	store, err := localcache.NewMemoryStore()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, setting := range []string{"30s", "-1m"} {
		ttl, err := time.ParseDuration(setting) // from a flag or a file
		if err != nil {
			fmt.Println(err)
			return
		}
		_, err = localcache.NewMiddleware(store, localcache.WithTTL(ttl))
		fmt.Printf("%s: %v\n", setting, err)
	}
	// Output:
	// 30s: <nil>
	// -1m: localcache: invalid configuration:
	// WithTTL(-1m0s): need a positive duration
}

// Two instances of an application, each with its own memory store, kept
// coherent by a bus: a purge delivered on one instance empties the page on
// the other too. In production the bus is redisstore.NewBus or natsbus.New;
// here it is bustest's in-process Hub.
func ExampleFollow() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hub := bustest.NewHub()

	type instance struct {
		store   *localcache.MemoryStore
		backend *localcache.Backend
	}
	start := func() instance {
		store, err := localcache.NewMemoryStore()
		if err != nil {
			panic(err)
		}
		bus, err := hub.Instance()
		if err != nil {
			panic(err)
		}
		backend, err := localcache.NewBackend(store, localcache.WithBus(bus)) // give it to the dispatcher
		if err != nil {
			panic(err)
		}
		go localcache.Follow(ctx, store, bus, localcache.WithFollowLogger(slog.New(slog.DiscardHandler)))
		return instance{store, backend}
	}
	a, b := start(), start()

	// Each instance serves the page once, and keeps it.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /posts/1", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "post 1") })
	get := func(store localcache.Store) string {
		rec := httptest.NewRecorder()
		localcache.Middleware(store, localcache.WithUntilPurged())(mux).ServeHTTP(rec, httptest.NewRequest("GET", "http://example.com/posts/1", nil))
		return rec.Header().Get(localcache.XCache)
	}
	for _, in := range []instance{a, b} {
		for get(in.store) != "HIT" { // until Follow is up and the page is stored
			time.Sleep(time.Millisecond)
		}
	}

	// The dispatcher delivers the purge on instance a.
	if _, err := a.backend.Purge(ctx, backends.Request{URLs: []string{"/posts/1"}}); err != nil {
		panic(err)
	}
	for b.store.Len() > 0 { // one bus delivery later
		time.Sleep(time.Millisecond)
	}
	fmt.Println("a:", get(a.store), "b:", get(b.store))
	// Output: a: MISS b: MISS
}
