package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/fastly"
	"github.com/gormpurge/gormpurge/backends/fastly/fastlytest"
)

// fakeFastly is a fake Fastly API, with the variables that name its token
// and service.
type fakeFastly struct {
	srv  *fastlytest.Server
	vars map[string]string
}

func newFakeFastly(t *testing.T, opts ...fastlytest.Option) *fakeFastly {
	t.Helper()
	srv := fastlytest.NewServer(opts...)
	t.Cleanup(srv.Close)
	return &fakeFastly{srv: srv, vars: map[string]string{
		fastly.EnvAPIToken:  srv.Token(),
		fastly.EnvServiceID: srv.ServiceID(),
	}}
}

// purge runs "gormpurge purge --fastly --fastly-endpoint <fake> args..."
// with stdin, the token and service in the environment.
func (f *fakeFastly) purge(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	h := harness{stdin: stdin, httpClient: f.srv.Client(), vars: f.vars}
	return h.run(t, append([]string{"purge", "--fastly", "--fastly-endpoint", f.srv.URL()}, args...)...)
}

// Each URL reaches the fake once, as Fastly's cached URL (no scheme): a
// path on every --site-host, the http and https spellings of a page once.
func TestPurgeFastlyURLs(t *testing.T) {
	t.Parallel()
	f := newFakeFastly(t)
	r := f.purge(t, "", "--site-host", "www.example.com,example.com",
		"https://www.example.com/a", "http://www.example.com/a", "https://www.example.com/c?x=1", "/b")
	require.Equal(t, exitOK, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)

	assert.ElementsMatch(t, []string{
		"www.example.com/a", "www.example.com/c?x=1", "www.example.com/b", "example.com/b",
	}, f.srv.URLs())
	purges := f.srv.Purges()
	require.Len(t, purges, 4)
	for _, p := range purges {
		assert.False(t, p.Soft, p.URL)
		assert.Equal(t, fastlytest.KindURL, p.Kind)
	}
	assert.Contains(t, r.stdout, "Purged 4 of 4 URLs with fastly (hard purge on service "+f.srv.ServiceID()+"; paths on www.example.com, example.com)")
	assert.Contains(t, r.stdout, "Fastly accepted 4 purges:\n")
	for _, p := range purges {
		require.Len(t, p.IDs, 1)
		assert.Contains(t, r.stdout, "  "+p.URL+"  purge id "+p.IDs[0]+"\n")
	}
	assert.Empty(t, r.stderr)
}

