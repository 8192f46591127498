package akamaitest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/akamai"
	"github.com/gormpurge/gormpurge/backends/akamai/akamaitest"
	"github.com/gormpurge/gormpurge/internal/testclock"
)

func TestObjectBucket(t *testing.T) {
	clock := testclock.New()
	srv := newServer(t, akamaitest.WithClock(clock),
		akamaitest.WithRateLimits(akamai.RateLimits{URLs: akamai.Bucket{Burst: 3, PerSecond: 1}}))
	u := func(n int) string {
		var items []string
		for i := range n {
			items = append(items, fmt.Sprintf("https://www.example.com/%d", i))
		}
		return objects(items...)
	}

	a := post(t, srv, urlPath, u(2))
	require.Equal(t, http.StatusCreated, a.status)
	assert.Equal(t, "99", remaining(t, a, ""))
	assert.Equal(t, "1", remaining(t, a, "-Objects"))

	a = post(t, srv, urlPath, u(2))
	assertProblem(t, a, http.StatusTooManyRequests, "URL Rate Limit exceeded")
	assert.Equal(t, "", a.body.Detail)
	assert.True(t, strings.HasPrefix(a.body.SupportID, "edup-"), a.body.SupportID)
	assert.Equal(t, 3, *a.body.RateLimit)
	assert.Equal(t, 2, *a.body.RateLimitCurrentRequestSize)
	assert.Equal(t, 1, *a.body.RateLimitRemaining)
	assert.Equal(t, http.Header{
		"X-Ratelimit-Limit":                            {"100"},
		"X-Ratelimit-Limit-Per-Second":                 {"50.00"},
		"X-Ratelimit-Remaining":                        {"99"}, // the refused request spent nothing
		"X-Ratelimit-Seconds-To-Refresh-Limit":         {"0.020000"},
		"X-Ratelimit-Limit-Objects":                    {"3"},
		"X-Ratelimit-Limit-Per-Second-Objects":         {"1.00"},
		"X-Ratelimit-Remaining-Objects":                {"1"},
		"X-Ratelimit-Seconds-To-Refresh-Limit-Objects": {"2.000000"},
	}, rateHeaders(a.header))
	assert.Empty(t, a.header.Get("Retry-After"), "Akamai documents no Retry-After")

	// Nothing was spent: one object still fits.
	a = post(t, srv, urlPath, u(1))
	require.Equal(t, http.StatusCreated, a.status)
	assert.Equal(t, "98", remaining(t, a, ""))
	assert.Equal(t, "0", remaining(t, a, "-Objects"))

	// The wait computed from the headers is enough, and not much more.
	wait := waitFor(t, a.header, 2)
	assert.Equal(t, 2*time.Second, wait)
	clock.Advance(wait - time.Millisecond)
	a = post(t, srv, urlPath, u(2))
	require.Equal(t, http.StatusTooManyRequests, a.status)
	clock.Advance(time.Millisecond)
	a = post(t, srv, urlPath, u(2))
	require.Equal(t, http.StatusCreated, a.status, string(a.raw))

	assert.Equal(t, map[int]int{201: 3, 429: 2}, srv.Responses())
	assert.Len(t, srv.Objects(akamai.KindURL), 5)
}

func TestRequestBucket(t *testing.T) {
	clock := testclock.New()
	srv := newServer(t, akamaitest.WithClock(clock),
		akamaitest.WithRateLimits(akamai.RateLimits{Requests: akamai.Bucket{Burst: 2, PerSecond: 0.5}}))
	for range 2 {
		require.Equal(t, http.StatusCreated, post(t, srv, tagPath, objects("t")).status)
	}
	a := post(t, srv, tagPath, objects("t"))
	assertProblem(t, a, http.StatusTooManyRequests, "Rate Limit exceeded")
	assert.Equal(t, 2, *a.body.RateLimit)
	assert.Equal(t, 1, *a.body.RateLimitCurrentRequestSize)
	assert.Equal(t, 0, *a.body.RateLimitRemaining)
	assert.Equal(t, "0", remaining(t, a, ""))
	assert.Equal(t, "4.000000", a.header.Get("X-Ratelimit-Seconds-To-Refresh-Limit"))
	assert.Equal(t, "0.50", a.header.Get("X-Ratelimit-Limit-Per-Second"))
	assert.Equal(t, "4998", remaining(t, a, "-Objects"), "the tag bucket is untouched by the refused request")

	clock.Advance(waitFor(t, a.header, 1))
	require.Equal(t, http.StatusCreated, post(t, srv, tagPath, objects("t")).status)
}

