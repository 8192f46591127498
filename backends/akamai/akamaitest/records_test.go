package akamaitest_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/akamai"
	"github.com/gormpurge/gormpurge/backends/akamai/akamaitest"
	"github.com/gormpurge/gormpurge/internal/testclock"
)

func TestFailNext(t *testing.T) {
	for _, status := range []int{400, 401, 403, 413, 429, 500, 502, 503, 504, 507} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv := newServer(t)
			srv.FailNext(status, 2)
			for range 2 {
				a := post(t, srv, urlPath, objects("https://www.example.com/a"))
				assertProblem(t, a, status, "")
				assert.NotEmpty(t, a.body.Title)
				if status == http.StatusUnauthorized {
					continue
				}
				assert.Equal(t, "10000", remaining(t, a, "-Objects"), "injected failures spend nothing")
				if status == http.StatusTooManyRequests {
					// Says the request bucket is empty, back in one token's time.
					assert.Equal(t, "0", remaining(t, a, ""))
					assert.Equal(t, "Rate Limit exceeded", a.body.Title)
					assert.Equal(t, []int{100, 1, 0}, []int{*a.body.RateLimit, *a.body.RateLimitCurrentRequestSize, *a.body.RateLimitRemaining})
					assert.Equal(t, "0.020000", a.header.Get("X-Ratelimit-Seconds-To-Refresh-Limit"))
				} else {
					assert.Equal(t, "100", remaining(t, a, ""), "injected failures spend nothing")
				}
				if status == http.StatusForbidden {
					assert.Equal(t, "https://www.example.com/a", a.body.Detail)
				}
			}
			a := post(t, srv, urlPath, objects("https://www.example.com/a"))
			require.Equal(t, http.StatusCreated, a.status)
			assert.Len(t, srv.Purges(), 1)
			assert.Equal(t, map[int]int{status: 2, 201: 1}, srv.Responses())
		})
	}
}

func TestFailNextQueues(t *testing.T) {
	srv := newServer(t)
	srv.FailNext(500, 1)
	srv.FailNext(429, 2)
	srv.FailNext(503, 0) // nothing
	var got []int
	for range 4 {
		got = append(got, post(t, srv, tagPath, objects("t")).status)
	}
	assert.Equal(t, []int{500, 429, 429, 201}, got)

	// A failure is taken only by a correctly signed request.
	srv.FailNext(500, 1)
	require.Equal(t, 401, do(t, srv, request{path: tagPath, body: objects("t"), sign: func(*http.Request) {}}).status)
	require.Equal(t, 500, post(t, srv, tagPath, objects("t")).status)

	assert.Panics(t, func() { srv.FailNext(99, 1) })
	assert.Panics(t, func() { srv.FailNext(600, 1) })
}

func TestRespond(t *testing.T) {
	srv := newServer(t)
	var mu sync.Mutex
	var calls []akamaitest.Call
	srv.Respond(func(c akamaitest.Call) (int, bool) {
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
		if slices.Contains(c.Objects, "https://www.example.com/poison") {
			return http.StatusServiceUnavailable, true
		}
		return 0, false
	})
	require.Equal(t, 201, post(t, srv, urlPath, objects("https://www.example.com/a")).status)
	a := post(t, srv, path(akamai.Delete, akamai.KindURL, akamai.Staging), objects("https://www.example.com/poison"))
	assertProblem(t, a, http.StatusServiceUnavailable, "service unavailable")
	require.Equal(t, 404, post(t, srv, "/ccu/v3/nowhere", objects("x")).status)

	require.Len(t, calls, 3)
	assert.Equal(t, 1, calls[0].Seq)
	assert.Equal(t, akamaitest.Call{
		Seq: 2, Method: http.MethodPost, Path: "/ccu/v3/delete/url/staging",
		Action: akamai.Delete, Network: akamai.Staging, Kind: akamai.KindURL,
		Objects: []string{"https://www.example.com/poison"},
		Header:  calls[1].Header, Body: []byte(objects("https://www.example.com/poison")),
	}, calls[1])
	assert.NotEmpty(t, calls[1].Header.Get("Authorization"))
	assert.Equal(t, akamaitest.Call{Seq: 3, Method: http.MethodPost, Path: "/ccu/v3/nowhere",
		Header: calls[2].Header, Body: []byte(objects("x"))}, calls[2])

	srv.FailNext(500, 1) // FailNext comes first and the hook does not see it
	require.Equal(t, 500, post(t, srv, urlPath, objects("https://www.example.com/poison")).status)
	require.Len(t, calls, 3)

	srv.Respond(nil)
	require.Equal(t, 201, post(t, srv, urlPath, objects("https://www.example.com/poison")).status)
	assert.Equal(t, []string{"https://www.example.com/a", "https://www.example.com/poison"}, srv.Objects(akamai.KindURL))
}

func TestRecordsAndReset(t *testing.T) {
	clock := testclock.New()
	srv := newServer(t, akamaitest.WithClock(clock))
	require.Equal(t, 201, post(t, srv, urlPath, objects("https://www.example.com/1", "https://www.example.com/2")).status)
	clock.Advance(time.Second)
	require.Equal(t, 201, post(t, srv, path(akamai.Delete, akamai.KindTag, akamai.Staging), objects("a", "b")).status)
	require.Equal(t, 201, post(t, srv, "/ccu/v3/delete/cpcode", `{"objects":[12345, 98765]}`).status)
	require.Equal(t, 201, post(t, srv, urlPath, `{"hostname":"www.example.com","objects":["/3"]}`).status)
	require.Equal(t, 400, post(t, srv, urlPath, `{"objects":[]}`).status)

	assert.Equal(t, []string{"https://www.example.com/1", "https://www.example.com/2", "/3"}, srv.Objects(akamai.KindURL))
	assert.Equal(t, []string{"a", "b"}, srv.Objects(akamai.KindTag))
	assert.Equal(t, []string{"12345", "98765"}, srv.Objects(akamai.KindCPCode))

	purges := srv.Purges()
	require.Len(t, purges, 4)
	assert.Equal(t, clock.Now().Add(-time.Second), purges[0].At)
	assert.Equal(t, clock.Now(), purges[1].At)
	assert.Equal(t, akamaitest.Purge{
		Action: akamai.Delete, Network: akamai.Staging, Kind: akamai.KindTag, Objects: []string{"a", "b"},
		PurgeID: purges[1].PurgeID, SupportID: purges[1].PurgeID, BodyBytes: len(objects("a", "b")), At: clock.Now(),
	}, purges[1])
	assert.Equal(t, akamai.Production, purges[2].Network)
	assert.Equal(t, "www.example.com", purges[3].Hostname)

	purges[0].Objects[0] = "changed"
	assert.Equal(t, "https://www.example.com/1", srv.Purges()[0].Objects[0], "Purges returns copies")
	assert.Equal(t, map[int]int{201: 4, 400: 1}, srv.Responses())

	srv.FailNext(500, 5)
	srv.Respond(func(akamaitest.Call) (int, bool) { return 503, true })
	srv.Reset()
	assert.Empty(t, srv.Purges())
	assert.Empty(t, srv.Objects(akamai.KindURL))
	assert.Empty(t, srv.Responses())
	a := post(t, srv, urlPath, objects("https://www.example.com/"))
	require.Equal(t, 201, a.status, "Reset cancels failures and the hook")
	assert.Equal(t, "99", remaining(t, a, ""), "Reset fills the buckets")
	assert.Equal(t, "9999", remaining(t, a, "-Objects"))
}
