package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/internal/cachetest"
)

// recorded is a request an HTTP cache node received.
type recorded struct {
	Method, Host, URI string
	Header            http.Header
}

// cacheNode is an httptest server that records purge requests and answers
// them with status.
type cacheNode struct {
	url    string
	mu     sync.Mutex
	reqs   []recorded
	status int
}

func newCacheNode(t *testing.T, status int) *cacheNode {
	t.Helper()
	n := &cacheNode{status: status}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		n.reqs = append(n.reqs, recorded{Method: r.Method, Host: r.Host, URI: r.RequestURI, Header: r.Header.Clone()})
		n.mu.Unlock()
		w.WriteHeader(n.status)
	}))
	t.Cleanup(srv.Close)
	n.url = srv.URL
	return n
}

// requests returns the requests received, as "METHOD Host URI".
func (n *cacheNode) requests() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, len(n.reqs))
	for i, r := range n.reqs {
		out[i] = r.Method + " " + r.Host + " " + r.URI
	}
	slices.Sort(out)
	return out
}

func (n *cacheNode) headers() []http.Header {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]http.Header, len(n.reqs))
	for i, r := range n.reqs {
		out[i] = r.Header
	}
	return out
}

func TestPurgeHTTPNodes(t *testing.T) {
	t.Parallel()
	a, b := newCacheNode(t, http.StatusOK), newCacheNode(t, http.StatusNotFound)
	r := gormpurge(t, "purge", "--http-nodes", a.url+","+b.url, "--site-host", "www.example.com",
		"/posts/1", "https://other.example.com/feed?page=2")
	require.Equal(t, exitOK, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	want := []string{"PURGE other.example.com /feed?page=2", "PURGE www.example.com /posts/1"}
	assert.Equal(t, want, a.requests())
	assert.Equal(t, want, b.requests())
	assert.Contains(t, r.stdout, "Purged 2 of 2 URLs with httppurge (PURGE to 2 nodes")
	assert.Contains(t, r.stdout, a.url+": 2 purged, 0 not cached")
	assert.Contains(t, r.stdout, b.url+": 0 purged, 2 not cached")
}

func TestPurgeHTTPTags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode, method, header, value string
	}{
		{"xkey", "PURGE", "Xkey-Purge", "post-1 post-2"},
		{"surrogate-key", "PURGE", "Surrogate-Key", "post-1 post-2"},
		{"ban", "BAN", "X-Ban-Tags", `(^|\s)(post-1|post-2)(\s|$)`},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			n := newCacheNode(t, http.StatusOK)
			r := gormpurge(t, "purge", "--http-nodes", n.url, "--tags", "--tag-mode", tc.mode, "post-2", "post-1")
			require.Equal(t, exitOK, r.code, r.stderr)
			require.Len(t, n.requests(), 1)
			assert.True(t, strings.HasPrefix(n.requests()[0], tc.method+" "), n.requests())
			assert.Equal(t, tc.value, n.headers()[0].Get(tc.header))
			assert.Contains(t, r.stdout, "Purged 2 of 2 tags")
		})
	}
}

func TestPurgeHTTPMethodAndHeaders(t *testing.T) {
	t.Parallel()
	n := newCacheNode(t, http.StatusOK)
	r := gormpurge(t, "purge", "--http-nodes", n.url, "--method", "ban", "-H", "X-Purge-Token: s3cret", "https://www.example.com/a")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, []string{"BAN www.example.com /a"}, n.requests())
	assert.Equal(t, "s3cret", n.headers()[0].Get("X-Purge-Token"))
}

// A node that refuses purges (its ACL) fails the run, named.
func TestPurgeHTTPNodeRefuses(t *testing.T) {
	t.Parallel()
	ok, refusing := newCacheNode(t, http.StatusOK), newCacheNode(t, http.StatusMethodNotAllowed)
	r := gormpurge(t, "purge", "--http-nodes", ok.url, "--http-nodes", refusing.url, "https://www.example.com/a")
	require.Equal(t, exitFailed, r.code, r.stdout)
	assert.Equal(t, []string{"PURGE www.example.com /a"}, ok.requests())
	assert.Contains(t, r.stdout, "Not purged: 1 URL")
	assert.Contains(t, r.stdout, "node "+refusing.url)
	assert.Contains(t, r.stdout, "405")
	assert.Contains(t, r.stdout, "  https://www.example.com/a\n")
}

