package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/akamai"
	"github.com/gormpurge/gormpurge/backends/akamai/akamaitest"
)

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
