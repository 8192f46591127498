package cloudfront_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/cloudfront"
	"github.com/gormpurge/gormpurge/backends/cloudfront/cloudfronttest"
)

// BenchmarkPurge10000URLs purges 10,000 URLs as the dispatcher does (Pace,
// then Purge, batches of Limits().MaxObjects) against the fake with a
// completion delay, and reports the CreateInvalidation calls per 10,000
// URLs (the minimum is ceil(10,000/3,000) = 4) and the time the purge took
// in units of the completion delay, whole and from the first
// CreateInvalidation to the last (the schedule): 3,000 paths, a wait for
// them to complete, and so on, so 10,000 URLs need 3 completion delays,
// plus a poll interval and one CreateInvalidation's latency each. With
// CloudFront's real completion time T, purging 10,000 URLs takes about 3T.
func BenchmarkPurge10000URLs(b *testing.B) {
	const n = 10000
	const delay = 100 * time.Millisecond
	urls := make([]string, n)
	for i := range urls {
		urls[i] = fmt.Sprintf("/posts/%05d", i)
	}
	var creates, elapsed, waited float64
	for b.Loop() {
		b.StopTimer()
		srv := newFake(b, cloudfronttest.WithCompletionDelay(delay))
		be := newBackend(b, srv, cloudfront.WithWaitPoll(time.Millisecond))
		max := be.Limits().MaxObjects
		b.StartTimer()
		start := time.Now()
		for i := 0; i < n; i += max {
			r := backends.Request{URLs: urls[i:min(i+max, n)]}
			if err := be.Pace(b.Context(), r); err != nil {
				b.Fatal(err)
			}
			if _, err := be.Purge(b.Context(), r); err != nil {
				b.Fatal(err)
			}
		}
		elapsed += float64(time.Since(start))
		creates += float64(srv.Calls("CreateInvalidation"))
		invs := srv.Invalidations()
		waited += float64(invs[len(invs)-1].Created.Sub(invs[0].Created))
		b.StopTimer()
		srv.Close()
		b.StartTimer()
	}
	b.ReportMetric(creates/float64(b.N), "CreateInvalidation/10k-URLs")
	b.ReportMetric(elapsed/float64(b.N)/float64(delay), "completion-delays/10k-URLs")
	b.ReportMetric(waited/float64(b.N)/float64(delay), "delays-first-to-last-create")
}
