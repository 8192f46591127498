package httppurge_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/httppurge"
)

// Every node receives the same requests: the method, the URL's path and
// query, and the Host of the page's site, never the node's address.
// It is long because it is one table of cases, a line or two each.
func TestPurgeRequests(t *testing.T) {
	t.Parallel()
	type want struct{ method, uri, host, header, value string }
	tests := []struct {
		name string
		opts []httppurge.Option
		urls []string
		tags []string
		want []want
	}{
		{"path under the site host", nil, []string{"/articles/1"}, nil,
			[]want{{"PURGE", "/articles/1", "www.example.com", "", ""}}},
		{"path under every site host", []httppurge.Option{httppurge.WithSiteHost("example.com")},
			[]string{"/"}, nil,
			[]want{{"PURGE", "/", "www.example.com", "", ""}, {"PURGE", "/", "example.com", "", ""}}},
		{"absolute URL under its own host", nil, []string{"http://blog.example.com/posts/1"}, nil,
			[]want{{"PURGE", "/posts/1", "blog.example.com", "", ""}}},
		{"default port left out of Host", nil, []string{"https://shop.example.com:443/cart"}, nil,
			[]want{{"PURGE", "/cart", "shop.example.com", "", ""}}},
		{"other port kept in Host", nil, []string{"http://shop.example.com:8080/cart"}, nil,
			[]want{{"PURGE", "/cart", "shop.example.com:8080", "", ""}}},
		{"upper-case host sent lowercased", nil, []string{"HTTP://WWW.Example.TEST/E"}, nil,
			[]want{{"PURGE", "/E", "www.example.test", "", ""}}},
		{"upper-case host and port sent lowercased", nil, []string{"https://Shop.Example.COM:8443/cart"}, nil,
			[]want{{"PURGE", "/cart", "shop.example.com:8443", "", ""}}},
		{"upper-case site host sent lowercased", []httppurge.Option{httppurge.WithSiteHost("Example.COM")},
			[]string{"/a"}, nil,
			[]want{{"PURGE", "/a", "www.example.com", "", ""}, {"PURGE", "/a", "example.com", "", ""}}},
		{"query and escaping kept", nil, []string{"/caf%C3%A9?q=a%20b&page=2"}, nil,
			[]want{{"PURGE", "/caf%C3%A9?q=a%20b&page=2", "www.example.com", "", ""}}},
		{"absolute URL without a path", nil, []string{"https://www.example.com"}, nil,
			[]want{{"PURGE", "/", "www.example.com", "", ""}}},
		{"method", []httppurge.Option{httppurge.WithMethod("BAN")}, []string{"/a"}, nil,
			[]want{{"BAN", "/a", "www.example.com", "", ""}}},
		{"extra header", []httppurge.Option{httppurge.WithHeader("X-Purge-Strict", "1")}, []string{"/a"}, nil,
			[]want{{"PURGE", "/a", "www.example.com", "X-Purge-Strict", "1"}}},
		{"xkey tags by default", nil, nil, []string{"post-1", "posts"},
			[]want{{"PURGE", "/", "www.example.com", "Xkey-Purge", "post-1 posts"}}},
		{"xkey soft purge", []httppurge.Option{httppurge.WithTagMode(httppurge.XKeySoft())}, nil, []string{"post-1"},
			[]want{{"PURGE", "/", "www.example.com", "Xkey-Softpurge", "post-1"}}},
		{"Surrogate-Key", []httppurge.Option{httppurge.WithTagMode(httppurge.SurrogateKey())}, nil, []string{"a", "b"},
			[]want{{"PURGE", "/", "www.example.com", "Surrogate-Key", "a b"}}},
		{"ban expression", []httppurge.Option{httppurge.WithTagMode(httppurge.BanTags("X-Ban-Tags"))}, nil, []string{"post.1", "posts"},
			[]want{{"BAN", "/", "www.example.com", "X-Ban-Tags", `(^|\s)(post\.1|posts)(\s|$)`}}},
		{"tags skipped", []httppurge.Option{httppurge.WithTagMode(httppurge.NoTags())}, []string{"/a"}, []string{"t"},
			[]want{{"PURGE", "/a", "www.example.com", "", ""}}},
		{"URLs and tags", nil, []string{"/a"}, []string{"t"},
			[]want{{"PURGE", "/a", "www.example.com", "", ""}, {"PURGE", "/", "www.example.com", "Xkey-Purge", "t"}}},
	}
	for _, cl := range clients {
		for _, tt := range tests {
			t.Run(cl.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				n1, n2 := newFakeNode(t), newFakeNode(t)
				opts := append([]httppurge.Option{
					httppurge.WithNodes(n1.URL, n2.URL),
					httppurge.WithSiteHost("www.example.com"),
				}, cl.opts(t)...)
				b := newBackend(t, append(opts, tt.opts...)...)
				res, err := b.Purge(t.Context(), backends.Request{URLs: tt.urls, Tags: tt.tags})
				require.NoError(t, err)
				for _, n := range []*fakeNode{n1, n2} {
					var got []want
					for _, r := range n.requests() {
						w := want{method: r.Method, uri: r.URI, host: r.Host}
						for _, h := range tt.want {
							if h.header != "" && r.Header.Get(h.header) != "" {
								w.header, w.value = h.header, r.Header.Get(h.header)
							}
						}
						assert.Equal(t, "gormpurge-httppurge", r.Header.Get("User-Agent"))
						got = append(got, w)
					}
					assert.ElementsMatch(t, tt.want, got, "requests to %s", n.URL)
					assert.Contains(t, res.IDs[n.URL], "ok:")
				}
				assert.Contains(t, res.Detail, "2 of 2 nodes ok")
				if tt.name == "tags skipped" {
					assert.Contains(t, res.Detail, "1 tags skipped")
				}
			})
		}
	}
}

