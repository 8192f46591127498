package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/akamai"
	"github.com/gormpurge/gormpurge/backends/akamai/akamaitest"
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
