package httppurge_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/httppurge"
)

// secret is the credential the hostile node URLs carry.
const secret = "S3CR3T"

// hostileNodes are node URLs carrying secret in every place a credential
// can hide, parsable or not. Each is refused; secrets lists what must never
// be shown of it.
var hostileNodes = []struct {
	name    string
	node    string
	secrets []string
}{
	{"password", "http://admin:" + secret + "@127.0.0.1:6081", nil},
	{"bad escape in the password", "http://admin:%" + secret + "@127.0.0.1:6081", []string{"%S3"}},
	{"bad escape inside the password", "http://admin:p%zz" + secret + "@127.0.0.1:6081", []string{"p%zz"}},
	{"user-only token", "http://" + secret + "@127.0.0.1:6081", nil},
	{"token with an empty password", "http://" + secret + ":@127.0.0.1:6081", nil},
	{"token query", "http://127.0.0.1:6081/?token=" + secret, nil},
	{"key query", "http://127.0.0.1:6081?a=1&key=" + secret, nil},
	{"bare query", "http://127.0.0.1:6081/?" + secret, nil},
	{"fragment", "http://127.0.0.1:6081/#" + secret, nil},
	{"IPv6 host with a password", "http://admin:" + secret + "@[::1]:6081", nil},
	{"unparsable IPv6 host with a password", "http://admin:" + secret + "@[::1:6081", nil},
	{"bad port with a password", "http://admin:" + secret + "@127.0.0.1:port", nil},
	{"slash in the password", "http://admin:pa/" + secret + "@127.0.0.1:6081", []string{"pa/"}},
	{"question mark in the password", "http://admin:12?" + secret + "@127.0.0.1:6081", nil},
	{"hash in the password", "http://admin:12#" + secret + "@127.0.0.1:6081", nil},
	{"secret before a question mark", "http://admin:" + secret + "?x@127.0.0.1:6081", nil},
	{"secret before a hash", "http://admin:" + secret + "#x@127.0.0.1:6081", nil},
	{"secret before a slash", "http://admin:" + secret + "/x@127.0.0.1:6081", nil},
	{"no scheme", "admin:" + secret + "@127.0.0.1:6081", nil},
	{"other scheme", "ftp://admin:" + secret + "@127.0.0.1:6081", nil},
	{"space in the password", "http://admin:a " + secret + "@127.0.0.1:6081", nil},
	{"control character in the password", "http://admin:a\n" + secret + "@127.0.0.1:6081", nil},
}

// syncBuffer is a bytes.Buffer safe for the backend's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// assertNoSecret fails when out shows any part of a hostile node's
// credentials.
func assertNoSecret(t *testing.T, out string, extra []string) {
	t.Helper()
	for _, s := range append([]string{secret}, extra...) {
		// Case-insensitively: url.Parse lowercases a scheme, and hosts are
		// lowercased.
		assert.NotContains(t, strings.ToUpper(out), strings.ToUpper(s))
	}
}

// A node URL's credentials (password, user-only token, query values)
// never reach an error, a log line or a panic message, parsable or not.
func TestNodeCredentialsNeverShown(t *testing.T) {
	t.Parallel()
	for _, tt := range hostileNodes {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs syncBuffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

			b, err := httppurge.New(httppurge.WithNodes(tt.node), httppurge.WithLogger(logger))
			require.Error(t, err)
			assert.Nil(t, b)
			assert.ErrorContains(t, err, "WithNodes(")
			assertNoSecret(t, err.Error(), tt.secrets)

			c, err := httppurge.NewCluster(httppurge.WithNodes(tt.node))
			require.Error(t, err)
			assert.Nil(t, c)
			assertNoSecret(t, err.Error(), tt.secrets)

			p := func() (p any) {
				defer func() { p = recover() }()
				httppurge.DNS(tt.node)
				return nil
			}()
			require.NotNil(t, p, "DNS panics")
			assert.Contains(t, fmt.Sprint(p), "httppurge: DNS(")
			assertNoSecret(t, fmt.Sprint(p), tt.secrets)

			good := newFakeNode(t)
			d := &discoverer{}
			d.set(nil, tt.node, good.URL)
			b = newBackend(t, httppurge.WithDiscovery(d.discover), httppurge.WithLogger(logger), httppurge.WithSiteHost("h"))
			_, err = b.Purge(t.Context(), backends.NewRequest([]string{"/a"}, nil))
			require.NoError(t, err)
			assert.Equal(t, []string{good.URL}, b.Nodes())
			assert.Contains(t, logs.String(), "discovery returned an invalid node")
			assertNoSecret(t, logs.String(), tt.secrets)
		})
	}
}

// When discovery finds only hostile nodes, the failure it logs and the
// error Purge returns show none of their credentials.
func TestDiscoveryOfHostileNodesOnly(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	nodes := make([]string, len(hostileNodes))
	for i, tt := range hostileNodes {
		nodes[i] = tt.node
	}
	d := &discoverer{}
	d.set(nil, nodes...)
	b := newBackend(t, httppurge.WithDiscovery(d.discover), httppurge.WithLogger(logger), httppurge.WithSiteHost("h"))
	res, err := b.Purge(t.Context(), backends.NewRequest([]string{"/a"}, nil))
	require.Error(t, err)
	assert.ErrorContains(t, err, "no valid node")
	out := err.Error() + res.Detail + logs.String()
	assert.Contains(t, out, "node discovery failed")
	for _, tt := range hostileNodes {
		assertNoSecret(t, out, tt.secrets)
	}
}

// Errors from Purge about refused URLs never show their credentials.
func TestRefusedURLCredentialsNeverShown(t *testing.T) {
	t.Parallel()
	n := newFakeNode(t)
	b := newBackend(t, httppurge.WithNodes(n.URL), httppurge.WithSiteHost("h"))
	for _, u := range []string{
		"http://admin:p%zz" + secret + "@www.example.com/a",
		"http://admin:" + secret + "@www.example.com/a\n",
		"ftp://admin:" + secret + "@www.example.com/a",
		secret + ":pw@www.example.com/a",
		"admin:" + secret + "@www.example.com/a",
	} {
		_, err := b.Purge(context.Background(), backends.Request{URLs: []string{u}})
		require.Error(t, err, u)
		assert.ErrorContains(t, err, "cannot purge", u)
		assertNoSecret(t, err.Error(), []string{"p%zz"})
	}
	assert.Empty(t, n.requests())
}
