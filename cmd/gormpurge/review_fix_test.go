package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/akamai"
)

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

// URLs are purged in the library's canonical form (backends.CanonicalURL):
// scheme and host lowercased, fragments and default ports dropped, path and
// query encoded as browsers send them.
func TestURLsTakeTheCanonicalForm(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"HTTP://WWW.EXAMPLE.TEST/E?Q=A#F":            "http://www.example.test/E?Q=A",
		"https://Example.COM:8443":                   "https://example.com:8443/",
		"Https://x.test?A":                           "https://x.test/?A",
		"https://x.test:443/caf\u00e9?q=%c3":         "https://x.test/caf%C3%A9?q=%C3",
		"https://B\u00fccher.example/tags/go%2ffeed": "https://xn--bcher-kva.example/tags/go%2Ffeed",
		"/Path": "/Path",
	} {
		got, err := checkURL(pathsAllowed, "")(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
}

// Passwords in URLs and header values are never printed.
func TestSecretsRedacted(t *testing.T) {
	t.Parallel()
	n := newCacheNode(t, http.StatusOK)
	r := gormpurge(t, "purge", "--http-nodes", n.url, "https://user:hunter2@www.example.test/a", "http://u:hunter2@bad host/")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "https://REDACTED@www.example.test/a")
	assert.NotContains(t, r.stderr+r.stdout, "hunter2")

	for _, h := range []string{"X-Token hunter2", "X-Token: hunter2\x01", "Bad Name: hunter2", ": hunter2"} {
		r = gormpurge(t, "purge", "--http-nodes", n.url, "-H", h, "https://www.example.test/a")
		assert.Equal(t, exitUsage, r.code, h)
		assert.Contains(t, r.stderr, "--header", h)
		assert.NotContains(t, r.stderr, "hunter2", h)
	}
	r = gormpurge(t, "warm", "-H", "X-Token: hunter2\x7f", "https://www.example.test/a")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "--header X-Token")
	assert.NotContains(t, r.stderr, "hunter2")

	for _, base := range []string{"http://user:hunter2@www.example.test:bad/", "ftp://user:hunter2@www.example.test/"} {
		r = gormpurge(t, "warm", "--base-url", base, "/a")
		assert.NotEqual(t, exitOK, r.code, base)
		assert.NotContains(t, r.stderr+r.stdout, "hunter2", base)
	}
	r = harness{}.run(t, "warm", "https://user:hunter2@www.example.test/a")
	assert.Equal(t, exitUsage, r.code)
	assert.NotContains(t, r.stderr, "hunter2")
	assert.Empty(t, n.requests(), "nothing was sent")

	// A node's password never reaches the summary or the errors.
	node := "http://op:hunter2@" + strings.TrimPrefix(n.url, "http://")
	r = gormpurge(t, "purge", "--http-nodes", node, "--site-host", "www.example.test", "/a")
	assert.NotContains(t, r.stderr+r.stdout, "hunter2", "exit %d", r.code)
}

// --cpcodes retries a temporary failure, and --max-attempts bounds it.
func TestPurgeCPCodesRetries(t *testing.T) {
	t.Parallel()
	f := newFakeAkamai(t)
	f.srv.FailNext(http.StatusServiceUnavailable, 1)
	r := f.purge(t, "", "--cpcodes", "123456")
	require.Equal(t, exitOK, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	assert.Equal(t, []string{"123456"}, f.srv.Objects(akamai.KindCPCode))
	assert.Equal(t, 1, f.srv.Responses()[http.StatusServiceUnavailable])
	assert.Contains(t, r.stderr, "retrying")
	assert.Contains(t, r.stdout, "Purged 1 of 1 CP code")

	f.srv.Reset()
	f.srv.FailNext(http.StatusServiceUnavailable, 1)
	r = f.purge(t, "", "--cpcodes", "--max-attempts", "1", "123456")
	require.Equal(t, exitFailed, r.code)
	assert.Empty(t, f.srv.Purges())
	assert.Contains(t, r.stdout, "503")
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

// panicReader panics when read.
type panicReader struct{}

func (panicReader) Read([]byte) (int, error) { panic("boom in stdin") }

// A panic exits with 1 and its message, not 2 ("nothing was sent").
func TestPanicExitsFailed(t *testing.T) {
	t.Parallel()
	var stdout, stderr strings.Builder
	code := runEnv(t.Context(), []string{"purge", "--http-nodes", "127.0.0.1:1", "--site-host", "www.example.test", "-"},
		&env{stdin: panicReader{}, stdout: &stdout, stderr: &stderr})
	assert.Equal(t, exitFailed, code)
	assert.Contains(t, stderr.String(), "gormpurge: internal error: boom in stdin")
}

func TestWarmConcurrencyBounded(t *testing.T) {
	t.Parallel()
	for _, n := range []string{"0", "1025", "100000000000"} {
		r := gormpurge(t, "warm", "--concurrency", n, "https://www.example.test/a")
		assert.Equal(t, exitUsage, r.code, n)
		assert.Contains(t, r.stderr, "--concurrency", n)
	}
}

func TestHelpDefaults(t *testing.T) {
	t.Parallel()
	r := gormpurge(t, "purge", "--help")
	require.Equal(t, exitOK, r.code)
	assert.NotContains(t, r.stdout, `(default "~/.edgerc")`)
	for _, f := range []string{"--attempt-timeout", "--request-timeout", "--node-concurrency"} {
		assert.Contains(t, r.stdout, f)
	}
	assert.NotContains(t, r.stdout, "every request")
	r = gormpurge(t, "purge", "--akamai-edgerc", "", "https://www.example.test/a")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "--akamai-edgerc")
}