// The node's answer decides: 2xx and 404 are success, 403 and 405 are
// permanent with a hint naming the client, 5xx and 429 are retried.
func TestPurgeStatuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		code      int
		reason    string
		header    [2]string
		ok        bool
		permanent bool
		wait      time.Duration
		hint      string
	}{
		{name: "200", code: 200, ok: true},
		{name: "204", code: 204, ok: true},
		{name: "404 was not cached", code: 404, ok: true},
		{name: "403", code: 403, reason: "Forbidden", permanent: true, hint: "does not allow PURGE from this client (127.0.0.1): add it to the cache's purge ACL"},
		{name: "405 from Varnish", code: 405, reason: "Not allowed.", permanent: true, hint: "purge ACL (Varnish"},
		{name: "400", code: 400, reason: "Bad Request", permanent: true},
		{name: "501", code: 501, permanent: true, hint: "does not implement the PURGE method"},
		{name: "redirect, not followed", code: 301, header: [2]string{"Location", "/elsewhere"}, permanent: true, hint: "give the cache's own address"},
		{name: "500", code: 500},
		{name: "503", code: 503},
		{name: "429 with Retry-After", code: 429, header: [2]string{"Retry-After", "7"}, wait: 7 * time.Second},
	}
	for _, cl := range clients {
		for _, tt := range tests {
			t.Run(cl.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				n := newFakeNode(t)
				if tt.reason != "" {
					n.status(tt.code, tt.reason)
				} else {
					n.answer(func(w http.ResponseWriter, _ *http.Request) {
						if tt.header[0] != "" {
							w.Header().Set(tt.header[0], tt.header[1])
						}
						w.WriteHeader(tt.code)
					})
				}
				b := newBackend(t, append(cl.opts(t), httppurge.WithNodes(n.URL), httppurge.WithSiteHost("www.example.com"),
					httppurge.WithNodeConcurrency(1))...) // one request at a time: see what follows a refusal
				res, err := b.Purge(t.Context(), backends.NewRequest([]string{"/a", "/b"}, nil))
				if tt.ok {
					require.NoError(t, err)
					assert.Equal(t, []string{"/a", "/b"}, sorted(n.uris()))
					return
				}
				require.Error(t, err)
				assert.Equal(t, tt.permanent, backends.IsPermanent(err), "permanent: %v", err)
				d, ok := backends.RetryDelay(err)
				assert.Equal(t, tt.wait, d)
				assert.Equal(t, tt.wait > 0, ok)
				errs := nodeErrors(err)
				require.Len(t, errs, 1, "one error per failed node: %v", err)
				ne := errs[0]
				assert.Equal(t, n.URL, ne.Node)
				assert.Equal(t, tt.code, ne.StatusCode)
				assert.Equal(t, !tt.permanent, ne.Temporary)
				assert.Contains(t, ne.Hint, tt.hint)
				assert.Contains(t, err.Error(), n.URL, "the error names the node")
				assert.Contains(t, res.IDs[n.URL], "failed: ")
				if tt.reason != "" {
					assert.Equal(t, fmt.Sprintf("%d %s", tt.code, tt.reason), ne.Status)
				}
				if tt.code == 400 {
					assert.Equal(t, 2, ne.Failed, "a 400 concerns one request: the other is sent too")
				} else {
					assert.Len(t, n.requests(), 1, "after a node-wide refusal nothing more is sent")
				}
			})
		}
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// Objects that cannot be purged fail for good, after the others are
// purged; with a temporary failure besides, the call is retried.
func TestBadObjects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    []httppurge.Option
		urls    []string
		tags    []string
		message string
	}{
		{"path without a site host", nil, []string{"/a"}, nil, `WithSiteHost("www.example.com")`},
		{"scheme", []httppurge.Option{httppurge.WithSiteHost("h")}, []string{"ftp://h/a"}, nil, `scheme "ftp"`},
		{"relative path", []httppurge.Option{httppurge.WithSiteHost("h")}, []string{"a/b"}, nil, "beginning with"},
		{"tag with a space", nil, nil, []string{"two words"}, "several tags"},
		{"tag with a newline", nil, nil, []string{"a\nb"}, "control character"},
		{"empty URL", []httppurge.Option{httppurge.WithSiteHost("h")}, []string{""}, nil, "empty URL"},
		{"empty tag", nil, nil, []string{""}, "empty tag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := newFakeNode(t)
			b := newBackend(t, append([]httppurge.Option{httppurge.WithNodes(n.URL)}, tt.opts...)...)
			res, err := b.Purge(t.Context(), backends.Request{
				URLs: append([]string{"https://ok.example.com/fine"}, tt.urls...),
				Tags: tt.tags,
			})
			require.Error(t, err)
			assert.True(t, backends.IsPermanent(err))
			assert.ErrorContains(t, err, tt.message)
			assert.Equal(t, []string{"/fine"}, n.uris(), "the good URL is purged")
			assert.Contains(t, res.Detail, "objects refused")
			failed, ok := backends.FailedObjects(err)
			require.True(t, ok, "only the refused objects failed")
			assert.Equal(t, backends.Request{URLs: tt.urls, Tags: tt.tags}, failed)
		})
	}

	t.Run("with a node down", func(t *testing.T) {
		t.Parallel()
		n := newFakeNode(t)
		b := newBackend(t, httppurge.WithNodes(n.URL, downNode(t)))
		_, err := b.Purge(t.Context(), backends.NewRequest([]string{"/no-host", "http://h/a"}, nil))
		require.Error(t, err)
		assert.False(t, backends.IsPermanent(err), "the node that is down is retried")
		assert.ErrorContains(t, err, "WithSiteHost")
	})
}

