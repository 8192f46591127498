package cloudflare

import (
	"fmt"
	"testing"
	"time"

	"github.com/gormpurge/gormpurge/backends"
)

// BenchmarkRequestsPer10k reports how many requests 10,000 URLs and
// 10,000 tags become (the minimum is 10,000 divided by the per-request
// limit), and how long the plan's published bucket takes to let them
// through, from a full bucket, computed from the pacer's schedule (no
// sleeping): purge-seconds.
func BenchmarkRequestsPer10k(b *testing.B) {
	urls := make([]string, 10_000)
	tags := make([]string, 10_000)
	for i := range urls {
		urls[i] = fmt.Sprintf("https://www.example.com/products/%05d", i)
		tags[i] = fmt.Sprintf("product-%05d", i)
	}
	for _, plan := range []Plan{Free, Pro, Business, Enterprise} {
		for _, kind := range []string{"urls", "tags"} {
			maxItems := MaxItemsPerRequest
			if plan == Enterprise && kind == "urls" {
				maxItems = MaxURLsPerRequestEnterprise
			}
			b.Run(fmt.Sprintf("%s/%s", plan, kind), func(b *testing.B) {
				be, err := New(WithAPIToken("t"), WithZone("0123456789abcdef0123456789abcdef"), WithPlan(plan), WithMaxItems(maxItems))
				if err != nil {
					b.Fatal(err)
				}
				r := backends.Request{URLs: urls}
				if kind == "tags" {
					r = backends.Request{Tags: tags}
				}
				var reqs []request
				for b.Loop() {
					reqs, _ = be.requests(r)
				}
				start := time.Now()
				d := newPacer(be.rate, func() time.Time { return start }).schedule(urlTokens(reqs))
				b.ReportMetric(float64(len(reqs)), "requests")
				b.ReportMetric(d.Seconds(), "purge-seconds")
			})
		}
	}
}
