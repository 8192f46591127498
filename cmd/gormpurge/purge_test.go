package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/akamai"
	"github.com/gormpurge/gormpurge/backends/akamai/akamaitest"
	"github.com/gormpurge/gormpurge/internal/cachetest"
)

// fakeAkamai is a fake Fast Purge API with an .edgerc file for it.
type fakeAkamai struct {
	srv    *akamaitest.Server
	edgerc string
}

func newFakeAkamai(t *testing.T, opts ...akamaitest.Option) *fakeAkamai {
	t.Helper()
	srv := akamaitest.NewServer(opts...)
	t.Cleanup(srv.Close)
	edgerc := filepath.Join(t.TempDir(), ".edgerc")
	require.NoError(t, srv.WriteEdgerc(edgerc, "ccu"))
	return &fakeAkamai{srv: srv, edgerc: edgerc}
}

// purge runs "gormpurge purge --akamai-edgerc <file> args..." with stdin.
func (f *fakeAkamai) purge(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	h := harness{stdin: stdin, httpClient: f.srv.Client()}
	return h.run(t, append([]string{"purge", "--akamai-edgerc", f.edgerc}, args...)...)
}

func TestPurgeAkamaiURLs(t *testing.T) {
	t.Parallel()
	f := newFakeAkamai(t, akamaitest.WithAuthorizedHosts("www.example.com"))
	r := f.purge(t, "", "https://www.example.com/a", "http://www.example.com/b", "https://www.example.com/a")
	require.Equal(t, exitOK, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)

	assert.ElementsMatch(t, []string{"https://www.example.com/a", "https://www.example.com/b"}, f.srv.Objects(akamai.KindURL))
	purges := f.srv.Purges()
	require.Len(t, purges, 1, "one request for both")
	assert.Equal(t, akamai.Invalidate, purges[0].Action)
	assert.Equal(t, akamai.Production, purges[0].Network)
	assert.Contains(t, r.stdout, "Purged 2 of 2 URLs with akamai (invalidate on production)")
	assert.Contains(t, r.stdout, "1 duplicate ignored")
	assert.Contains(t, r.stdout, "Akamai accepted 1 request; done in about 5s")
	assert.Contains(t, r.stdout, "purgeId "+purges[0].PurgeID)
	assert.Empty(t, r.stderr)
}

func TestPurgeAkamaiStagingDelete(t *testing.T) {
	t.Parallel()
	f := newFakeAkamai(t)
	r := f.purge(t, "", "--network", "staging", "--action", "delete", "https://www.example.com/a")
	require.Equal(t, exitOK, r.code, r.stderr)
	purges := f.srv.Purges()
	require.Len(t, purges, 1)
	assert.Equal(t, akamai.Delete, purges[0].Action)
	assert.Equal(t, akamai.Staging, purges[0].Network)
	assert.Contains(t, r.stdout, "with akamai-staging (delete on staging)")
}

// Paths read from stdin are purged on every --site-host.
func TestPurgeAkamaiPathsFromStdin(t *testing.T) {
	t.Parallel()
	f := newFakeAkamai(t)
	stdin := "# pages changed by the import\n\n/a\n   /b?page=2   \n# the end\n"
	r := f.purge(t, stdin, "--site-host", "www.example.com,example.com", "-")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.ElementsMatch(t, []string{
		"https://www.example.com/a", "https://example.com/a",
		"https://www.example.com/b?page=2", "https://example.com/b?page=2",
	}, f.srv.Objects(akamai.KindURL))
	assert.Contains(t, r.stdout, "Purged 2 of 2 URLs")
}

// Arguments, files and stdin add up; comments and blank lines are skipped.
func TestPurgeFromFilesAndStdin(t *testing.T) {
	t.Parallel()
	f := newFakeAkamai(t)
	file := filepath.Join(t.TempDir(), "urls.txt")
	require.NoError(t, os.WriteFile(file, []byte("\uFEFF# exported from the CMS\nhttps://www.example.com/from-file\n\n  # indented comment\nhttps://www.example.com/also-from-file\n"), 0o600))
	r := f.purge(t, "https://www.example.com/from-stdin\n", "--file", file, "--file", "-")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.ElementsMatch(t, []string{
		"https://www.example.com/from-file", "https://www.example.com/also-from-file", "https://www.example.com/from-stdin",
	}, f.srv.Objects(akamai.KindURL))
}