// Akamai's published limits, as in its examples.
func TestPublishedBuckets(t *testing.T) {
	clock := testclock.New()
	srv := newServer(t, akamaitest.WithClock(clock))
	assert.Equal(t, akamai.PublishedRateLimits(), srv.Limits())

	var tags []string
	for i := range 5000 {
		tags = append(tags, fmt.Sprintf("t%d", i))
	}
	a := post(t, srv, tagPath, objects(tags...))
	require.Equal(t, http.StatusCreated, a.status, string(a.raw))
	assert.Equal(t, "5000", a.header.Get("X-Ratelimit-Limit-Objects"))
	assert.Equal(t, "8.333333", a.header.Get("X-Ratelimit-Limit-Per-Second-Objects"))
	assert.Equal(t, "0", remaining(t, a, "-Objects"))
	assert.Equal(t, "600.000000", a.header.Get("X-Ratelimit-Seconds-To-Refresh-Limit-Objects"))

	a = post(t, srv, tagPath, objects("one-more"))
	assertProblem(t, a, http.StatusTooManyRequests, "TAG Rate Limit exceeded")
	assert.True(t, strings.HasPrefix(a.body.SupportID, "edtp-"), a.body.SupportID)
	assert.Equal(t, []int{5000, 1, 0}, []int{*a.body.RateLimit, *a.body.RateLimitCurrentRequestSize, *a.body.RateLimitRemaining})

	clock.Advance(waitFor(t, a.header, 1))
	require.Equal(t, http.StatusCreated, post(t, srv, tagPath, objects("one-more")).status)

	// More CP codes than the bucket holds never fit.
	cps := make([]int, 301)
	for i := range cps {
		cps[i] = i + 1
	}
	b, _ := json.Marshal(map[string][]int{"objects": cps})
	a = post(t, srv, cpcodePath, string(b))
	assertProblem(t, a, http.StatusTooManyRequests, "CPCODE Rate Limit exceeded")
	assert.True(t, strings.HasPrefix(a.body.SupportID, "edcp-"), a.body.SupportID)
	assert.Equal(t, []int{300, 301, 300}, []int{*a.body.RateLimit, *a.body.RateLimitCurrentRequestSize, *a.body.RateLimitRemaining})
	assert.Equal(t, "0.50", a.header.Get("X-Ratelimit-Limit-Per-Second-Objects"))
	assert.Equal(t, "10000", post(t, srv, urlPath, objects("https://www.example.com/")).header.Get("X-Ratelimit-Limit-Objects"))
}

func rateHeaders(h http.Header) http.Header {
	out := http.Header{}
	for k, v := range h {
		if strings.HasPrefix(k, "X-Ratelimit-") {
			out[k] = v
		}
	}
	return out
}

// waitFor is how a client computes, from the headers of the last response,
// how long to wait before a request of n objects: the longer of the waits
// for one request token and for n object tokens.
func waitFor(t *testing.T, h http.Header, n int) time.Duration {
	t.Helper()
	need := func(suffix string, n int) float64 {
		var left, rate float64
		_, err := fmt.Sscan(h.Get("X-Ratelimit-Remaining"+suffix), &left)
		require.NoError(t, err)
		_, err = fmt.Sscan(h.Get("X-Ratelimit-Limit-Per-Second"+suffix), &rate)
		require.NoError(t, err)
		return max(0, (float64(n)-left)/rate)
	}
	secs := max(need("", 1), need("-Objects", n))
	return time.Duration(secs * float64(time.Second)).Round(time.Microsecond)
}

