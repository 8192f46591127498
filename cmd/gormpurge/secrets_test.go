package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

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