func TestPurgeAkamaiTags(t *testing.T) {
	t.Parallel()
	f := newFakeAkamai(t)
	r := f.purge(t, "", "--tags", "product-42", "category-7")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.ElementsMatch(t, []string{"product-42", "category-7"}, f.srv.Objects(akamai.KindTag))
	assert.Empty(t, f.srv.Objects(akamai.KindURL))
	assert.Contains(t, r.stdout, "Purged 2 of 2 tags")

	// A character Akamai refuses in a tag is caught before anything is sent.
	f.srv.Reset()
	r = f.purge(t, "", "--tags", "ok", "a/b")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, `argument 2: "a/b": character '/' is not allowed in an Akamai cache tag`)
	assert.Empty(t, f.srv.Purges())
}

func TestPurgeAkamaiCPCodes(t *testing.T) {
	t.Parallel()
	f := newFakeAkamai(t)
	r := f.purge(t, "", "--cpcodes", "123456", "234567", "123456")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.ElementsMatch(t, []string{"123456", "234567"}, f.srv.Objects(akamai.KindCPCode))
	purges := f.srv.Purges()
	require.Len(t, purges, 1)
	assert.Contains(t, r.stdout, "Purged 2 of 2 CP codes")
	assert.Contains(t, r.stdout, "purgeId "+purges[0].PurgeID)

	r = f.purge(t, "", "--cpcodes", "123456", "12a", "0")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "2 invalid inputs")
	assert.Contains(t, r.stderr, `argument 2: "12a": a CP code is a positive whole number`)
	assert.Contains(t, r.stderr, `argument 3: "0"`)
	assert.Len(t, f.srv.Purges(), 1, "nothing more was sent")
}

// A URL on a host the API client may not purge fails, named with Akamai's
// reason; the others are purged, and the exit status is 1.
func TestPurgeAkamaiUnauthorizedHost(t *testing.T) {
	t.Parallel()
	f := newFakeAkamai(t, akamaitest.WithAuthorizedHosts("www.example.com"))
	r := f.purge(t, "", "https://www.example.com/ok", "https://other.example.com/refused")
	require.Equal(t, exitFailed, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	assert.Equal(t, []string{"https://www.example.com/ok"}, f.srv.Objects(akamai.KindURL))
	assert.Contains(t, r.stdout, "Purged 1 of 2 URLs")
	assert.Contains(t, r.stdout, "Not purged: 1 URL")
	assert.Regexp(t, `(?s)403.*unauthorized arl.*\n    https://other\.example\.com/refused\n`, r.stdout)
	assert.Contains(t, r.stderr, "gormpurge: 1 of 2 URLs not purged")
}

// A temporary failure is retried; --max-attempts 1 makes it final.
func TestPurgeAkamaiRetries(t *testing.T) {
	t.Parallel()
	f := newFakeAkamai(t)
	f.srv.FailNext(http.StatusServiceUnavailable, 1)
	r := f.purge(t, "", "https://www.example.com/a")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, []string{"https://www.example.com/a"}, f.srv.Objects(akamai.KindURL))
	assert.Equal(t, 1, f.srv.Responses()[http.StatusServiceUnavailable])
	assert.Contains(t, r.stderr, "retry", "the retry is logged at Warn")

	f.srv.Reset()
	f.srv.FailNext(http.StatusServiceUnavailable, 1)
	r = f.purge(t, "", "--max-attempts", "1", "https://www.example.com/a")
	require.Equal(t, exitFailed, r.code)
	assert.Empty(t, f.srv.Purges())
	assert.Contains(t, r.stdout, "Not purged: 1 URL")
	assert.Contains(t, r.stdout, "503")
}

