package warm_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gormpurge/gormpurge/warm"
)

// BenchmarkFetch measures the Warmer's own cost per URL: Fetch of 1,000
// URLs through an in-process handler that writes a 2 KiB page.
func BenchmarkFetch(b *testing.B) {
	const n = 1000
	page := []byte(strings.Repeat("x", 2048))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(page)
	})
	w := newWarmer(b, warm.WithHandler(h), warm.WithBaseURL("https://www.example.com"))
	urls := make([]string, n)
	for i := range urls {
		urls[i] = fmt.Sprintf("/posts/%d?page=2", i)
	}
	ctx := context.Background()

	b.ReportAllocs()
	for b.Loop() {
		if sum := w.Fetch(ctx, urls, nil); sum.OK != n {
			b.Fatal(sum)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/URL")
}