// Against a real Varnish (GORMPURGE_TEST_CACHES=1): a purged page is
// fetched again from the origin, and so is a page purged by its xkey tag.
func TestPurgeVarnish(t *testing.T) {
	t.Parallel()
	cachetest.Require(t, cachetest.Varnish)
	origin := cachetest.StartOrigin(t, nil)
	c := cachetest.Start(t, cachetest.Varnish, origin)
	const host = "www.example.test"
	for _, p := range []string{"/a", "/b?tags=news"} {
		c.Get(t, host, p)
		require.True(t, c.Get(t, host, p).Hit, "%s is cached", p)
	}

	r := gormpurge(t, "purge", "--http-nodes", c.URL, "--site-host", host, "/a")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.False(t, c.Get(t, host, "/a").Hit, "/a was purged")
	assert.True(t, c.Get(t, host, "/b?tags=news").Hit, "/b was not")

	r = gormpurge(t, "purge", "--http-nodes", c.URL, "--tags", "news")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.False(t, c.Get(t, host, "/b?tags=news").Hit, "/b was purged by its tag")
}

// refusingNode returns the base URL of a port nothing listens on.
func refusingNode(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr
}

// When every node refuses connections, the run fails at once, before
// sending anything and without retrying, naming the nodes with a hint.
func TestPurgeHTTPAllNodesRefuse(t *testing.T) {
	t.Parallel()
	a, b := refusingNode(t), refusingNode(t)
	r := gormpurge(t, "purge", "--http-nodes", a+","+b, "https://www.example.test/a")
	require.Equal(t, exitFailed, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	assert.Equal(t, "gormpurge: no HTTP cache node accepts connections; nothing was sent:\n"+
		"  "+a+": connection refused\n"+
		"  "+b+": connection refused\n"+
		"check the addresses and ports in --http-nodes, and that each node (its firewall, its ACL) lets this host connect\n", r.stderr)
	assert.Empty(t, r.stdout)
}

// When only some nodes refuse connections, the others are purged, and the
// summary names the one that refused.
func TestPurgeHTTPSomeNodesRefuse(t *testing.T) {
	t.Parallel()
	ok, refusing := newCacheNode(t, http.StatusOK), refusingNode(t)
	r := gormpurge(t, "purge", "--max-attempts", "1", "--http-nodes", ok.url+","+refusing, "https://www.example.test/a")
	require.Equal(t, exitFailed, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	assert.Equal(t, []string{"PURGE www.example.test /a"}, ok.requests())
	assert.Contains(t, r.stdout, "Not purged: 1 URL")
	assert.Contains(t, r.stdout, refusing)
}

// A dry run to HTTP caches shows the Host header each URL is purged with:
// its own host, or each --site-host for a path.
func TestPurgeHTTPDryRunShowsHosts(t *testing.T) {
	t.Parallel()
	n := newCacheNode(t, http.StatusOK)
	args := []string{"purge", "--http-nodes", n.url, "--site-host", "www.example.test,example.test", "--dry-run",
		"/posts/1", "https://other.example.test:8080/feed"}
	r := gormpurge(t, args...)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "Dry run: nothing was sent.\n"+
		"Would purge 2 URLs with httppurge (PURGE to 1 node: "+n.url+"), in 3 requests to each node:\n"+
		"  /posts/1  (Host: www.example.test, example.test)\n"+
		"  https://other.example.test:8080/feed  (Host: other.example.test:8080)\n", r.stdout)

	r = gormpurge(t, append(args, "--json")...)
	require.Equal(t, exitOK, r.code, r.stderr)
	var got struct{ Hosts map[string][]string }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
	assert.Equal(t, map[string][]string{
		"/posts/1":                             {"www.example.test", "example.test"},
		"https://other.example.test:8080/feed": {"other.example.test:8080"},
	}, got.Hosts)
	assert.Empty(t, n.requests(), "nothing was sent")
}

// pathList returns n paths /p/000, /p/001, ... one per line.
func pathList(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "/p/%03d\n", i)
	}
	return b.String()
}