func TestPurgeAkamaiJSON(t *testing.T) {
	t.Parallel()
	f := newFakeAkamai(t, akamaitest.WithAuthorizedHosts("www.example.com"))
	r := f.purge(t, "", "--json", "https://www.example.com/a", "https://other.example.com/b")
	require.Equal(t, exitFailed, r.code, r.stderr)
	var got struct {
		Backend, Kind            string
		Objects, Purged, Failed  int
		AkamaiRequests           []akamaiRequest
		EstimatedSeconds         float64
		Failures                 []failure
		Elapsed                  string
		DryRun                   bool
		Duplicates, EstimatedReq int
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
	assert.Equal(t, "akamai", got.Backend)
	assert.Equal(t, "url", got.Kind)
	assert.Equal(t, 2, got.Objects)
	assert.Equal(t, 1, got.Purged)
	assert.Equal(t, 1, got.Failed)
	require.Len(t, got.AkamaiRequests, 1)
	assert.Equal(t, f.srv.Purges()[0].PurgeID, got.AkamaiRequests[0].PurgeID)
	assert.Equal(t, f.srv.Purges()[0].SupportID, got.AkamaiRequests[0].SupportID)
	assert.Equal(t, 5.0, got.EstimatedSeconds)
	require.Len(t, got.Failures, 1)
	assert.Equal(t, "https://other.example.com/b", got.Failures[0].Object)
	assert.Contains(t, got.Failures[0].Error, "unauthorized arl")
	assert.NotEmpty(t, got.Elapsed)
}

// --dry-run checks and prints, and sends nothing.
func TestPurgeDryRun(t *testing.T) {
	t.Parallel()
	f := newFakeAkamai(t)
	r := f.purge(t, "", "--dry-run", "https://www.example.com/b", "https://www.example.com/a")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Empty(t, f.srv.Responses(), "nothing reached the API")
	assert.Equal(t, "Dry run: nothing was sent.\n"+
		"Would purge 2 URLs with akamai (invalidate on production), in about 1 request:\n"+
		"  https://www.example.com/a\n  https://www.example.com/b\n", r.stdout)

	// Many URLs take several requests, and the JSON form lists them all.
	var urls strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&urls, "https://www.example.com/articles/%05d/a-rather-long-slug-for-this-article\n", i)
	}
	r = f.purge(t, urls.String(), "--dry-run", "--json", "-")
	require.Equal(t, exitOK, r.code, r.stderr)
	var got struct {
		DryRun            bool
		Objects           int
		List              []string
		EstimatedRequests int
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	assert.True(t, got.DryRun)
	assert.Equal(t, 3000, got.Objects)
	assert.Len(t, got.List, 3000)
	bytes := len(urls.String()) // about the JSON body size
	assert.GreaterOrEqual(t, got.EstimatedRequests, bytes/akamai.MaxBodyBytes+1)
	assert.LessOrEqual(t, got.EstimatedRequests, bytes/akamai.MaxBodyBytes+2)
	assert.Empty(t, f.srv.Responses())
}

// One invalid input refuses the run, naming it by file and line;
// --skip-invalid purges the rest and exits with 1.
func TestPurgeInvalidInputs(t *testing.T) {
	t.Parallel()
	f := newFakeAkamai(t)
	file := filepath.Join(t.TempDir(), "urls.txt")
	require.NoError(t, os.WriteFile(file, []byte("https://www.example.com/a\n# ok so far\nwww.example.com/no-scheme\n/a-path\nhttps://www.example.com/b c\n"), 0o600))

	r := f.purge(t, "", "--file", file)
	require.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "3 invalid inputs; nothing was sent")
	assert.Contains(t, r.stderr, file+`:3: "www.example.com/no-scheme": want an absolute http(s) URL or a path beginning with "/"`)
	assert.Contains(t, r.stderr, file+`:4: "/a-path": a path: name the site's hosts with --site-host`)
	assert.Contains(t, r.stderr, file+`:5: "https://www.example.com/b c": holds white space`)
	assert.Empty(t, f.srv.Responses())

	r = f.purge(t, "", "--skip-invalid", "--file", file)
	require.Equal(t, exitFailed, r.code)
	assert.Equal(t, []string{"https://www.example.com/a"}, f.srv.Objects(akamai.KindURL))
	assert.Contains(t, r.stdout, "Purged 1 of 1 URL")
	assert.Contains(t, r.stdout, "Skipped 3 invalid inputs (--skip-invalid):\n  "+file+":3:")
	assert.Contains(t, r.stderr, "3 invalid inputs skipped")
}

