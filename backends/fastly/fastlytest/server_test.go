package fastlytest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/fastly/fastlytest"
)

func keysBody(n int) string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
	}
	raw, _ := json.Marshal(map[string][]string{"surrogate_keys": keys})
	return string(raw)
}

// TestRequests checks each endpoint's answers and what the fake records.
func TestRequests(t *testing.T) {
	srv := newServer(t, fastlytest.WithServiceID("svc123"), fastlytest.WithAPIToken("tok-abc"))
	cases := []struct {
		name   string
		method string
		path   string
		header map[string]string
		body   string
		status int
		msg    string         // the error's msg, for an error
		want   map[string]any // fields of a 200 body other than ids
		purge  *fastlytest.Purge
	}{
		{name: "url", path: "/purge/www.example.com/a%20b?q=%2F", header: key(srv), status: 200,
			want:  map[string]any{"status": "ok"},
			purge: &fastlytest.Purge{Kind: fastlytest.KindURL, URL: "www.example.com/a%20b?q=%2F"}},
		{name: "url soft", path: "/purge/www.example.com/soft", header: key(srv, "Fastly-Soft-Purge", "1"), status: 200,
			want:  map[string]any{"status": "ok"},
			purge: &fastlytest.Purge{Kind: fastlytest.KindURL, URL: "www.example.com/soft", Soft: true}},
		{name: "keys in JSON", path: "/service/svc123/purge", header: key(srv, "Content-Type", "application/json"),
			body: `{"surrogate_keys":["a","b"]}`, status: 200,
			purge: &fastlytest.Purge{Kind: fastlytest.KindKeys, ServiceID: "svc123", Keys: []string{"a", "b"}}},
		{name: "keys in header, soft", path: "/service/svc123/purge", header: key(srv, "Surrogate-Key", "a  b c", "Fastly-Soft-Purge", "1"), status: 200,
			purge: &fastlytest.Purge{Kind: fastlytest.KindKeys, ServiceID: "svc123", Keys: []string{"a", "b", "c"}, Soft: true}},
		{name: "256 keys", path: "/service/svc123/purge", header: key(srv), body: keysBody(256), status: 200},
		{name: "one key", path: "/service/svc123/purge/post-1", header: key(srv), status: 200,
			want:  map[string]any{"status": "ok"},
			purge: &fastlytest.Purge{Kind: fastlytest.KindKey, ServiceID: "svc123", Keys: []string{"post-1"}}},
		{name: "purge_all, soft asked", path: "/service/svc123/purge_all", header: key(srv, "Fastly-Soft-Purge", "1"), status: 200,
			want:  map[string]any{"status": "ok"},
			purge: &fastlytest.Purge{Kind: fastlytest.KindAll, ServiceID: "svc123"}},
		{name: "no token", path: "/purge/www.example.com/", status: 401, msg: "Provided credentials are missing or invalid"},
		{name: "wrong token", path: "/service/svc123/purge_all", header: map[string]string{"Fastly-Key": "nope"}, status: 401,
			msg: "Provided credentials are missing or invalid"},
		{name: "unknown service", path: "/service/other/purge", header: key(srv, "Surrogate-Key", "a"), status: 404, msg: "Record not found"},
		{name: "257 keys", path: "/service/svc123/purge", header: key(srv), body: keysBody(257), status: 400, msg: "Bad request"},
		{name: "no keys", path: "/service/svc123/purge", header: key(srv), status: 400, msg: "Bad request"},
		{name: "body and header", path: "/service/svc123/purge", header: key(srv, "Surrogate-Key", "a"), body: `{"surrogate_keys":["b"]}`, status: 400, msg: "Bad request"},
		{name: "unknown field", path: "/service/svc123/purge", header: key(srv), body: `{"keys":["b"]}`, status: 400, msg: "Bad request"},
		{name: "GET", method: http.MethodGet, path: "/service/svc123/purge_all", header: key(srv), status: 405, msg: "Method not allowed"},
		{name: "unknown path", path: "/service/svc123/version", header: key(srv), status: 404, msg: "Record not found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv.Reset()
			method := c.method
			if method == "" {
				method = http.MethodPost
			}
			a := do(t, srv, method, c.path, c.header, c.body)
			require.Equal(t, c.status, a.status, "%v", a.body)
			if c.status != 200 {
				assert.Equal(t, c.msg, a.body["msg"])
				assert.Empty(t, srv.Purges(), "a refused request purges nothing")
				return
			}
			for k, v := range c.want {
				assert.Equal(t, v, a.body[k], k)
			}
			p := srv.Purges()
			require.Len(t, p, 1)
			if c.purge != nil {
				got := p[0]
				assert.Equal(t, c.purge.Kind, got.Kind)
				assert.Equal(t, c.purge.URL, got.URL)
				assert.Equal(t, c.purge.Keys, got.Keys)
				assert.Equal(t, c.purge.Soft, got.Soft)
				assert.Equal(t, c.purge.ServiceID, got.ServiceID)
			}
			switch p[0].Kind {
			case fastlytest.KindKeys: // a map of key to purge ID
				require.Len(t, a.body, len(p[0].Keys))
				for i, k := range p[0].Keys {
					assert.Equal(t, p[0].IDs[i], a.body[k])
				}
			case fastlytest.KindAll:
				assert.NotContains(t, a.body, "id")
			default:
				assert.Equal(t, p[0].IDs[0], a.body["id"])
			}
		})
	}
}