// Tags go in batch surrogate-key purges of at most 256 keys; --fastly-soft
// makes every purge soft.
func TestPurgeFastlyTagsSoft(t *testing.T) {
	t.Parallel()
	f := newFakeFastly(t)
	var tags []string
	for i := range 300 {
		tags = append(tags, fmt.Sprintf("post-%d", i))
	}
	r := f.purge(t, "", append([]string{"--tags", "--fastly-soft"}, tags...)...)
	require.Equal(t, exitOK, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	assert.ElementsMatch(t, tags, f.srv.Keys())
	assert.Empty(t, f.srv.URLs())
	purges := f.srv.Purges()
	require.Len(t, purges, 2)
	for _, p := range purges {
		assert.True(t, p.Soft)
		assert.LessOrEqual(t, len(p.Keys), fastly.MaxKeysPerRequest)
		assert.Equal(t, f.srv.ServiceID(), p.ServiceID)
	}
	assert.Contains(t, r.stdout, "Purged 300 of 300 tags with fastly (soft purge (mark stale) on service "+f.srv.ServiceID()+")")
	assert.Contains(t, r.stdout, "Fastly accepted 300 purges:\n")
	assert.Contains(t, r.stdout, "... and 280 more (--json lists every one)")

	f.srv.Reset()
	r = f.purge(t, "", "https://www.example.com/a")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Len(t, f.srv.Purges(), 1)
	assert.False(t, f.srv.Purges()[0].Soft, "hard without --fastly-soft")
}

// A dry run sends nothing, and shows each URL as Fastly is sent it and
// the number of requests: one per cached URL, one per 256 tags.
func TestPurgeFastlyDryRun(t *testing.T) {
	t.Parallel()
	f := newFakeFastly(t)
	r := f.purge(t, "", "--dry-run", "--site-host", "www.example.com,example.com", "/a", "https://www.example.com/b", "http://www.example.com/a")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Empty(t, f.srv.Purges())
	assert.Empty(t, f.srv.Responses(), "nothing was sent")
	assert.Contains(t, r.stdout, "Dry run: nothing was sent.\nWould purge 3 URLs with fastly")
	assert.Contains(t, r.stdout, "in about 3 requests") // www/a (twice), example.com/a, www/b
	assert.Contains(t, r.stdout, "  /a  (sent as www.example.com/a, example.com/a)\n")
	assert.Contains(t, r.stdout, "  https://www.example.com/b  (sent as www.example.com/b)\n")

	tags := make([]string, 257)
	for i := range tags {
		tags[i] = fmt.Sprintf("t%d", i)
	}
	r = f.purge(t, "", append([]string{"--dry-run", "--json", "--tags"}, tags...)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	var got struct {
		Backend, Kind     string
		DryRun            bool
		List              []string
		SentAs            map[string][]string
		EstimatedRequests int
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
	assert.Equal(t, "fastly", got.Backend)
	assert.Equal(t, "tag", got.Kind)
	assert.True(t, got.DryRun)
	assert.Len(t, got.List, 257)
	assert.Empty(t, got.SentAs, "tags are sent as given")
	assert.Equal(t, 2, got.EstimatedRequests)
	assert.Empty(t, f.srv.Responses())
}

func TestPurgeFastlyJSON(t *testing.T) {
	t.Parallel()
	f := newFakeFastly(t)
	// The fake fails one URL for good.
	f.srv.Respond(func(c fastlytest.Call) (int, bool) {
		return 403, c.Path == "/purge/www.example.com/refused"
	})
	r := f.purge(t, "", "--json", "https://www.example.com/a", "https://www.example.com/refused")
	require.Equal(t, exitFailed, r.code, r.stderr)
	var got struct {
		Backend, Kind, Description string
		Objects, Purged, Failed    int
		Accepted                   []acceptedRequest
		Failures                   []failure
		Elapsed                    string
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
	assert.Equal(t, "fastly", got.Backend)
	assert.Equal(t, "url", got.Kind)
	assert.Equal(t, 2, got.Objects)
	assert.Equal(t, 1, got.Purged)
	assert.Equal(t, 1, got.Failed)
	purges := f.srv.Purges()
	require.Len(t, purges, 1)
	assert.Equal(t, []acceptedRequest{{ID: purges[0].IDs[0], Object: "www.example.com/a"}}, got.Accepted)
	require.Len(t, got.Failures, 1)
	assert.Equal(t, "https://www.example.com/refused", got.Failures[0].Object)
	assert.Contains(t, got.Failures[0].Error, "fastly: purge url www.example.com/refused: 403", "the object's own failure")
	assert.NotContains(t, got.Failures[0].Error, "objects not purged", "not the batch's")
	assert.NotEmpty(t, got.Elapsed)
}

// A refused token, or an unknown service, fails at once, without retries
// (exit status 1); the token is never printed.
func TestPurgeFastlyBadCredentials(t *testing.T) {
	t.Parallel()
	f := newFakeFastly(t)
	f.vars[fastly.EnvAPIToken] = "wrong-" + secret
	r := f.purge(t, "", "https://www.example.com/a")
	require.Equal(t, exitFailed, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	assert.Empty(t, f.srv.Purges())
	assert.Equal(t, map[int]int{401: 1}, f.srv.Responses(), "permanent: not retried")
	assert.Contains(t, r.stdout, "Not purged: 1 URL")
	assert.Contains(t, r.stdout, "the API token was refused")
	assert.Contains(t, r.stderr, "gormpurge: 1 of 1 URL not purged")
	assert.NotContains(t, r.stdout+r.stderr, secret)

	g := newFakeFastly(t)
	r = g.purge(t, "", "--fastly-service", "NoSuchService", "--tags", "a", "b")
	require.Equal(t, exitFailed, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	assert.Empty(t, g.srv.Purges())
	assert.Equal(t, map[int]int{404: 1}, g.srv.Responses(), "permanent: not retried")
	assert.Contains(t, r.stdout, "Not purged: 2 tags")
	assert.Contains(t, r.stdout, "no such service")
}

// --fastly-token-file and --fastly-service stand for the variables.
func TestPurgeFastlyTokenFile(t *testing.T) {
	t.Parallel()
	f := newFakeFastly(t)
	h := harness{httpClient: f.srv.Client()} // no variables
	r := h.run(t, "purge", "--fastly-service", f.srv.ServiceID(), "--fastly-token-file", tokenFile(t, f.srv.Token()+"\r\n"),
		"--fastly-endpoint", f.srv.URL(), "--tags", "post-1")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, []string{"post-1"}, f.srv.Keys())
}

// Missing or wrong configuration is a usage error naming the flag or the
// variable at fault; nothing is sent.
func TestPurgeFastlyConfigErrors(t *testing.T) {
	t.Parallel()
	f := newFakeFastly(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	token, service := f.srv.Token(), f.srv.ServiceID()
	for _, tc := range []struct {
		name string
		vars map[string]string
		args []string
		want []string
	}{
		{"nothing set", nil, []string{"--fastly"},
			[]string{"no Fastly service: set FASTLY_SERVICE_ID, or pass --fastly-service ID", "no API token: set FASTLY_API_TOKEN, or pass --fastly-token-file FILE"}},
		{"no token", map[string]string{fastly.EnvServiceID: service}, []string{"--fastly"},
			[]string{"set FASTLY_API_TOKEN, or pass --fastly-token-file FILE"}},
		{"no service", map[string]string{fastly.EnvAPIToken: token}, []string{"--fastly"},
			[]string{"set FASTLY_SERVICE_ID, or pass --fastly-service ID"}},
		{"service variable", map[string]string{fastly.EnvAPIToken: token, fastly.EnvServiceID: "my service"}, []string{"--fastly"},
			[]string{`FASTLY_SERVICE_ID: "my service": want the service's alphanumeric ID`}},
		{"service flag", map[string]string{fastly.EnvAPIToken: token}, []string{"--fastly-service", "a/b"},
			[]string{`--fastly-service: "a/b"`}},
		{"token variable", map[string]string{fastly.EnvAPIToken: " x", fastly.EnvServiceID: service}, []string{"--fastly"},
			[]string{"FASTLY_API_TOKEN: the token (2 bytes) has leading or trailing white space"}},
		{"token file missing", map[string]string{fastly.EnvServiceID: service}, []string{"--fastly-token-file", filepath.Join(dir, "nope")},
			[]string{"--fastly-token-file: open", "no such file"}},
		{"token file empty", map[string]string{fastly.EnvServiceID: service}, []string{"--fastly-token-file", empty},
			[]string{"--fastly-token-file " + empty + ": the file is empty"}},
		{"concurrency", f.vars, []string{"--fastly", "--fastly-concurrency", "0"},
			[]string{"--fastly-concurrency 0: need 1 to 64"}},
		{"endpoint", f.vars, []string{"--fastly", "--fastly-endpoint", "api.fastly.com"},
			[]string{`--fastly-endpoint: "api.fastly.com"`}},
		{"another backend's flag", f.vars, []string{"--fastly", "--cloudflare-plan", "free"},
			[]string{"--cloudflare-plan does not apply to Fastly"}},
		{"two backends", f.vars, []string{"--fastly", "--cloudflare"},
			[]string{"choose one backend"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := harness{httpClient: f.srv.Client(), vars: tc.vars}
			r := h.run(t, append(append([]string{"purge"}, tc.args...), "https://www.example.com/a")...)
			assert.Equal(t, exitUsage, r.code, r.stderr)
			for _, w := range tc.want {
				assert.Contains(t, r.stderr, w)
			}
			assert.NotContains(t, r.stderr, token)
		})
	}
	assert.Empty(t, f.srv.Responses(), "nothing was sent")
}

func TestPurgeFastlyHelp(t *testing.T) {
	t.Parallel()
	r := gormpurge(t, "purge", "--help")
	require.Equal(t, exitOK, r.code)
	for _, want := range []string{"Fastly:", "--fastly ", "--fastly-service ID", "--fastly-token-file FILE",
		"--fastly-soft", "--fastly-concurrency N", "--fastly-endpoint URL", "FASTLY_API_TOKEN", "FASTLY_SERVICE_ID"} {
		assert.Contains(t, r.stdout, want)
	}
}