// Tags are split over as many requests as needed to keep each header
// within MaxHeaderBytes; a tag too long to fit fails on its own.
func TestTagsSplit(t *testing.T) {
	t.Parallel()
	n := newFakeNode(t)
	mode := httppurge.XKey()
	mode.MaxHeaderBytes = 100
	b := newBackend(t, httppurge.WithNodes(n.URL), httppurge.WithTagMode(mode))
	var tags []string
	for i := range 60 {
		tags = append(tags, fmt.Sprintf("tag-%03d", i)) // 7 bytes, 8 with the space
	}
	long := strings.Repeat("x", 101)
	_, err := b.Purge(t.Context(), backends.Request{Tags: append(append([]string(nil), tags...), long)})
	require.Error(t, err)
	assert.True(t, backends.IsPermanent(err))
	assert.ErrorContains(t, err, "do not fit in one xkey-purge header of 100 bytes")

	var got []string
	reqs := n.requests()
	for _, r := range reqs {
		v := r.Header.Get("xkey-purge")
		assert.LessOrEqual(t, len(v), 100)
		got = append(got, strings.Fields(v)...)
	}
	assert.Len(t, reqs, 5, "12 tags of 8 bytes per 100-byte header")
	assert.ElementsMatch(t, tags, got)
}

// At most WithNodeConcurrency requests are in flight to a node, across
// concurrent calls.
func TestNodeConcurrency(t *testing.T) {
	t.Parallel()
	n := newFakeNode(t)
	release := make(chan struct{})
	n.answer(func(w http.ResponseWriter, _ *http.Request) { <-release })
	b := newBackend(t, httppurge.WithNodes(n.URL), httppurge.WithSiteHost("h"), httppurge.WithNodeConcurrency(3))
	var wg sync.WaitGroup
	for call := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var urls []string
			for i := range 10 {
				urls = append(urls, fmt.Sprintf("/%d/%d", call, i))
			}
			_, err := b.Purge(context.Background(), backends.NewRequest(urls, nil))
			assert.NoError(t, err)
		}()
	}
	require.Eventually(t, func() bool { return n.inFlight.Load() == 3 }, 5*time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	assert.Equal(t, int64(3), n.maxFlown.Load())
	assert.Len(t, n.requests(), 20)
	assert.LessOrEqual(t, n.conns.Load(), int64(3), "connections are kept alive and reused")
}

