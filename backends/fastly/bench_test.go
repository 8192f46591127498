package fastly_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/fastly"
)

// assumedRTT is the round trip to api.fastly.com the computed times use,
// in seconds. Fastly does not rate-limit URL and surrogate-key purges
// (https://docs.fastly.com/api/, "Rate limiting"), so their time is set by
// the round trip and the requests in flight, not by a documented rate.
const assumedRTT = 0.1

// BenchmarkPurge10k purges 10,000 URLs, and 10,000 tags, in batches cut to
// the backend's Limits as the dispatcher cuts them, against the fake. It
// reports the requests sent per 10,000 objects, the fewest Fastly's API
// allows (one per URL; one per 256 keys), the wait Fastly's documented
// rate limits impose (none: these purges are not limited), and the time at
// DefaultConcurrency URL requests in flight and one batch at a time for
// keys with a round trip of assumedRTT: computed, not slept.
func BenchmarkPurge10k(b *testing.B) {
	const n = 10_000
	for _, kind := range []string{"URLs", "tags"} {
		b.Run(kind, func(b *testing.B) {
			srv := newFake(b)
			be := newBackend(b, srv)
			objs := make([]string, n)
			for i := range objs {
				if kind == "URLs" {
					objs[i] = fmt.Sprintf("https://www.example.com/posts/%05d", i)
				} else {
					objs[i] = fmt.Sprintf("post-%05d", i)
				}
			}
			l := be.Limits()
			per, minimum, inFlight := l.MaxURLs, float64(n), float64(fastly.DefaultConcurrency)
			if kind == "tags" {
				per, minimum, inFlight = l.MaxTags, math.Ceil(n/float64(fastly.MaxKeysPerRequest)), 1
			}
			requests := 0
			for b.Loop() {
				srv.Reset()
				for start := 0; start < n; start += per {
					chunk := objs[start:min(start+per, n)]
					r := backends.Request{URLs: chunk}
					if kind == "tags" {
						r = backends.Request{Tags: chunk}
					}
					if err := be.Pace(b.Context(), r); err != nil {
						b.Fatal(err)
					}
					if _, err := be.Purge(b.Context(), r); err != nil {
						b.Fatal(err)
					}
				}
				requests = srv.Responses()[200]
			}
			b.ReportMetric(float64(requests), "requests/10k")
			b.ReportMetric(minimum, "min-requests/10k")
			b.ReportMetric(0, "ratelimit-wait-s")
			b.ReportMetric(math.Ceil(float64(requests)/inFlight)*assumedRTT, "s-at-100ms-RTT")
		})
	}
}
