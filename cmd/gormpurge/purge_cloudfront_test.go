package main

// The CloudFront tests set the AWS_* variables, which the AWS SDK's
// default chain reads from the process: they do not run in parallel.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/cloudfront/cloudfronttest"
)

// fakeCloudFront is a fake CloudFront API whose credentials are in the
// AWS_* variables, with an HTTP client that counts the requests sent.
type fakeCloudFront struct {
	srv      *cloudfronttest.Server
	client   *http.Client
	requests atomic.Int64
}

// newFakeCloudFront starts a fake and sets the AWS_* variables to its
// credentials, and the rest of the default chain to nothing, for the
// rest of the test.
func newFakeCloudFront(t *testing.T, opts ...cloudfronttest.Option) *fakeCloudFront {
	t.Helper()
	srv := cloudfronttest.NewServer(opts...)
	t.Cleanup(srv.Close)
	f := &fakeCloudFront{srv: srv}
	base := srv.Client().Transport
	f.client = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		f.requests.Add(1)
		return base.RoundTrip(r)
	})}
	setAWSEnv(t, srv.Credentials())
	return f
}

// setAWSEnv makes creds the only credentials the AWS default chain finds,
// with region us-east-1.
func setAWSEnv(t *testing.T, creds aws.Credentials) {
	t.Helper()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":                      creds.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":                  creds.SecretAccessKey,
		"AWS_SESSION_TOKEN":                      creds.SessionToken,
		"AWS_REGION":                             "us-east-1",
		"AWS_DEFAULT_REGION":                     "",
		"AWS_PROFILE":                            "",
		"AWS_DEFAULT_PROFILE":                    "",
		"AWS_CONFIG_FILE":                        filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE":            filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED":              "true",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI":     "",
		"AWS_WEB_IDENTITY_TOKEN_FILE":            "",
		"AWS_ROLE_ARN":                           "",
		"AWS_ENDPOINT_URL":                       "",
		"AWS_ENDPOINT_URL_CLOUDFRONT":            "",
	} {
		t.Setenv(k, v)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// purge runs "gormpurge purge --cloudfront-distribution <the fake's>
// --cloudfront-endpoint <fake> args...".
func (f *fakeCloudFront) purge(t *testing.T, args ...string) result {
	t.Helper()
	h := harness{httpClient: f.client}
	return h.run(t, append([]string{"purge", "--cloudfront-distribution", f.srv.Distribution(), "--cloudfront-endpoint", f.srv.URL()}, args...)...)
}

// URLs become invalidation paths (path and query; a path on every host
// at once), in one invalidation; paths need no --site-host.
func TestPurgeCloudFrontURLs(t *testing.T) {
	f := newFakeCloudFront(t)
	r := f.purge(t, "https://www.example.com/a", "https://example.com/a", "http://www.example.com/b?page=2", "/c", "/c")
	require.Equal(t, exitOK, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)

	assert.ElementsMatch(t, []string{"/a", "/b?page=2", "/c"}, f.srv.Paths())
	invs := f.srv.Invalidations()
	require.Len(t, invs, 1, "one invalidation for all")
	assert.Empty(t, f.srv.Ignored(), "a fresh CallerReference")
	assert.Contains(t, r.stdout, "Purged 4 of 4 URLs with cloudfront (invalidate on distribution "+f.srv.Distribution()+")")
	assert.Contains(t, r.stdout, "1 duplicate ignored")
	assert.Contains(t, r.stdout, "CloudFront created 1 invalidation on distribution "+f.srv.Distribution()+" (each completes within minutes):\n  invalidation "+invs[0].ID+"\n")
	assert.Empty(t, r.stderr)
}

// Tags are invalidated as "#tag" with --cloudfront-cache-tags, and refused
// before anything is sent without it.
func TestPurgeCloudFrontTags(t *testing.T) {
	f := newFakeCloudFront(t, cloudfronttest.WithCacheTags())
	r := f.purge(t, "--tags", "product-42", "category-7")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "--tags: CloudFront invalidates tags only on a distribution with a CacheTagConfig: pass --cloudfront-cache-tags")
	assert.Zero(t, f.requests.Load(), "nothing was sent")

	r = f.purge(t, "--tags", "--cloudfront-cache-tags", "product-42", "category-7")
	require.Equal(t, exitOK, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	assert.ElementsMatch(t, []string{"product-42", "category-7"}, f.srv.Tags())
	assert.Empty(t, f.srv.Paths())
	assert.Contains(t, r.stdout, "Purged 2 of 2 tags with cloudfront")

	r = f.purge(t, "--tags", "--cloudfront-cache-tags", "ok", "caf\u00e9")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, `argument 2: "café": CloudFront tags are ASCII from "!" to "~"`)
}

