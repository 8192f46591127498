package cloudflaretest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/cloudflare/cloudflaretest"
)

type answer struct {
	status int
	header http.Header
	body   struct {
		Success bool `json:"success"`
		Errors  []struct {
			Code       int    `json:"code"`
			Message    string `json:"message"`
			ErrorChain []struct {
				Code int `json:"code"`
			} `json:"error_chain"`
		} `json:"errors"`
		Messages []any `json:"messages"`
		Result   *struct {
			ID string `json:"id"`
		} `json:"result"`
	}
}

func (a answer) codes() []int {
	var out []int
	for _, e := range a.body.Errors {
		out = append(out, e.Code)
	}
	return out
}

// post sends body to path (relative to the endpoint) with auth as the
// Authorization header.
func post(t *testing.T, srv *cloudflaretest.Server, method, path, auth, body string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.Endpoint()+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&a.body))
	require.NotNil(t, a.body.Messages, "the envelope always has messages")
	return a
}

func purge(t *testing.T, srv *cloudflaretest.Server, body string) answer {
	t.Helper()
	return post(t, srv, http.MethodPost, "/zones/"+srv.Zone()+"/purge_cache", "Bearer "+srv.Token(), body)
}

func TestChecks(t *testing.T) {
	srv := cloudflaretest.NewServer(cloudflaretest.WithBucket(1000, 1000))
	t.Cleanup(srv.Close)
	zonePath := "/zones/" + srv.Zone() + "/purge_cache"
	bearer := "Bearer " + srv.Token()
	many := func(n int, f func(i int) string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = `"` + f(i) + `"`
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	for _, c := range []struct {
		name, method, path, auth, body string
		status                         int
		codes                          []int
	}{
		{"files", "POST", zonePath, bearer, `{"files":["https://www.example.com/a","http://www.example.com/b?x=1"]}`, 200, nil},
		{"file objects", "POST", zonePath, bearer, `{"files":[{"url":"https://www.example.com/a","headers":{"CF-IPCountry":"US"}}]}`, 200, nil},
		{"tags", "POST", zonePath, bearer, `{"tags":["post-1","Tag:2"]}`, 200, nil},
		{"hosts", "POST", zonePath, bearer, `{"hosts":["www.example.com"]}`, 200, nil},
		{"prefixes", "POST", zonePath, bearer, `{"prefixes":["www.example.com/posts"]}`, 200, nil},
		{"everything", "POST", zonePath, bearer, `{"purge_everything":true}`, 200, nil},
		{"files at the limit", "POST", zonePath, bearer, `{"files":` + many(100, func(i int) string { return "https://e.example/" + strings.Repeat("x", i) }) + `}`, 200, nil},

		{"unknown path", "POST", "/zones/" + srv.Zone() + "/purge", bearer, `{}`, 404, []int{7000}},
		{"GET", "GET", zonePath, bearer, ``, 405, []int{10405}},
		{"no token", "POST", zonePath, "", `{"purge_everything":true}`, 400, []int{6003}},
		{"not bearer", "POST", zonePath, "Token " + srv.Token(), `{"purge_everything":true}`, 400, []int{6003}},
		{"wrong token", "POST", zonePath, "Bearer nope", `{"purge_everything":true}`, 403, []int{10000}},
		{"malformed zone", "POST", "/zones/not-a-zone/purge_cache", bearer, `{"purge_everything":true}`, 400, []int{7003}},
		{"other zone", "POST", "/zones/" + strings.Repeat("0", 32) + "/purge_cache", bearer, `{"purge_everything":true}`, 404, []int{7003}},
		{"not JSON", "POST", zonePath, bearer, `files=x`, 400, []int{1012}},
		{"unknown field", "POST", zonePath, bearer, `{"files":["https://e.example/"],"urls":["x"]}`, 400, []int{1012}},
		{"two kinds", "POST", zonePath, bearer, `{"files":["https://e.example/"],"tags":["t"]}`, 400, []int{1012}},
		{"nothing", "POST", zonePath, bearer, `{}`, 400, []int{1012}},
		{"empty list", "POST", zonePath, bearer, `{"files":[]}`, 400, []int{1012}},
		{"everything false", "POST", zonePath, bearer, `{"purge_everything":false}`, 400, []int{1012}},
		{"too many files", "POST", zonePath, bearer, `{"files":` + many(101, func(i int) string { return "https://e.example/" + strings.Repeat("x", i) }) + `}`, 400, []int{1013}},
		{"too many tags", "POST", zonePath, bearer, `{"tags":` + many(101, func(i int) string { return strings.Repeat("t", i+1) }) + `}`, 400, []int{1013}},
		{"path", "POST", zonePath, bearer, `{"files":["/posts/1"]}`, 400, []int{1016, cloudflaretest.CodeRefusedURL}},
		{"no scheme", "POST", zonePath, bearer, `{"files":["www.example.com/posts/1"]}`, 400, []int{1016, cloudflaretest.CodeRefusedURL}},
		{"long tag", "POST", zonePath, bearer, `{"tags":["` + strings.Repeat("t", 1025) + `"]}`, 400, []int{1016, 1100}},
		{"tag with a space", "POST", zonePath, bearer, `{"tags":["a b"]}`, 400, []int{1016, 1315}},
		{"non-ASCII tag", "POST", zonePath, bearer, `{"tags":["caf\u00e9"]}`, 400, []int{1016, 1315}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(srv.Purges())
			a := post(t, srv, c.method, c.path, c.auth, c.body)
			assert.Equal(t, c.status, a.status)
			assert.Equal(t, c.codes, a.codes())
			assert.Equal(t, c.status == 200, a.body.Success)
			if c.status == 200 {
				require.NotNil(t, a.body.Result)
				assert.Len(t, a.body.Result.ID, 32)
				assert.Len(t, srv.Purges(), before+1)
			} else {
				assert.Nil(t, a.body.Result)
				assert.Len(t, srv.Purges(), before, "nothing recorded")
			}
		})
	}
	assert.Equal(t, 1, srv.Everything())
	assert.Equal(t, []string{"post-1", "Tag:2"}, srv.Tags())
}

