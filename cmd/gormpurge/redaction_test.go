package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/cloudflare"
	"github.com/gormpurge/gormpurge/backends/fastly"
)

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

// secret is the credential the hostile values below carry.
const secret = "S3CR3T"

// hostileNodes are --http-nodes values carrying secret wherever a
// credential can hide, parsable or not.
var hostileNodes = []string{
	"http://admin:" + secret + "@127.0.0.1:6081",
	"http://admin:%" + secret + "@127.0.0.1:6081",
	"http://admin:p%zz" + secret + "@127.0.0.1:6081",
	"http://" + secret + "@127.0.0.1:6081",
	"http://" + secret + ":@127.0.0.1:6081",
	"http://127.0.0.1:6081/?token=" + secret,
	"http://127.0.0.1:6081?a=1&key=" + secret,
	"http://127.0.0.1:6081/?" + secret,
	"http://admin:" + secret + "@[::1]:6081",
	"http://admin:" + secret + "@[::1:6081",
	"http://admin:pa/" + secret + "@127.0.0.1:6081",
	"http://admin:12?" + secret + "@127.0.0.1:6081",
	"admin:" + secret + "@127.0.0.1:6081",
	"http://admin:\"" + secret + "@127.0.0.1:6081", // not valid CSV, as --http-nodes reads a list
	"\"http://admin:" + secret + "@127.0.0.1:6081",
	"http://admin:a\n" + secret + "@127.0.0.1:6081",
}

// No credential in a node URL reaches the command's output, whatever the
// other flags.
func TestNodeCredentialsNeverPrinted(t *testing.T) {
	t.Parallel()
	for _, node := range hostileNodes {
		for _, extra := range [][]string{nil, {"--json"}, {"--verbose"}, {"--dry-run"}, {"--tags", "--tag-mode", "ban"}} {
			args := append([]string{"purge", "--http-nodes", node, "--site-host", "www.example.test"}, extra...)
			r := gormpurge(t, append(args, "/a")...)
			assert.Equal(t, exitUsage, r.code, "%q %v", node, extra)
			assert.NotContains(t, r.stdout+r.stderr, secret, "%q %v", node, extra)
			assert.NotContains(t, r.stdout+r.stderr, "%S3", "%q %v", node, extra)
			assert.NotContains(t, r.stdout+r.stderr, "p%zz", "%q %v", node, extra)
		}
	}
}

// The inputs listed as invalid show none of their credentials either.
func TestInvalidInputCredentialsNeverPrinted(t *testing.T) {
	t.Parallel()
	n := newCacheNode(t, 200)
	for _, in := range []string{
		"https://" + secret + "@www.example.test/a b",
		"https://" + secret + ":@www.example.test/a b",
		"https://admin:" + secret + "@www.example.test/a b",
		"https://www.example.test/a b?token=" + secret,
		"https://admin:p%zz" + secret + "@www.example.test/a",
	} {
		for _, extra := range [][]string{nil, {"--json"}} {
			r := gormpurge(t, append([]string{"purge", "--http-nodes", n.url, in}, extra...)...)
			assert.Equal(t, exitUsage, r.code, in)
			assert.Contains(t, r.stderr, "argument 1", in)
			assert.NotContains(t, r.stdout+r.stderr, secret, in)
		}
	}
	assert.Empty(t, n.requests())
}

// Neither do warm's base URLs.
func TestWarmBaseURLCredentialsNeverPrinted(t *testing.T) {
	t.Parallel()
	for _, base := range []string{
		"http://admin:" + secret + "@www.example.test:bad/",
		"http://" + secret + "@www.example.test:bad/",
		"http://www.example.test:bad/?token=" + secret,
		"ftp://" + secret + "@www.example.test/",
		"http://admin:p%zz" + secret + "@www.example.test/",
	} {
		r := gormpurge(t, "warm", "--base-url", base, "/a")
		assert.NotEqual(t, exitOK, r.code, base)
		assert.NotContains(t, r.stdout+r.stderr, secret, base)
	}
}

// hostileTokens are API tokens carrying secret that a CDN backend refuses
// before sending, or whose CDN refuses them.
var hostileTokens = []string{
	"wrong-" + secret,
	"two words " + secret,
	secret + "\x01",
	" " + secret,
	secret + "\n" + secret,
}

// cdnSecretRun runs a purge with a CDN backend given token, from the
// environment or a token file, against its fake; the fakes are started by
// the test.
type cdnSecretRun func(t *testing.T, token string, viaFile bool, extra ...string) result