// A dry run sends nothing, and shows each URL's invalidation path and the
// number of invalidations, the wildcard limit counted.
func TestPurgeCloudFrontDryRun(t *testing.T) {
	f := newFakeCloudFront(t)
	r := f.purge(t, "--dry-run", "https://www.example.com/a?x=1", "/b", "/c*")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "Dry run: nothing was sent.\nWould purge 3 URLs with cloudfront (invalidate on distribution "+f.srv.Distribution()+"), in about 1 request:\n")
	assert.Contains(t, r.stdout, "  https://www.example.com/a?x=1  (sent as /a?x=1)\n")
	assert.Contains(t, r.stdout, "  /b\n")

	var wild []string
	for i := range 20 {
		wild = append(wild, fmt.Sprintf("/w%02d/*", i))
	}
	r = f.purge(t, append([]string{"--dry-run", "--json", "https://www.example.com/x"}, wild...)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	var got struct {
		Backend           string
		DryRun            bool
		List              []string
		SentAs            map[string][]string
		EstimatedRequests int
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
	assert.Equal(t, "cloudfront", got.Backend)
	assert.True(t, got.DryRun)
	assert.Len(t, got.List, 21)
	assert.Equal(t, map[string][]string{"https://www.example.com/x": {"/x"}}, got.SentAs)
	assert.Equal(t, 2, got.EstimatedRequests, "15 wildcard paths an invalidation")
	assert.Zero(t, f.requests.Load(), "nothing was sent")
	assert.Empty(t, f.srv.Invalidations())
}

// A tag ending in "*" is no wildcard ("*" is an ordinary character of a
// CloudFront tag): a dry run counts 20 of them in one invalidation, as the
// backend sends them, not in two as 20 wildcard paths would take.
func TestPurgeCloudFrontDryRunTagsEndingInStar(t *testing.T) {
	f := newFakeCloudFront(t, cloudfronttest.WithCacheTags())
	args := []string{"--dry-run", "--json", "--tags", "--cloudfront-cache-tags"}
	for i := range 20 {
		args = append(args, fmt.Sprintf("tag%02d*", i))
	}
	r := f.purge(t, args...)
	require.Equal(t, exitOK, r.code, r.stderr)
	var got struct{ EstimatedRequests int }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
	assert.Equal(t, 1, got.EstimatedRequests, "tags are never wildcards")
	assert.Zero(t, f.requests.Load(), "nothing was sent")
}

func TestPurgeCloudFrontJSON(t *testing.T) {
	f := newFakeCloudFront(t)
	r := f.purge(t, "--json", "https://www.example.com/a", "https://www.example.com/bad*path")
	require.Equal(t, exitFailed, r.code, r.stderr)
	var got struct {
		Backend, Kind, Description string
		Objects, Purged, Failed    int
		Accepted                   []acceptedRequest
		Failures                   []failure
		Elapsed                    string
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
	assert.Equal(t, "cloudfront", got.Backend)
	assert.Equal(t, "url", got.Kind)
	assert.Equal(t, "invalidate on distribution "+f.srv.Distribution(), got.Description)
	assert.Equal(t, 2, got.Objects)
	assert.Equal(t, 1, got.Purged)
	assert.Equal(t, 1, got.Failed)
	invs := f.srv.Invalidations()
	require.Len(t, invs, 1)
	assert.Equal(t, []acceptedRequest{{ID: invs[0].ID}}, got.Accepted)
	assert.Equal(t, []string{"/a"}, f.srv.Paths())
	require.Len(t, got.Failures, 1)
	assert.Equal(t, "https://www.example.com/bad*path", got.Failures[0].Object)
	assert.Contains(t, got.Failures[0].Error, "cloudfront: cannot be invalidated: a \"*\" inside the path")
	assert.NotContains(t, got.Failures[0].Error, "objects not invalidated", "not the batch's")
	assert.NotEmpty(t, got.Elapsed)
}

// Credentials CloudFront refuses fail at once, without retries (exit
// status 1); the secret is never printed.
func TestPurgeCloudFrontBadCredentials(t *testing.T) {
	f := newFakeCloudFront(t)
	creds := f.srv.Credentials()
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong"+secret)
	r := f.purge(t, "--verbose", "https://www.example.com/a", "/b")
	require.Equal(t, exitFailed, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	assert.Empty(t, f.srv.Invalidations())
	assert.Equal(t, int64(1), f.requests.Load(), "permanent: not retried")
	assert.Contains(t, r.stdout, "Not purged: 2 URLs")
	assert.Contains(t, r.stdout, "SignatureDoesNotMatch")
	assert.Contains(t, r.stderr, "gormpurge: 2 of 2 URLs not purged")
	assert.NotContains(t, r.stdout+r.stderr, secret)

	f.requests.Store(0)
	t.Setenv("AWS_SECRET_ACCESS_KEY", creds.SecretAccessKey)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWN"+secret)
	r = f.purge(t, "--json", "/a")
	require.Equal(t, exitFailed, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	assert.Equal(t, int64(1), f.requests.Load(), "permanent: not retried")
	assert.Contains(t, r.stdout, "InvalidClientTokenId")
	assert.NotContains(t, r.stdout+r.stderr, creds.SecretAccessKey)
}

// Missing or wrong configuration is a usage error naming the flag, or
// where the AWS default chain looks; nothing is sent.
func TestPurgeCloudFrontConfigErrors(t *testing.T) {
	f := newFakeCloudFront(t)
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"empty distribution", []string{"--cloudfront-distribution", ""}, nil,
			[]string{"--cloudfront-distribution: name the distribution"}},
		{"bad distribution", []string{"--cloudfront-distribution", "e-lower"}, nil,
			[]string{`--cloudfront-distribution: "e-lower" is not a distribution id`}},
		{"endpoint", []string{"--cloudfront-distribution", f.srv.Distribution(), "--cloudfront-endpoint", "cloudfront.amazonaws.com"}, nil,
			[]string{"--cloudfront-endpoint: want an http(s) base URL"}},
		{"no credentials", []string{"--cloudfront-distribution", f.srv.Distribution(), "--cloudfront-endpoint", f.srv.URL()},
			map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""},
			[]string{"no AWS credentials (the default chain: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE"}},
		{"unknown profile", []string{"--cloudfront-distribution", f.srv.Distribution(), "--cloudfront-endpoint", f.srv.URL()},
			map[string]string{"AWS_PROFILE": "nosuchprofile"},
			[]string{"the AWS configuration", "nosuchprofile"}},
		{"another backend's flag", []string{"--cloudfront-distribution", f.srv.Distribution(), "--fastly-soft"}, nil,
			[]string{"--fastly-soft does not apply to CloudFront"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			h := harness{httpClient: f.client}
			r := h.run(t, append(append([]string{"purge"}, tc.args...), "https://www.example.com/a")...)
			assert.Equal(t, exitUsage, r.code, r.stderr)
			for _, w := range tc.want {
				assert.Contains(t, r.stderr, w)
			}
			assert.NotContains(t, r.stderr, f.srv.Credentials().SecretAccessKey)
		})
	}
	assert.Zero(t, f.requests.Load(), "nothing was sent")
}

func TestPurgeCloudFrontHelp(t *testing.T) {
	t.Parallel()
	r := gormpurge(t, "purge", "--help")
	require.Equal(t, exitOK, r.code)
	for _, want := range []string{"CloudFront:", "--cloudfront-distribution ID", "--cloudfront-cache-tags", "--cloudfront-endpoint URL",
		"AWS_PROFILE", "/*"} {
		assert.Contains(t, r.stdout, want)
	}
}
