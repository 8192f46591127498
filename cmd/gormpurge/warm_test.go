package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWarmConcurrencyBounded(t *testing.T) {
	t.Parallel()
	for _, n := range []string{"0", "1025", "100000000000"} {
		r := gormpurge(t, "warm", "--concurrency", n, "https://www.example.test/a")
		assert.Equal(t, exitUsage, r.code, n)
		assert.Contains(t, r.stderr, "--concurrency", n)
	}
}

// site is an origin that counts the fetches of each path and keeps the
// headers of the last one.
type site struct {
	url  string
	mu   sync.Mutex
	hits map[string]int
	last map[string]*http.Request
}

func newSite(t *testing.T) *site {
	t.Helper()
	s := &site{hits: map[string]int{}, last: map[string]*http.Request{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.RequestURI()]++
		s.last[r.URL.RequestURI()] = r.Clone(r.Context())
		s.mu.Unlock()
		switch r.URL.Path {
		case "/broken":
			http.Error(w, "boom", http.StatusInternalServerError)
		case "/moved":
			http.Redirect(w, r, "/", http.StatusMovedPermanently)
		default:
			w.Header().Set("X-Cache", "MISS")
			_, _ = w.Write([]byte("<html>page</html>"))
		}
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *site) hitCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.hits))
	for k, v := range s.hits {
		out[k] = v
	}
	return out
}

func (s *site) request(path string) *http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[path]
}

// Each page is fetched once, duplicates included, with the credentials
// and headers asked for; the summary counts the statuses.
func TestWarm(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	file := filepath.Join(t.TempDir(), "paths.txt")
	require.NoError(t, os.WriteFile(file, []byte("# warm after the import\n/a\n/b\n\n/a\n"), 0o600))

	r := gormpurge(t, "warm", "--base-url", s.url, "--file", file, "--concurrency", "2",
		"--basic-auth", "warmup:s3cret", "-H", "Accept-Language: de", "--host", "www.example.com",
		s.url+"/c")
	require.Equal(t, exitOK, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	assert.Equal(t, map[string]int{"/a": 1, "/b": 1, "/c": 1}, s.hitCounts())
	req := s.request("/a")
	require.NotNil(t, req)
	user, pass, ok := req.BasicAuth()
	assert.True(t, ok)
	assert.Equal(t, "warmup", user)
	assert.Equal(t, "s3cret", pass)
	assert.Equal(t, "de", req.Header.Get("Accept-Language"))
	assert.Equal(t, "www.example.com", req.Host)
	assert.Equal(t, "gormpurge-warm/1", req.Header.Get("User-Agent"))
	assert.Regexp(t, `^3 URLs: 3 OK, 0 failed; p50 \S+ p95 \S+ max \S+ in \S+\nStatus codes:\n  200    3\n$`, r.stdout)
	assert.Empty(t, r.stderr)
}

// A page that answers 500, or a redirect, fails the run with status 1, and
// is listed.
func TestWarmFailures(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	r := gormpurge(t, "warm", "--base-url", s.url, "/ok", "/broken", "/moved")
	require.Equal(t, exitFailed, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	assert.Equal(t, map[string]int{"/ok": 1, "/broken": 1, "/moved": 1}, s.hitCounts(), "the redirect was not followed")
	assert.Contains(t, r.stdout, "3 URLs: 1 OK, 2 failed (301×1, 500×1)")
	assert.Contains(t, r.stdout, "Status codes:\n  200    1\n  301    1\n  500    1\n")
	assert.Contains(t, r.stdout, "Not warmed: 2 pages\n  500    /broken\n  301    /moved\n")
	assert.Contains(t, r.stderr, "gormpurge: 2 of 3 pages not warmed")
}

// A page that cannot be reached is an error, with the cause.
func TestWarmUnreachable(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	r := gormpurge(t, "warm", s.url+"/ok", deadURL+"/gone")
	require.Equal(t, exitFailed, r.code)
	assert.Contains(t, r.stdout, "(error×1)")
	assert.Contains(t, r.stdout, "  error  "+deadURL+"/gone: ")
}

func TestWarmJSON(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	r := harness{stdin: "/a\n/broken\n"}.run(t, "warm", "--base-url", s.url, "--json", "-")
	require.Equal(t, exitFailed, r.code, r.stderr)
	var got warmReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
	assert.Equal(t, 2, got.URLs)
	assert.Equal(t, 1, got.OK)
	assert.Equal(t, 1, got.Failed)
	assert.Equal(t, map[string]int{"200": 1, "500": 1}, got.ByStatus)
	require.Len(t, got.Results, 2)
	for _, res := range got.Results {
		switch res.URL {
		case "/a":
			assert.Equal(t, 200, res.Status)
			assert.Equal(t, "MISS", res.Cache)
			assert.Equal(t, int64(len("<html>page</html>")), res.Bytes)
		case "/broken":
			assert.Equal(t, 500, res.Status)
		default:
			t.Errorf("unexpected result %+v", res)
		}
	}
	assert.Greater(t, got.Timings.Max, 0.0)
}

// --basic-auth USER takes the password from the environment, so that it
// stays out of the process list.
func TestWarmPasswordFromEnvironment(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	h := harness{vars: map[string]string{passwordEnv: "from-env"}}
	r := h.run(t, "warm", "-u", "warmup", s.url+"/a")
	require.Equal(t, exitUsage, r.code, "credentials go only to the --base-url site")
	assert.Contains(t, r.stderr, "--basic-auth needs --base-url")
	assert.NotContains(t, r.stderr, "from-env")
	r = h.run(t, "warm", "-u", "warmup", "--base-url", s.url, s.url+"/a")
	require.Equal(t, exitOK, r.code, r.stderr)
	_, pass, ok := s.request("/a").BasicAuth()
	assert.True(t, ok)
	assert.Equal(t, "from-env", pass)
}

func TestWarmInvalidInputs(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	r := gormpurge(t, "warm", s.url+"/a", "/path-without-base", "mailto:x@example.com")
	require.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, `argument 2: "/path-without-base": a path: set --base-url`)
	assert.Contains(t, r.stderr, `argument 3: "REDACTED@example.com"`, "what comes before an @ may be a credential")
	assert.Empty(t, s.hitCounts())

	r = gormpurge(t, "warm", "--skip-invalid", s.url+"/a", "/path-without-base")
	require.Equal(t, exitFailed, r.code)
	assert.Equal(t, map[string]int{"/a": 1}, s.hitCounts())
	assert.Contains(t, r.stdout, "Skipped 1 invalid input (--skip-invalid):\n  argument 2:")
}

func TestWarmProgressBar(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	var stdin []byte
	for i := range 60 {
		stdin = append(stdin, []byte("/page/"+string(rune('a'+i%26))+string(rune('a'+i/26))+"\n")...)
	}
	r := harness{stdin: string(stdin), terminal: true}.run(t, "warm", "--base-url", s.url, "-")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stderr, "warming")
	assert.Contains(t, r.stderr, "60/60")
}

// One page is "1 URL" and "1 page", not "1 URLs".
func TestWarmOnePageSingular(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	r := gormpurge(t, "warm", s.url+"/broken")
	require.Equal(t, exitFailed, r.code, r.stderr)
	assert.Regexp(t, `^1 URL: 0 OK, 1 failed \(500×1\)`, r.stdout)
	assert.Contains(t, r.stdout, "Not warmed: 1 page\n")
	assert.Equal(t, "gormpurge: 1 of 1 page not warmed\n", r.stderr)
}
