package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/cloudflare"
	"github.com/gormpurge/gormpurge/backends/cloudflare/cloudflaretest"
)

// fakeCloudflare is a fake purge_cache API, with the variables that name
// its token and zone.
type fakeCloudflare struct {
	srv  *cloudflaretest.Server
	vars map[string]string
}

func newFakeCloudflare(t *testing.T, opts ...cloudflaretest.Option) *fakeCloudflare {
	t.Helper()
	srv := cloudflaretest.NewServer(opts...)
	t.Cleanup(srv.Close)
	return &fakeCloudflare{srv: srv, vars: map[string]string{
		cloudflare.EnvAPIToken: srv.Token(),
		cloudflare.EnvZoneID:   srv.Zone(),
	}}
}

// purge runs "gormpurge purge --cloudflare --cloudflare-endpoint <fake>
// args..." with stdin, the token and zone in the environment.
func (f *fakeCloudflare) purge(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	h := harness{stdin: stdin, httpClient: f.srv.Client(), vars: f.vars}
	return h.run(t, append([]string{"purge", "--cloudflare", "--cloudflare-endpoint", f.srv.Endpoint()}, args...)...)
}

// URLs and paths reach the fake exactly, in one request: each path on
// every --site-host, as an https URL.
func TestPurgeCloudflareURLs(t *testing.T) {
	t.Parallel()
	f := newFakeCloudflare(t)
	r := f.purge(t, "", "--site-host", "www.example.com,example.com",
		"https://www.example.com/a", "http://www.example.com/c", "https://www.example.com/a", "/b?page=2")
	require.Equal(t, exitOK, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)

	assert.ElementsMatch(t, []string{
		"https://www.example.com/a", "http://www.example.com/c",
		"https://www.example.com/b?page=2", "https://example.com/b?page=2",
	}, f.srv.Files())
	assert.Empty(t, f.srv.Tags())
	purges := f.srv.Purges()
	require.Len(t, purges, 1, "one request for all")
	assert.Contains(t, r.stdout, "Purged 3 of 3 URLs with cloudflare (zone "+f.srv.Zone()+", paced to the Pro plan; paths on www.example.com, example.com)")
	assert.Contains(t, r.stdout, "1 duplicate ignored")
	assert.Contains(t, r.stdout, "Cloudflare accepted 1 request:\n  purge id "+purges[0].ID+"\n")
	assert.Empty(t, r.stderr)
}

func TestPurgeCloudflareTags(t *testing.T) {
	t.Parallel()
	f := newFakeCloudflare(t)
	r := f.purge(t, "", "--tags", "product-42", "category-7")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.ElementsMatch(t, []string{"product-42", "category-7"}, f.srv.Tags())
	assert.Empty(t, f.srv.Files())
	assert.Contains(t, r.stdout, "Purged 2 of 2 tags with cloudflare")

	// A tag Cloudflare refuses is caught before anything is sent.
	f.srv.Reset()
	r = f.purge(t, "", "--tags", "ok", "caf\u00e9")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, `argument 2: "café"`)
	assert.Contains(t, r.stderr, "Cloudflare refuses it")
	assert.Empty(t, f.srv.Purges())
}