// Ctrl-C while a batch waits to be retried: what is left is reported as
// not purged, and the exit status is 130.
func TestPurgeInterrupted(t *testing.T) {
	t.Parallel()
	f := newFakeAkamai(t)
	ctx, interrupt := context.WithCancel(t.Context())
	defer interrupt()
	f.srv.Respond(func(akamaitest.Call) (int, bool) {
		interrupt() // as Ctrl-C during the first request
		return http.StatusServiceUnavailable, true
	})
	h := harness{ctx: ctx, httpClient: f.srv.Client()}
	r := h.run(t, "purge", "--akamai-edgerc", f.edgerc, "https://www.example.com/a", "https://www.example.com/b")
	assert.Equal(t, exitInterrupted, r.code)
	assert.Empty(t, f.srv.Purges())
	assert.Contains(t, r.stdout, "Purged 0 of 2 URLs")
	assert.Contains(t, r.stdout, "Not purged: 2 URLs\n  not purged: interrupted:\n    https://www.example.com/a\n")
	assert.Contains(t, r.stderr, "gormpurge: interrupted")
}

// What --timeout leaves unpurged is reported as such.
func TestPurgeTimeout(t *testing.T) {
	t.Parallel()
	f := newFakeAkamai(t)
	r := f.purge(t, "", "--timeout", "1ns", "https://www.example.com/a")
	assert.Equal(t, exitFailed, r.code)
	assert.Contains(t, r.stdout, "not purged: --timeout 1ns ran out:\n    https://www.example.com/a\n")
}

// --akamai reads the credentials from AKAMAI_CCU_* variables.
func TestPurgeAkamaiFromEnvironment(t *testing.T) {
	f := newFakeAkamai(t)
	c := f.srv.Credentials()
	t.Setenv("HOME", t.TempDir()) // no ~/.edgerc
	t.Setenv("AKAMAI_CCU_HOST", c.Host)
	t.Setenv("AKAMAI_CCU_CLIENT_TOKEN", c.ClientToken)
	t.Setenv("AKAMAI_CCU_CLIENT_SECRET", c.ClientSecret)
	t.Setenv("AKAMAI_CCU_ACCESS_TOKEN", c.AccessToken)
	r := harness{httpClient: f.srv.Client()}.run(t, "purge", "--akamai", "https://www.example.com/a")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, []string{"https://www.example.com/a"}, f.srv.Objects(akamai.KindURL))
}

// On a terminal, a long list gets a progress bar on stderr.
func TestPurgeProgressBar(t *testing.T) {
	t.Parallel()
	f := newFakeAkamai(t)
	var urls strings.Builder
	for i := range 250 {
		fmt.Fprintf(&urls, "https://www.example.com/%d\n", i)
	}
	h := harness{stdin: urls.String(), httpClient: f.srv.Client(), terminal: true}
	r := h.run(t, "purge", "--akamai-edgerc", f.edgerc, "-")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Len(t, f.srv.Objects(akamai.KindURL), 250)
	assert.Contains(t, r.stderr, "purging")
	assert.Contains(t, r.stderr, "250/250")

	h.stdin = urls.String()
	r = h.run(t, "purge", "--akamai-edgerc", f.edgerc, "--no-progress", "-")
	require.Equal(t, exitOK, r.code)
	assert.Empty(t, r.stderr)
}

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

func TestCountBatches(t *testing.T) {
	t.Parallel()
	objs := make([]string, 25)
	for i := range objs {
		objs[i] = fmt.Sprintf("/%02d", i) // 3 bytes, 6 counted
	}
	assert.Equal(t, 3, countBatches(backends.Limits{MaxObjects: 10}, kindURLs, objs))
	assert.Equal(t, 1, countBatches(backends.Limits{}, kindURLs, objs))
	assert.Equal(t, 5, countBatches(backends.Limits{MaxBytes: 6 * 5}, kindURLs, objs))
	assert.Equal(t, 2, countBatches(backends.Limits{MaxTags: 20}, kindTags, objs))
	assert.Equal(t, 25, countBatches(backends.Limits{MaxBytes: 1}, kindURLs, objs), "an object too large is a batch of its own")
	assert.Equal(t, 0, countBatches(backends.Limits{}, kindURLs, nil))
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