// TestRateLimit checks the hourly window: purge_all spends it, URL and key
// purges do not, the headers tell, and a new window refills it.
func TestRateLimit(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 2, 3, 0, 0, 500, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv := newServer(t, fastlytest.WithHourlyLimit(2), fastlytest.WithNow(clock))
	all := "/service/" + srv.ServiceID() + "/purge_all"
	reset := strconv.FormatInt(now.Add(time.Hour).Unix()+1, 10)

	a := post(t, srv, "/purge/www.example.com/", key(srv), "")
	assert.Equal(t, "2", a.header.Get("Fastly-RateLimit-Remaining"), "URL purges are not counted")
	assert.Equal(t, reset, a.header.Get("Fastly-RateLimit-Reset"))
	for _, want := range []string{"1", "0"} {
		a = post(t, srv, all, key(srv), "")
		require.Equal(t, 200, a.status)
		assert.Equal(t, want, a.header.Get("Fastly-RateLimit-Remaining"))
	}
	a = post(t, srv, all, key(srv), "")
	require.Equal(t, 429, a.status)
	assert.Equal(t, "0", a.header.Get("Fastly-RateLimit-Remaining"))
	assert.Equal(t, reset, a.header.Get("Fastly-RateLimit-Reset"))
	assert.Equal(t, 2, srv.PurgeAlls())
	a = post(t, srv, "/service/"+srv.ServiceID()+"/purge", key(srv, "Surrogate-Key", "k"), "")
	assert.Equal(t, 200, a.status, "key purges are not limited")

	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	a = post(t, srv, all, key(srv), "")
	require.Equal(t, 200, a.status, "a new window")
	assert.Equal(t, "1", a.header.Get("Fastly-RateLimit-Remaining"))
	assert.Equal(t, map[int]int{200: 5, 429: 1}, srv.Responses())
}

func TestFailNext(t *testing.T) {
	srv := newServer(t)
	srv.FailNext(503, 1)
	srv.FailNext(429, 1)
	srv.FailNext(503, 0) // nothing
	assert.PanicsWithValue(t, "fastlytest: FailNext(600, 1): the status must be between 200 and 599", func() { srv.FailNext(600, 1) })
	a := post(t, srv, "/purge/www.example.com/", key(srv), "")
	assert.Equal(t, 503, a.status)
	a = post(t, srv, "/purge/www.example.com/", key(srv), "")
	assert.Equal(t, 429, a.status)
	assert.Equal(t, "1", a.header.Get("Retry-After"))
	assert.Equal(t, "Too many requests", a.body["msg"])
	a = post(t, srv, "/purge/www.example.com/", key(srv), "")
	assert.Equal(t, 200, a.status)
	assert.Equal(t, []string{"www.example.com/"}, srv.URLs())
}