// An API token, from the environment or a file, never reaches the
// command's output, whether the backend or the CDN refuses it, whatever
// the other flags.
func TestCDNTokensNeverPrinted(t *testing.T) {
	t.Parallel()
	runs := map[string]cdnSecretRun{
		"cloudflare": func(t *testing.T, token string, viaFile bool, extra ...string) result {
			f := newFakeCloudflare(t)
			args := []string{"purge", "--cloudflare", "--cloudflare-endpoint", f.srv.Endpoint()}
			if viaFile {
				delete(f.vars, cloudflare.EnvAPIToken)
				args = append(args, "--cloudflare-token-file", tokenFile(t, token))
			} else {
				f.vars[cloudflare.EnvAPIToken] = token
			}
			h := harness{httpClient: f.srv.Client(), vars: f.vars}
			return h.run(t, append(append(args, extra...), "https://www.example.test/a")...)
		},
		"fastly": func(t *testing.T, token string, viaFile bool, extra ...string) result {
			f := newFakeFastly(t)
			args := []string{"purge", "--fastly", "--fastly-endpoint", f.srv.URL()}
			if viaFile {
				delete(f.vars, fastly.EnvAPIToken)
				args = append(args, "--fastly-token-file", tokenFile(t, token))
			} else {
				f.vars[fastly.EnvAPIToken] = token
			}
			h := harness{httpClient: f.srv.Client(), vars: f.vars}
			return h.run(t, append(append(args, extra...), "https://www.example.test/a")...)
		},
	}
	for name, run := range runs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, token := range hostileTokens {
				for _, viaFile := range []bool{false, true} {
					for _, extra := range [][]string{nil, {"--json"}, {"--verbose"}, {"--dry-run"}, {"--tags"}} {
						r := run(t, token, viaFile, extra...)
						if len(extra) == 0 || extra[0] != "--dry-run" { // a dry run cannot know a token is wrong
							assert.NotEqual(t, exitOK, r.code, "%q %v %v", token, viaFile, extra)
						}
						assert.NotContains(t, r.stdout+r.stderr, secret, "%q %v %v", token, viaFile, extra)
					}
				}
			}
		})
	}
}

// tokenFile writes token to a file of its own and returns its path.
func tokenFile(t *testing.T, token string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(file, []byte(token), 0o600))
	return file
}

// Neither does an AWS secret key or session token, which the AWS SDK's
// default chain reads from the environment (so this test is not
// parallel), whether CloudFront refuses the signature or not.
func TestAWSSecretsNeverPrinted(t *testing.T) {
	f := newFakeCloudFront(t)
	creds := f.srv.Credentials()
	for _, env := range []map[string]string{
		{"AWS_SECRET_ACCESS_KEY": "wrong" + secret},
		{"AWS_SECRET_ACCESS_KEY": creds.SecretAccessKey, "AWS_SESSION_TOKEN": secret},
		{"AWS_SECRET_ACCESS_KEY": secret + " \x01"},
	} {
		for k, v := range env {
			t.Setenv(k, v)
		}
		for _, extra := range [][]string{nil, {"--json"}, {"--verbose"}, {"--dry-run"}, {"--max-attempts", "2"}} {
			r := f.purge(t, append(extra, "https://www.example.test/a")...)
			assert.NotContains(t, r.stdout+r.stderr, secret, "%q %v", env, extra)
			assert.NotContains(t, r.stdout+r.stderr, creds.SecretAccessKey, "%q %v", env, extra)
		}
	}
}

// A NATS server list shows none of its credentials, whichever element
// fails: passwords and tokens (which NATS carries as the user), in lists
// that parse and in lists that do not.
func TestNATSServerListCredentialsNeverPrinted(t *testing.T) {
	t.Parallel()
	for _, list := range []string{
		"nats://u:s3cret@127.0.0.1:1,nats://u:s3cret@127.0.0.1:x",
		"nats://s3cret@127.0.0.1:1,nats://s3cret@127.0.0.1:2",
		"nats://u:s3cret@127.0.0.1:x",
		"nats://s3cret@127.0.0.1:1, tls://u:s3cret@127.0.0.1:2",
	} {
		for _, extra := range [][]string{nil, {"--json"}, {"--verbose"}} {
			args := append([]string{"cache", "purge", "--nats", list, "--nats-subject", "s", "--timeout", "2s"}, extra...)
			r := gormpurge(t, append(args, "/a")...)
			assert.NotZero(t, r.code, "%q %v", list, extra)
			assert.NotContains(t, r.stdout+r.stderr, "s3cret", "%q %v", list, extra)
		}
	}
}