// A long list is cut into requests of --cloudflare-max-items, each within
// the fake's limit, and every URL arrives once.
func TestPurgeCloudflareBatches(t *testing.T) {
	t.Parallel()
	f := newFakeCloudflare(t, cloudflaretest.WithMaxItems(30))
	var urls []string
	for i := range 70 {
		urls = append(urls, fmt.Sprintf("https://www.example.com/p/%d", i))
	}
	r := f.purge(t, "", append([]string{"--cloudflare-max-items", "30"}, urls...)...)
	require.Equal(t, exitOK, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	assert.ElementsMatch(t, urls, f.srv.Files())
	purges := f.srv.Purges()
	require.Len(t, purges, 3)
	for _, p := range purges {
		assert.LessOrEqual(t, len(p.Files), 30)
	}
	assert.Contains(t, r.stdout, "Cloudflare accepted 3 requests")
}

// A dry run sends nothing, and shows what each path is sent as and how
// many requests it takes.
func TestPurgeCloudflareDryRun(t *testing.T) {
	t.Parallel()
	f := newFakeCloudflare(t)
	r := f.purge(t, "", "--dry-run", "--site-host", "www.example.com,example.com", "--cloudflare-max-items", "2",
		"/a", "https://www.example.com/b")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Empty(t, f.srv.Purges())
	assert.Empty(t, f.srv.Responses(), "nothing was sent")
	assert.Contains(t, r.stdout, "Dry run: nothing was sent.\nWould purge 2 URLs with cloudflare")
	assert.Contains(t, r.stdout, "in about 2 requests")
	assert.Contains(t, r.stdout, "  /a  (sent as https://www.example.com/a, https://example.com/a)\n")
	assert.Contains(t, r.stdout, "  https://www.example.com/b\n")

	r = f.purge(t, "", "--dry-run", "--json", "--site-host", "www.example.com", "/a", "/b")
	require.Equal(t, exitOK, r.code, r.stderr)
	var got struct {
		Backend           string
		DryRun            bool
		List              []string
		SentAs            map[string][]string
		EstimatedRequests int
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
	assert.Equal(t, "cloudflare", got.Backend)
	assert.True(t, got.DryRun)
	assert.Equal(t, []string{"/a", "/b"}, got.List)
	assert.Equal(t, map[string][]string{"/a": {"https://www.example.com/a"}, "/b": {"https://www.example.com/b"}}, got.SentAs)
	assert.Equal(t, 1, got.EstimatedRequests)
	assert.Empty(t, f.srv.Responses())
}

func TestPurgeCloudflareJSON(t *testing.T) {
	t.Parallel()
	f := newFakeCloudflare(t)
	f.srv.RefuseURLs("https://www.example.com/refused")
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
	assert.Equal(t, "cloudflare", got.Backend)
	assert.Equal(t, "url", got.Kind)
	assert.Equal(t, 2, got.Objects)
	assert.Equal(t, 1, got.Purged)
	assert.Equal(t, 1, got.Failed)
	var ids []acceptedRequest
	for _, p := range f.srv.Purges() {
		ids = append(ids, acceptedRequest{ID: p.ID})
	}
	assert.Equal(t, ids, got.Accepted)
	require.Len(t, got.Failures, 1)
	assert.Equal(t, "https://www.example.com/refused", got.Failures[0].Object)
	assert.Contains(t, got.Failures[0].Error, "1099 Invalid or refused URL", "Cloudflare's reason for the object")
	assert.NotContains(t, got.Failures[0].Error, "objects not purged", "not the batch's")
	assert.Equal(t, []string{"https://www.example.com/a"}, f.srv.Files())
	assert.NotEmpty(t, got.Elapsed)
}

// A refused token fails every object at once, without retries (exit
// status 1), and is never printed.
func TestPurgeCloudflareBadToken(t *testing.T) {
	t.Parallel()
	f := newFakeCloudflare(t)
	f.vars[cloudflare.EnvAPIToken] = "wrong-" + secret
	r := f.purge(t, "", "https://www.example.com/a", "https://www.example.com/b")
	require.Equal(t, exitFailed, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	assert.Empty(t, f.srv.Purges())
	assert.Equal(t, 1, countResponses(f.srv.Responses()), "permanent: not retried")
	assert.Contains(t, r.stdout, "Not purged: 2 URLs")
	assert.Contains(t, r.stdout, "the API token was refused")
	assert.Contains(t, r.stderr, "gormpurge: 2 of 2 URLs not purged")
	assert.NotContains(t, r.stdout+r.stderr, secret)
}

// --cloudflare-token-file and --cloudflare-zone stand for the variables.
func TestPurgeCloudflareTokenFile(t *testing.T) {
	t.Parallel()
	f := newFakeCloudflare(t)
	file := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(file, []byte(f.srv.Token()+"\n"), 0o600))
	h := harness{httpClient: f.srv.Client()} // no variables
	r := h.run(t, "purge", "--cloudflare-zone", f.srv.Zone(), "--cloudflare-token-file", file,
		"--cloudflare-endpoint", f.srv.Endpoint(), "https://www.example.com/a")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, []string{"https://www.example.com/a"}, f.srv.Files())
}

// Missing or wrong configuration is a usage error naming the flag or the
// variable at fault; nothing is sent.
func TestPurgeCloudflareConfigErrors(t *testing.T) {
	t.Parallel()
	f := newFakeCloudflare(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte("\n"), 0o600))
	token, zone := f.srv.Token(), f.srv.Zone()
	for _, tc := range []struct {
		name string
		vars map[string]string
		args []string
		want []string
	}{
		{"nothing set", nil, []string{"--cloudflare"},
			[]string{"no Cloudflare zone: set CLOUDFLARE_ZONE_ID, or pass --cloudflare-zone ID", "no API token: set CLOUDFLARE_API_TOKEN, or pass --cloudflare-token-file FILE"}},
		{"no token", map[string]string{cloudflare.EnvZoneID: zone}, []string{"--cloudflare"},
			[]string{"set CLOUDFLARE_API_TOKEN, or pass --cloudflare-token-file FILE"}},
		{"no zone", map[string]string{cloudflare.EnvAPIToken: token}, []string{"--cloudflare"},
			[]string{"set CLOUDFLARE_ZONE_ID, or pass --cloudflare-zone ID"}},
		{"zone variable", map[string]string{cloudflare.EnvAPIToken: token, cloudflare.EnvZoneID: "example.com"}, []string{"--cloudflare"},
			[]string{`CLOUDFLARE_ZONE_ID: "example.com" is not a zone ID`}},
		{"zone flag", map[string]string{cloudflare.EnvAPIToken: token}, []string{"--cloudflare-zone", "example.com"},
			[]string{`--cloudflare-zone: "example.com" is not a zone ID`}},
		{"token variable", map[string]string{cloudflare.EnvAPIToken: "two words", cloudflare.EnvZoneID: zone}, []string{"--cloudflare"},
			[]string{"CLOUDFLARE_API_TOKEN: the token (9 bytes) holds white space"}},
		{"token file missing", map[string]string{cloudflare.EnvZoneID: zone}, []string{"--cloudflare-token-file", filepath.Join(dir, "nope")},
			[]string{"--cloudflare-token-file: open", "no such file"}},
		{"token file empty", map[string]string{cloudflare.EnvZoneID: zone}, []string{"--cloudflare-token-file", empty},
			[]string{"--cloudflare-token-file " + empty + ": the file is empty"}},
		{"plan", f.vars, []string{"--cloudflare", "--cloudflare-plan", "gold"},
			[]string{`--cloudflare-plan "gold": use free, pro, business or enterprise`}},
		{"max items", f.vars, []string{"--cloudflare", "--cloudflare-max-items", "200"},
			[]string{"--cloudflare-max-items 200: more than 100 URLs a request needs --cloudflare-plan enterprise"}},
		{"endpoint", f.vars, []string{"--cloudflare", "--cloudflare-endpoint", "ftp://example.com"},
			[]string{"--cloudflare-endpoint: \"ftp://example.com\""}},
		{"site host", f.vars, []string{"--cloudflare", "--site-host", "https://www.example.com/"},
			[]string{"--site-host: \"https://www.example.com/\""}},
		{"another backend's flag", f.vars, []string{"--cloudflare", "--network", "staging"},
			[]string{"--network does not apply to Cloudflare"}},
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

// countResponses returns how many answers a fake sent, whatever their
// status.
func countResponses(byStatus map[int]int) int {
	n := 0
	for _, c := range byStatus {
		n += c
	}
	return n
}

func TestPurgeCloudflareHelp(t *testing.T) {
	t.Parallel()
	r := gormpurge(t, "purge", "--help")
	require.Equal(t, exitOK, r.code)
	for _, want := range []string{"Cloudflare:", "--cloudflare ", "--cloudflare-zone ID", "--cloudflare-token-file FILE",
		"--cloudflare-plan PLAN", "--cloudflare-max-items N", "--cloudflare-endpoint URL", "CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ZONE_ID"} {
		assert.Contains(t, r.stdout, want)
	}
	assert.NotContains(t, r.stdout, "--cloudflare-token ", "no flag takes a token")
}