// TestRespondHold holds a request until its client gives up: the client
// sees its own cancellation, never an answer (the fake once returned from
// its handler, and net/http answered an empty 200 that a client still
// reading took for a success: 16 runs in 300 under -race), and nothing is
// recorded.
func TestRespondHold(t *testing.T) {
	srv := newServer(t)
	arrived := make(chan fastlytest.Call, 1)
	srv.Respond(func(c fastlytest.Call) (int, bool) {
		arrived <- c
		<-c.Context.Done()
		return 0, false
	})
	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL()+"/service/"+srv.ServiceID()+"/purge", strings.NewReader(`{"surrogate_keys":["k"]}`))
	require.NoError(t, err)
	req.Header.Set("Fastly-Key", srv.Token())
	done := make(chan error, 1)
	go func() {
		resp, err := srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	c := <-arrived
	assert.Equal(t, fastlytest.KindKeys, c.Kind)
	assert.Equal(t, []string{"k"}, c.Keys)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	assert.Empty(t, srv.Purges())
	assert.Empty(t, srv.Responses(), "nothing answered")
}

// TestHold holds requests until released.
func TestHold(t *testing.T) {
	srv := newServer(t)
	arrived, release := srv.Hold()
	answered := make(chan int, 1)
	go func() {
		req, err := http.NewRequest(http.MethodPost, srv.URL()+"/purge/www.example.com/held", nil)
		if err != nil {
			answered <- 0
			return
		}
		req.Header.Set("Fastly-Key", srv.Token())
		resp, err := srv.Client().Do(req)
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	<-arrived
	assert.Empty(t, srv.Purges(), "a held request is not handled yet")
	release()
	release() // twice is fine
	assert.Equal(t, http.StatusOK, <-answered)
	assert.Equal(t, []string{"www.example.com/held"}, srv.URLs())
}

func TestOptions(t *testing.T) {
	for name, tt := range map[string]struct {
		opt  func() fastlytest.Option
		want string
	}{
		"service id":   {func() fastlytest.Option { return fastlytest.WithServiceID("a/b") }, `fastlytest: WithServiceID("a/b")`},
		"empty token":  {func() fastlytest.Option { return fastlytest.WithAPIToken("") }, "fastlytest: WithAPIToken"},
		"hourly limit": {func() fastlytest.Option { return fastlytest.WithHourlyLimit(0) }, "fastlytest: WithHourlyLimit(0)"},
		"now":          {func() fastlytest.Option { return fastlytest.WithNow(nil) }, "fastlytest: WithNow(nil)"},
		"nil":          {func() fastlytest.Option { return nil }, "fastlytest: NewServer: an Option is nil"},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				r := recover()
				require.NotNil(t, r, "misuse panics, as httptest does")
				assert.Contains(t, r, tt.want)
			}()
			srv := fastlytest.NewServer(tt.opt())
			srv.Close()
		})
	}
	func() {
		defer func() {
			r := recover()
			require.NotNil(t, r)
			assert.NotContains(t, r, "sec ret", "the token is never shown")
		}()
		fastlytest.WithAPIToken("sec ret")
	}()

	a, b := newServer(t), newServer(t)
	assert.Len(t, a.ServiceID(), 22)
	assert.Len(t, a.Token(), 32)
	assert.NotEqual(t, a.Token(), b.Token(), "fresh for each server")
	assert.Equal(t, fastlytest.DefaultHourlyLimit, a.HourlyLimit())
}
