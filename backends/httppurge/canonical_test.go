package httppurge_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/httppurge"
)

// The request line and Host header name the page as a browser asks for it
// (the canonical form), whatever spelling the backend is given, over both
// ways of sending.
func TestPurgesNameThePageAsBrowsersAskForIt(t *testing.T) {
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			node := newFakeNode(t)
			b := newBackend(t, append(c.opts(t), httppurge.WithNodes(node.URL),
				httppurge.WithSiteHost("www.ex\u00e4mple.com"))...)
			_, err := b.Purge(t.Context(), backends.Request{URLs: []string{
				"/search?q=caf\u00e9",
				"/x?a=b c",
				"/caf%c3%a9",
				"/tags/go%2ffeed",
				"http://SHOP.Ex\u00e4mple.com:80/cart?id=1#top",
			}})
			require.NoError(t, err)
			got := map[string]string{}
			for _, r := range node.requests() {
				got[r.URI] = r.Host
			}
			assert.Equal(t, map[string]string{
				"/search?q=caf%C3%A9": "www.xn--exmple-cua.com",
				"/x?a=b%20c":          "www.xn--exmple-cua.com",
				"/caf%C3%A9":          "www.xn--exmple-cua.com",
				"/tags/go%2Ffeed":     "www.xn--exmple-cua.com",
				"/cart?id=1":          "shop.xn--exmple-cua.com",
			}, got)
		})
	}
}

// WithHeader("User-Agent", ...) replaces the default instead of sending two.
func TestWithHeaderReplacesTheUserAgent(t *testing.T) {
	node := newFakeNode(t)
	b := newBackend(t, httppurge.WithNodes(node.URL), httppurge.WithSiteHost("www.example.com"),
		httppurge.WithHeader("User-Agent", "acme-purger/1.0"))
	_, err := b.Purge(t.Context(), backends.NewRequest([]string{"/a"}, nil))
	require.NoError(t, err)
	reqs := node.requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, []string{"acme-purger/1.0"}, reqs[0].Header.Values("User-Agent"))
}
