package localcache_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/localcache"
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

	store := localcache.NewMemoryStore(localcache.MaxBytes(64 << 20))
	srv := httptest.NewServer(localcache.Middleware(store)(mux))
	defer srv.Close()

	d := dispatcher.New([]backends.Backend{localcache.NewBackend(store)},
		dispatcher.WithLogger(slog.New(slog.DiscardHandler)))
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

// With SessionCookies, only the named cookies make a request personal;
// visitors with other cookies (consent, analytics) are served from the
// cache.
func ExampleSessionCookies() {
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "home")
	})
	h := localcache.Middleware(localcache.NewMemoryStore(), localcache.SessionCookies("sessionid"))(page)

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
