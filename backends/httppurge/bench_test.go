package httppurge_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/httppurge"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/internal/cachetest"
)

// benchConns is the number of keep-alive connections of both wrk and the
// backend.
const benchConns = 64

// BenchmarkVarnishPurge measures PURGE throughput against one real Varnish
// on loopback, in one run: wrk with 64 keep-alive connections, then the
// backend with 64 requests in flight (WithNodeConcurrency), called directly,
// through net/http (WithHTTPClient) for comparison, and behind the
// dispatcher. Every request is a PURGE of a page Varnish
// does not hold, which it answers "200 Purged". It logs the backend's rate
// as a fraction of wrk's. Run it with scripts/bench-httppurge.sh.
//
// It needs GORMPURGE_TEST_CACHES=1; the wrk part also needs wrk (Debian
// package wrk). HTTPPURGE_BENCH_WRK_SECONDS sets wrk's duration (5).
//
// It is long because its sub-benchmarks share one Varnish and one set of
// URLs, and read best side by side.
func BenchmarkVarnishPurge(b *testing.B) {
	cachetest.Require(b, cachetest.Varnish)
	c := cachetest.Start(b, cachetest.Varnish, cachetest.StartOrigin(b, nil))
	var wrkRate float64

	b.Run("wrk", func(b *testing.B) {
		if _, err := exec.LookPath("wrk"); err != nil {
			b.Skip("wrk is not installed: apt-get install wrk")
		}
		secs := 5
		if s := os.Getenv("HTTPPURGE_BENCH_WRK_SECONDS"); s != "" {
			secs, _ = strconv.Atoi(s)
		}
		wrkRate = runWrk(b, c.URL+"/bench/wrk", secs)
		b.ReportMetric(wrkRate, "purges/s")
		b.ReportMetric(0, "ns/op") // one wrk run of fixed length, whatever b.N
	})

	ratio := func(b *testing.B, rate float64) {
		b.ReportMetric(rate, "purges/s")
		if wrkRate > 0 {
			b.ReportMetric(rate/wrkRate, "x-wrk")
		}
	}

	purgeAll := func(b *testing.B, be *httppurge.Backend) {
		reqs := benchRequests(b.N, httppurge.DefaultMaxObjects)
		var (
			next   atomic.Int64
			failed atomic.Int64
			wg     sync.WaitGroup
		)
		b.ResetTimer()
		for range 2 { // as the dispatcher's two workers do
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= len(reqs) {
						return
					}
					if _, err := be.Purge(context.Background(), reqs[i]); err != nil {
						failed.Add(1)
						b.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		ratio(b, float64(b.N)/b.Elapsed().Seconds())
	}
	b.Run("backend", func(b *testing.B) { purgeAll(b, benchBackend(b, c.URL)) })
	// The same through net/http's Transport (WithHTTPClient), for comparison.
	b.Run("nethttp", func(b *testing.B) {
		tr := &http.Transport{MaxIdleConnsPerHost: benchConns, MaxConnsPerHost: benchConns}
		defer tr.CloseIdleConnections()
		purgeAll(b, benchBackend(b, c.URL, httppurge.WithHTTPClient(&http.Client{Transport: tr})))
	})

	b.Run("dispatcher", func(b *testing.B) {
		be := benchBackend(b, c.URL)
		d, err := dispatcher.New([]backends.Backend{be}, dispatcher.WithLogger(quiet))
		if err != nil {
			b.Fatal(err)
		}
		urls := make([]string, b.N)
		for i := range urls {
			urls[i] = fmt.Sprintf("/bench/d/%d/%d", b.N, i)
		}
		ctx := context.Background()
		b.ResetTimer()
		for _, u := range urls { // one URL per handoff, as the plugin hands off a small transaction
			if err := d.Enqueue(ctx, backends.Request{URLs: []string{u}}); err != nil {
				b.Fatal(err)
			}
		}
		if err := d.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := d.Close(ctx); err != nil {
			b.Fatal(err)
		}
		if s := d.Stats().Backends[0]; s.Delivered != uint64(b.N) {
			b.Fatalf("delivered %d of %d", s.Delivered, b.N)
		}
		ratio(b, float64(b.N)/b.Elapsed().Seconds())
	})
}

// benchBackend returns a Backend with 64 requests in flight to node.
func benchBackend(b *testing.B, node string, opts ...httppurge.Option) *httppurge.Backend {
	b.Helper()
	be, err := httppurge.New(append(opts, httppurge.WithNodes(node), httppurge.WithSiteHost(site),
		httppurge.WithNodeConcurrency(benchConns), httppurge.WithLogger(quiet))...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = be.Close(context.Background()) })
	return be
}

// benchRequests returns n distinct URLs in requests of at most size.
func benchRequests(n, size int) []backends.Request {
	var reqs []backends.Request
	for start := 0; start < n; start += size {
		urls := make([]string, 0, size)
		for i := start; i < min(n, start+size); i++ {
			urls = append(urls, fmt.Sprintf("/bench/b/%d/%d", n, i))
		}
		reqs = append(reqs, backends.Request{URLs: urls})
	}
	return reqs
}

var wrkRateRE = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// runWrk sends PURGE url for secs seconds with wrk and returns its rate.
func runWrk(b *testing.B, url string, secs int) float64 {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+30)*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "wrk", "-t2", fmt.Sprintf("-c%d", benchConns), fmt.Sprintf("-d%ds", secs),
		"-s", "testdata/wrk-purge.lua", url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("wrk: %v\n%s", err, out)
	}
	if bytes.Contains(out, []byte("Non-2xx")) || bytes.Contains(out, []byte("Socket errors")) {
		b.Fatalf("wrk saw failures:\n%s", out)
	}
	m := wrkRateRE.FindSubmatch(out)
	if m == nil {
		b.Fatalf("no rate in wrk's output:\n%s", out)
	}
	rate, _ := strconv.ParseFloat(string(m[1]), 64)
	return rate
}