func TestWithoutTagsAndMaxFiles(t *testing.T) {
	srv := cloudflaretest.NewServer(cloudflaretest.WithoutTags(), cloudflaretest.WithMaxItems(2), cloudflaretest.WithMaxFiles(3))
	t.Cleanup(srv.Close)
	assert.Equal(t, []int{1107}, purge(t, srv, `{"tags":["a"]}`).codes())
	assert.Equal(t, 200, purge(t, srv, `{"files":["https://e.example/1","https://e.example/2","https://e.example/3"]}`).status)
	assert.Equal(t, []int{1013}, purge(t, srv, `{"files":["https://e.example/1","https://e.example/2","https://e.example/3","https://e.example/4"]}`).codes())
}

func TestBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	srv := cloudflaretest.NewServer(cloudflaretest.WithBucket(0.5, 2), cloudflaretest.WithNow(clock))
	t.Cleanup(srv.Close)
	body := `{"purge_everything":true}`
	assert.Equal(t, 200, purge(t, srv, body).status)
	assert.Equal(t, 200, purge(t, srv, body).status)
	a := purge(t, srv, body)
	assert.Equal(t, 429, a.status)
	assert.Equal(t, []int{971}, a.codes())
	assert.Equal(t, "2", a.header.Get("Retry-After"), "one token at half a token a second")
	advance(time.Second)
	a = purge(t, srv, body)
	assert.Equal(t, 429, a.status)
	assert.Equal(t, "1", a.header.Get("Retry-After"))
	advance(time.Second)
	assert.Equal(t, 200, purge(t, srv, body).status)
	assert.Equal(t, 3, srv.Everything())
	assert.Equal(t, map[int]int{200: 3, 429: 2}, srv.Responses())

	srv.Reset()
	assert.Equal(t, 200, purge(t, srv, body).status, "Reset fills the bucket")
	assert.Equal(t, 1, srv.Everything())
}

// Single-file purges are limited in URLs a second and spend no token of
// the request bucket, which purges by tag (and of everything) spend, as
// Cloudflare publishes its purge limits.
func TestURLRate(t *testing.T) {
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	srv := cloudflaretest.NewServer(cloudflaretest.WithBucket(1.0/3600, 1), cloudflaretest.WithURLRate(4), cloudflaretest.WithNow(clock))
	t.Cleanup(srv.Close)
	two := `{"files":["https://e.example/1","https://e.example/2"]}`
	assert.Equal(t, 200, purge(t, srv, two).status)
	assert.Equal(t, 200, purge(t, srv, two).status, "files spend no token of the request bucket")
	assert.Equal(t, 200, purge(t, srv, `{"tags":["a"]}`).status, "the request bucket's one token is still there")
	assert.Equal(t, 429, purge(t, srv, `{"tags":["b"]}`).status)
	a := purge(t, srv, two)
	assert.Equal(t, 429, a.status, "4 URLs a second")
	assert.Equal(t, []int{971}, a.codes())
	assert.Equal(t, "1", a.header.Get("Retry-After"), "2 URLs at 4 a second")
	advance(500 * time.Millisecond)
	assert.Equal(t, 200, purge(t, srv, two).status)
	assert.Len(t, srv.Files(), 6)
}