// Purge fails for good once the backend is closed.
func TestClosed(t *testing.T) {
	t.Parallel()
	n := newFakeNode(t)
	b, err := httppurge.New(httppurge.WithNodes(n.URL), httppurge.WithSiteHost("h"), httppurge.WithLogger(quiet))
	require.NoError(t, err)
	require.NoError(t, b.Close(t.Context()))
	require.NoError(t, b.Close(t.Context()), "Close twice")
	_, err = b.Purge(t.Context(), backends.NewRequest([]string{"/a"}, nil))
	assert.ErrorIs(t, err, httppurge.ErrClosed)
	assert.True(t, backends.IsPermanent(err))
	assert.Empty(t, n.requests())
}

// Bad settings are reported by New, each naming its option.
func TestOptionsValidated(t *testing.T) {
	t.Parallel()
	discover := httppurge.WithDiscovery(func(context.Context) ([]string, error) { return nil, nil })
	tests := []struct {
		name string
		opts []httppurge.Option
		want string
	}{
		{"no nodes", nil, "no nodes: use WithNodes"},
		{"empty WithNodes", []httppurge.Option{httppurge.WithNodes()}, "WithNodes(): name at least one node"},
		{"nodes and discovery", []httppurge.Option{httppurge.WithNodes("h:1"), discover}, "use one of them, not both"},
		{"nil discovery", []httppurge.Option{httppurge.WithDiscovery(nil)}, "WithDiscovery(nil)"},
		{"node with a path", []httppurge.Option{httppurge.WithNodes("http://h:1/purge")}, `WithNodes("http://h:1/purge"): a node is a base URL`},
		{"node scheme", []httppurge.Option{httppurge.WithNodes("ftp://h")}, `scheme "ftp"`},
		{"node credentials", []httppurge.Option{httppurge.WithNodes("http://u:hunter2@h")}, `WithNodes("http://REDACTED@h"): credentials in the URL`},
		{"node twice", []httppurge.Option{httppurge.WithNodes("h:1", "http://H:1")}, "http://h:1 is named twice"},
		{"site host URL", []httppurge.Option{httppurge.WithNodes("h:1"), httppurge.WithSiteHost("https://www.example.com")}, "not a URL"},
		{"empty site host", []httppurge.Option{httppurge.WithNodes("h:1"), httppurge.WithSiteHost("")}, `WithSiteHost("")`},
		{"method", []httppurge.Option{httppurge.WithNodes("h:1"), httppurge.WithMethod("PUR GE")}, `WithMethod("PUR GE")`},
		{"header name", []httppurge.Option{httppurge.WithNodes("h:1"), httppurge.WithHeader("a b", "c")}, `WithHeader("a b"`},
		{"header value", []httppurge.Option{httppurge.WithNodes("h:1"), httppurge.WithHeader("X", "a\r\nb")}, "control character"},
		{"framing header", []httppurge.Option{httppurge.WithNodes("h:1"), httppurge.WithHeader("content-length", "5")}, "sets this header itself"},
		{"host header", []httppurge.Option{httppurge.WithNodes("h:1"), httppurge.WithHeader("Host", "x")}, "WithSiteHost"},
		{"tag mode", []httppurge.Option{httppurge.WithNodes("h:1"), httppurge.WithTagMode(httppurge.TagMode{Method: "PURGE", Header: "xkey"})}, "Separator is empty"},
		{"concurrency", []httppurge.Option{httppurge.WithNodes("h:1"), httppurge.WithNodeConcurrency(0)}, "WithNodeConcurrency(0)"},
		{"timeout", []httppurge.Option{httppurge.WithNodes("h:1"), httppurge.WithRequestTimeout(0)}, "WithRequestTimeout(0s)"},
		{"max objects", []httppurge.Option{httppurge.WithNodes("h:1"), httppurge.WithMaxObjects(0)}, "WithMaxObjects(0)"},
		{"interval", []httppurge.Option{discover, httppurge.WithDiscoveryInterval(-1)}, "WithDiscoveryInterval(-1ns)"},
		{"client", []httppurge.Option{httppurge.WithNodes("h:1"), httppurge.WithHTTPClient(nil)}, "WithHTTPClient(nil)"},
		{"TLS config", []httppurge.Option{httppurge.WithNodes("h:1"), httppurge.WithTLSConfig(nil)}, "WithTLSConfig(nil)"},
		{"client and TLS config", []httppurge.Option{httppurge.WithNodes("h:1"), httppurge.WithHTTPClient(http.DefaultClient),
			httppurge.WithTLSConfig(&tls.Config{})}, "set the TLS settings in the client's Transport"},
		{"logger", []httppurge.Option{httppurge.WithNodes("h:1"), httppurge.WithLogger(nil)}, "WithLogger(nil)"},
		{"name", []httppurge.Option{httppurge.WithNodes("h:1"), httppurge.WithName("my cache")}, `WithName("my cache")`},
		{"nil option", []httppurge.Option{httppurge.WithNodes("h:1"), nil}, "an Option is nil: remove it, or pass one made by a With... function"},
		{"only a nil option", []httppurge.Option{nil}, "an Option is nil: remove it, or pass one made by a With... function"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := httppurge.New(tt.opts...)
			require.Error(t, err)
			assert.Nil(t, b)
			assert.ErrorContains(t, err, tt.want)
			assert.ErrorContains(t, err, "httppurge: invalid configuration")
			assert.NotContains(t, err.Error(), "hunter2", "a password never reaches the error")
		})
	}
	t.Run("every problem at once", func(t *testing.T) {
		_, err := httppurge.New(httppurge.WithNodeConcurrency(0), httppurge.WithMaxObjects(0))
		assert.ErrorContains(t, err, "no nodes")
		assert.ErrorContains(t, err, "WithNodeConcurrency(0)")
		assert.ErrorContains(t, err, "WithMaxObjects(0)")
	})
}

// Name and Limits tell the dispatcher how to call the backend.
func TestNameAndLimits(t *testing.T) {
	t.Parallel()
	b := newBackend(t, httppurge.WithNodes("10.0.0.5:6081"))
	assert.Equal(t, "httppurge", b.Name())
	assert.Equal(t, backends.Limits{MaxObjects: httppurge.DefaultMaxObjects}, b.Limits())
	assert.Equal(t, []string{"http://10.0.0.5:6081"}, b.Nodes())
	b = newBackend(t, httppurge.WithNodes("https://10.0.0.5"), httppurge.WithName("varnish"), httppurge.WithMaxObjects(50))
	assert.Equal(t, "varnish", b.Name())
	assert.Equal(t, 50, b.Limits().MaxObjects)
	assert.Equal(t, []string{"https://10.0.0.5"}, b.Nodes())
}