// A client that paces itself from the headers on a ScaledClock shared with
// the fake spends minutes of Akamai time in a fraction of a second, and is
// never refused.
func TestPacingOnScaledClock(t *testing.T) {
	clock := akamaitest.NewScaledClock(2000)
	srv := newServer(t, akamaitest.WithClock(clock))
	start := clock.Now()
	cps := make([]int, 50)
	var last http.Header
	for i := range 12 {
		if last != nil {
			require.NoError(t, clock.Sleep(t.Context(), waitFor(t, last, len(cps))))
		}
		for j := range cps {
			cps[j] = i*len(cps) + j + 1
		}
		b, _ := json.Marshal(map[string][]int{"objects": cps})
		a := post(t, srv, cpcodePath, string(b))
		require.Equal(t, http.StatusCreated, a.status, "request %d: %s", i, a.raw)
		last = a.header
	}
	// 600 CP codes at 300 per burst and 30 per minute: 10 minutes.
	assert.GreaterOrEqual(t, clock.Now().Sub(start), 10*time.Minute)
	assert.Len(t, srv.Objects(akamai.KindCPCode), 600)
	assert.Equal(t, map[int]int{201: 12}, srv.Responses())
	purges := srv.Purges()
	assert.True(t, slices.IsSortedFunc(purges, func(a, b akamaitest.Purge) int { return a.At.Compare(b.At) }))
}

func TestRefillOnScaledClock(t *testing.T) {
	// Slow enough that the few real milliseconds between two requests
	// (more on a loaded machine) refill nothing that matters.
	clock := akamaitest.NewScaledClock(10)
	srv := newServer(t, akamaitest.WithClock(clock),
		akamaitest.WithRateLimits(akamai.RateLimits{CPCodes: akamai.Bucket{Burst: 2, PerSecond: 0.5}}))
	require.Equal(t, http.StatusCreated, post(t, srv, cpcodePath, `{"objects":[1,2]}`).status)
	a := post(t, srv, cpcodePath, `{"objects":[3]}`)
	require.Equal(t, http.StatusTooManyRequests, a.status)
	realStart := time.Now()
	require.NoError(t, clock.Sleep(t.Context(), waitFor(t, a.header, 1))) // 2 s on the clock, 200 ms real
	assert.Less(t, time.Since(realStart), time.Second)
	require.Equal(t, http.StatusCreated, post(t, srv, cpcodePath, `{"objects":[3]}`).status)
}

// With network latency, a request spends its tokens when it arrives, from
// buckets refilled up to that moment, and is recorded at that time.
func TestLatencyDebitsOnArrival(t *testing.T) {
	clock := testclock.New()
	start := clock.Now()
	const arrive, answer = 1500 * time.Millisecond, 250 * time.Millisecond
	srv := newServer(t, akamaitest.WithClock(clock),
		akamaitest.WithRateLimits(akamai.RateLimits{URLs: akamai.Bucket{Burst: 2, PerSecond: 1}}),
		akamaitest.WithLatency(func() (time.Duration, time.Duration) { return arrive, answer }))

	a := post(t, srv, urlPath, objects("https://www.example.com/1", "https://www.example.com/2"))
	require.Equal(t, http.StatusCreated, a.status, string(a.raw))
	assert.Equal(t, "0", remaining(t, a, "-Objects"), "the full bucket refilled nothing while the request travelled")
	assert.Equal(t, start.Add(arrive+answer), clock.Now(), "the answer comes back after both delays")

	// Sent when the bucket is empty, it arrives 1.5 s later, when 1.75
	// tokens have come back: a bucket debited at sending would refuse it.
	a = post(t, srv, urlPath, objects("https://www.example.com/3"))
	require.Equal(t, http.StatusCreated, a.status, string(a.raw))
	assert.Equal(t, "0", remaining(t, a, "-Objects"))

	purges := srv.Purges()
	require.Len(t, purges, 2)
	assert.Equal(t, start.Add(arrive), purges[0].At, "recorded on arrival")
	assert.Equal(t, start.Add(2*arrive+answer), purges[1].At)
}
