package warm_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/warm"
)

// After a purge, the Warmer renders the page again through the
// application's own handler and local cache, so that the first visitor gets
// a hit.
func Example() {
	var version atomic.Int64 // read by the warmer's goroutines
	version.Store(1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /articles/{id}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "article %s, version %d", r.PathValue("id"), version.Load())
	})
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
	site := localcache.Middleware(store)(mux)

	fetched := make(chan warm.Result, 1)
	w, err := warm.New(
		warm.WithHandler(site),
		// The scheme and host the application sees: behind a proxy that
		// terminates TLS, visitors of https://www.example.com come in as
		// plain http, so the pages must be warmed under http too.
		warm.WithBaseURL("http://www.example.com"),
		warm.WithOnResult(func(r warm.Result) { fetched <- r }),
		warm.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close(context.Background())

	visit := func() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "http://www.example.com/articles/7", nil) // as the proxy forwards it
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("Accept-Encoding", "gzip")
		site.ServeHTTP(rec, req)
		fmt.Printf("visitor: %s: %s\n", rec.Header().Get("X-Cache"), rec.Body)
	}
	visit()

	version.Store(2) // the row changed and the transaction committed
	ctx := context.Background()
	_, _ = local.Purge(ctx, backends.NewRequest([]string{"/articles/7"}, nil))
	w.Enqueue("/articles/7")
	r := <-fetched
	fmt.Printf("warm-up: %s %d %s\n", r.URL, r.Status, r.Cache)

	visit()
	// Output:
	// visitor: MISS: article 7, version 1
	// warm-up: /articles/7 200 MISS
	// visitor: HIT: article 7, version 2
}

// An operator command warms a list of pages at once and reports on them.
func ExampleWarmer_Fetch() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /posts/{id}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "post %s", r.PathValue("id"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	w, err := warm.New(warm.WithBaseURL(srv.URL), warm.WithConcurrency(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close(context.Background())

	urls := []string{"/posts/1", "/posts/2", "/posts/1", "/gone", "posts/3"}
	sum := w.Fetch(context.Background(), urls, nil)
	fmt.Printf("%d URLs: %d OK, %d failed\n", sum.URLs, sum.OK, sum.Failed)
	fmt.Println("by status:", sum.ByStatus)
	// Output:
	// 4 URLs: 2 OK, 2 failed
	// by status: map[0:1 200:2 404:1]
}
