package akamai

import (
	"fmt"
	"testing"

	"github.com/gormpurge/gormpurge/backends"
)

func benchURLs(n int) []string {
	urls := make([]string, n)
	for i := range urls {
		urls[i] = fmt.Sprintf("https://www.example.com/products/%06d", i)
	}
	return urls
}

// BenchmarkSize measures Limits.Size on a bucket-sized span, as the
// dispatcher's cutter calls it: it stops counting past the body limit.
func BenchmarkSize(b *testing.B) {
	be := &Backend{maxBody: MaxBodyBytes, limits: PublishedRateLimits()}
	r := backends.Request{URLs: benchURLs(10_000)}
	b.ReportAllocs()
	for b.Loop() {
		_ = be.size(r)
	}
}

// BenchmarkPrepare measures what Purge does to a full batch before
// sending it: canonical URLs, planning and encoding the body.
func BenchmarkPrepare(b *testing.B) {
	be := &Backend{maxBody: MaxBodyBytes, limits: PublishedRateLimits()}
	r := backends.Request{URLs: benchURLs(1_219)} // one 50,000-byte body
	b.ReportAllocs()
	for b.Loop() {
		objs, _ := be.objects(KindURL, r)
		for _, c := range be.plan(KindURL, objs) {
			_ = encode(KindURL, c)
		}
	}
}
