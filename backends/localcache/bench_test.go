package localcache_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/observe"
)

// discardWriter is a ResponseWriter that costs as little as possible, so
// that the benchmarks measure the handler and the middleware.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkMiddleware compares serving a 10 KB page straight from its
// handler with serving it from the cache, answering a revalidation with
// 304 Not Modified from the cache, and a miss that renders and stores it.
func BenchmarkMiddleware(b *testing.B) {
	body := []byte(strings.Repeat("<p>lorem ipsum</p>", 10_000/18))
	page := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Surrogate-Key", "article-1 articles")
		_, _ = w.Write(body)
	})
	cached := localcache.Middleware(newStore(b), localcache.WithLogger(quiet))(page)
	r := httptest.NewRequest(http.MethodGet, "http://example.com/articles/1?page=2", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	cached.ServeHTTP(&discardWriter{h: http.Header{}}, r) // warm the cache

	run := func(b *testing.B, h http.Handler) {
		w := &discardWriter{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			clear(w.h)
			h.ServeHTTP(w, r)
		}
	}
	b.Run("direct", func(b *testing.B) { run(b, page) })
	b.Run("hit", func(b *testing.B) { run(b, cached) })
	// The cost of counting requests for an observer.
	observed := localcache.Middleware(newStore(b), localcache.WithLogger(quiet), localcache.WithObserver(observe.Nop{}))(page)
	observed.ServeHTTP(&discardWriter{h: http.Header{}}, r)
	b.Run("hit-observed", func(b *testing.B) { run(b, observed) })
	b.Run("revalidate", func(b *testing.B) {
		w := &discardWriter{h: http.Header{}}
		cached.ServeHTTP(w, r)
		cond := r.Clone(r.Context())
		cond.Header.Set("If-None-Match", w.h.Get("ETag"))
		w.h = http.Header{}
		cached.ServeHTTP(w, cond)
		if w.h.Get("Content-Length") != "" || w.h.Get("ETag") == "" {
			b.Fatal("not a 304")
		}
		b.ReportAllocs()
		for b.Loop() {
			clear(w.h)
			cached.ServeHTTP(w, cond)
		}
	})
	b.Run("miss", func(b *testing.B) {
		store := newStore(b)
		h := localcache.Middleware(store, localcache.WithLogger(quiet))(page)
		w := &discardWriter{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			clear(w.h)
			_, _ = store.Purge(r.Context(), []string{"t articles"}) // every request misses
			h.ServeHTTP(w, r)
		}
	})
}