func TestFailNextAndRespond(t *testing.T) {
	srv := cloudflaretest.NewServer()
	t.Cleanup(srv.Close)
	srv.FailNext(http.StatusServiceUnavailable, 1)
	srv.FailNext(http.StatusTooManyRequests, 1)
	srv.FailNext(http.StatusForbidden, 1)
	body := `{"files":["https://e.example/"]}`
	a := purge(t, srv, body)
	assert.Equal(t, 503, a.status)
	assert.Equal(t, []int{10002}, a.codes())
	a = purge(t, srv, body)
	assert.Equal(t, 429, a.status)
	assert.Equal(t, "1", a.header.Get("Retry-After"))
	assert.Equal(t, []int{971}, a.codes())
	a = purge(t, srv, body)
	assert.Equal(t, 403, a.status)
	assert.Equal(t, []int{10000}, a.codes())
	assert.Equal(t, 200, purge(t, srv, body).status)

	var seen []cloudflaretest.Call
	srv.Respond(func(c cloudflaretest.Call) (int, bool) {
		seen = append(seen, c)
		return http.StatusBadGateway, len(c.Files) > 1
	})
	assert.Equal(t, 502, purge(t, srv, `{"files":["https://e.example/1","https://e.example/2"]}`).status)
	assert.Equal(t, 200, purge(t, srv, `{"tags":["a"]}`).status)
	require.Len(t, seen, 2)
	assert.Equal(t, []string{"https://e.example/1", "https://e.example/2"}, seen[0].Files)
	assert.Equal(t, []string{"a"}, seen[1].Tags)
	assert.Equal(t, []string{"https://e.example/"}, srv.Files())
	assert.Panics(t, func() { srv.FailNext(200, 1) })
}

func TestRefuseURLs(t *testing.T) {
	srv := cloudflaretest.NewServer()
	t.Cleanup(srv.Close)
	srv.RefuseURLs("https://a.example/x")
	a := purge(t, srv, `{"files":["https://a.example/x","https://b.example/y"]}`)
	assert.Equal(t, 400, a.status)
	assert.Equal(t, []int{1016, cloudflaretest.CodeRefusedURL}, a.codes())
	assert.True(t, strings.HasSuffix(a.body.Errors[1].Message, ": https://a.example/x"))
	assert.Empty(t, srv.Files(), "a refused request purges nothing")
	assert.Equal(t, 200, purge(t, srv, `{"files":["https://b.example/y"]}`).status)
	assert.Equal(t, []string{"https://b.example/y"}, srv.Files())
}

// URL is the server's base, as the other fakes' URL; Endpoint is the API
// base under it, for cloudflare.WithEndpoint.
func TestURLAndEndpoint(t *testing.T) {
	srv := cloudflaretest.NewServer()
	t.Cleanup(srv.Close)
	assert.True(t, strings.HasPrefix(srv.URL(), "https://127.0.0.1:"), srv.URL())
	assert.False(t, strings.HasSuffix(srv.URL(), "/"))
	assert.Equal(t, srv.URL()+"/client/v4", srv.Endpoint())
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+"/client/v4/zones/"+srv.Zone()+"/purge_cache", strings.NewReader(`{"tags":["a"]}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+srv.Token())
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, []string{"a"}, srv.Tags())
}

func TestHold(t *testing.T) {
	srv := cloudflaretest.NewServer()
	t.Cleanup(srv.Close)
	arrived, release := srv.Hold()
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, srv.Endpoint()+"/zones/"+srv.Zone()+"/purge_cache",
			bytes.NewReader([]byte(`{"tags":["held"]}`)))
		req.Header.Set("Authorization", "Bearer "+srv.Token())
		resp, err := srv.Client().Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the held request never arrived")
	}
	select {
	case <-done:
		t.Fatal("a held request was answered")
	case <-time.After(50 * time.Millisecond):
	}
	assert.Empty(t, srv.Tags())
	release()
	release() // twice is fine
	assert.Equal(t, 200, <-done)
	assert.Equal(t, []string{"held"}, srv.Tags())
	assert.Equal(t, 200, purge(t, srv, `{"tags":["after"]}`).status, "no longer held")
}

func TestCloseReleasesHeldRequests(t *testing.T) {
	srv := cloudflaretest.NewServer()
	arrived, _ := srv.Hold()
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest(http.MethodPost, srv.Endpoint()+"/zones/"+srv.Zone()+"/purge_cache", strings.NewReader(`{"tags":["x"]}`))
		if resp, err := srv.Client().Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-arrived
	srv.Close()
	srv.Close()
	<-done
}

func TestOptionsPanicOnMisuse(t *testing.T) {
	for name, f := range map[string]func(){
		"zone":      func() { cloudflaretest.WithZone("ABC") },
		"token":     func() { cloudflaretest.WithToken("") },
		"bucket":    func() { cloudflaretest.WithBucket(0, 1) },
		"burst":     func() { cloudflaretest.WithBucket(1, 0) },
		"url rate":  func() { cloudflaretest.WithURLRate(0) },
		"max items": func() { cloudflaretest.WithMaxItems(0) },
		"max files": func() { cloudflaretest.WithMaxFiles(-1) },
		"now":       func() { cloudflaretest.WithNow(nil) },
		"nil":       func() { cloudflaretest.NewServer(nil) },
	} {
		assert.Panics(t, f, name)
	}
	srv := cloudflaretest.NewServer(cloudflaretest.WithZone(strings.Repeat("ab", 16)), cloudflaretest.WithToken("tok"))
	defer srv.Close()
	assert.Equal(t, strings.Repeat("ab", 16), srv.Zone())
	assert.Equal(t, "tok", srv.Token())
}