// A chunk of 100 paths on 4 site hosts is sent in 4 batches of 25 paths;
// when one of them fails, exactly its 25 paths are not purged, and the
// other 75 are.
func TestPurgeAccountsPerBatch(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/p/000" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	h := harness{stdin: pathList(100)}
	r := h.run(t, "purge", "--http-nodes", srv.URL, "--max-attempts", "1", "--json",
		"--site-host", "a.example.test,b.example.test,c.example.test,d.example.test", "-")
	require.Equal(t, exitFailed, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"purged": 75,`)
	assert.Contains(t, r.stdout, `"failed": 25,`)
	assert.Contains(t, r.stdout, `"object": "/p/000"`)
	assert.Contains(t, r.stdout, `"object": "/p/024"`)
	assert.NotContains(t, r.stdout, `"object": "/p/025"`)
}

func TestHTTPBatchObjects(t *testing.T) {
	t.Parallel()
	assert.Equal(t, 100, httpBatchObjects(0))
	assert.Equal(t, 100, httpBatchObjects(1))
	assert.Equal(t, 33, httpBatchObjects(3))
	assert.Equal(t, 1, httpBatchObjects(500))
}

// hangingNode answers nothing until the request's context ends.
func hangingNode(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

// --request-timeout bounds each request, --attempt-timeout each batch.
func TestPurgeHTTPTimeouts(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--request-timeout", "50ms"},
		{"--attempt-timeout", "50ms"},
	} {
		t.Run(args[0], func(t *testing.T) {
			t.Parallel()
			node, n := hangingNode(t)
			r := gormpurge(t, append([]string{"purge", "--http-nodes", node, "--max-attempts", "1", "https://www.example.test/a"}, args...)...)
			require.Equal(t, exitFailed, r.code, r.stdout)
			assert.Contains(t, r.stdout, "Not purged: 1 URL")
			assert.Equal(t, int64(1), n.Load())
		})
	}
}

func TestPurgeHTTPFlagErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ args []string }{
		{[]string{"--node-concurrency", "0"}},
		{[]string{"--node-concurrency", "100000"}},
		{[]string{"--request-timeout", "0s"}},
		{[]string{"--attempt-timeout", "-1s"}},
	} {
		r := gormpurge(t, append([]string{"purge", "--http-nodes", "127.0.0.1:1", "https://www.example.test/a"}, tc.args...)...)
		assert.Equal(t, exitUsage, r.code, tc.args)
		assert.Contains(t, r.stderr, tc.args[0], tc.args)
	}
	r := gormpurge(t, "purge", "--akamai", "--node-concurrency", "2", "https://www.example.test/a")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "--node-concurrency does not apply to Akamai")
}

// Scheme and host are case-insensitive: they are sent lowercased, and
// equal URLs merge; so do --site-host values.
func TestPurgeLowercasesHosts(t *testing.T) {
	t.Parallel()
	n := newCacheNode(t, http.StatusOK)
	r := gormpurge(t, "purge", "--http-nodes", n.url, "--site-host", "WWW.Example.TEST,www.example.test",
		"HTTP://WWW.EXAMPLE.TEST/e", "http://www.example.test/e", "HTTPS://Other.Example.TEST/Path", "/p")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, []string{
		"PURGE other.example.test /Path",
		"PURGE www.example.test /e",
		"PURGE www.example.test /p",
	}, n.requests())
	assert.Contains(t, r.stdout, "Purged 3 of 3 URLs")
	assert.Contains(t, r.stdout, "1 duplicate ignored")
}

// A node that purged in an earlier attempt of a retried batch is counted.
func TestPurgeHTTPNodeCountsAfterRetry(t *testing.T) {
	t.Parallel()
	ok := newCacheNode(t, http.StatusOK)
	var calls atomic.Int64
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(flaky.Close)
	r := gormpurge(t, "purge", "--http-nodes", ok.url+","+flaky.URL, "https://www.example.test/a")
	require.Equal(t, exitOK, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	assert.Equal(t, int64(2), calls.Load())
	assert.Len(t, ok.requests(), 1, "the node that purged is not asked again")
	assert.Contains(t, r.stdout, ok.url+": 1 purged, 0 not cached")
	assert.Contains(t, r.stdout, flaky.URL+": 1 purged, 0 not cached")
}
