package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
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
