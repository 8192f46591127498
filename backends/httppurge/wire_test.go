package httppurge_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/httppurge"
)

// Settings that would reach the request line or the headers other than as
// themselves are refused by New, with the option they came from, and
// without showing a secret they may hold.
func TestWireSettingsValidated(t *testing.T) {
	t.Parallel()
	mode := func(edit func(m *httppurge.TagMode)) httppurge.Option {
		m := httppurge.XKey()
		edit(&m)
		return httppurge.WithTagMode(m)
	}
	tests := []struct {
		name string
		opt  httppurge.Option
		want string
	}{
		{"tag path with a request line", mode(func(m *httppurge.TagMode) { m.Path = "/ HTTP/1.1\r\nX: y" }), "field Path"},
		{"tag path with a space", mode(func(m *httppurge.TagMode) { m.Path = "/a b" }), "field Path"},
		{"tag path with a tab", mode(func(m *httppurge.TagMode) { m.Path = "/a\tb" }), "field Path"},
		{"tag path with a newline", mode(func(m *httppurge.TagMode) { m.Path = "/a\nb" }), "field Path"},
		{"tag path with a DEL", mode(func(m *httppurge.TagMode) { m.Path = "/a\x7f" }), "field Path"},
		{"tag path not ASCII", mode(func(m *httppurge.TagMode) { m.Path = "/é" }), "field Path"},
		{"tag path with a fragment", mode(func(m *httppurge.TagMode) { m.Path = "/a#b" }), "field Path"},
		{"tag path with a bad escape", mode(func(m *httppurge.TagMode) { m.Path = "/a%zz" }), "field Path"},
		{"tag path relative", mode(func(m *httppurge.TagMode) { m.Path = "a" }), "field Path"},
		{"tag header with a colon", mode(func(m *httppurge.TagMode) { m.Header = "X: y" }), "field Header"},
		{"tag header with a newline", mode(func(m *httppurge.TagMode) { m.Header = "X\r\nY" }), "field Header"},
		{"tag header Host", mode(func(m *httppurge.TagMode) { m.Header = "host" }), "field Header"},
		{"tag header Content-Length", mode(func(m *httppurge.TagMode) { m.Header = "Content-Length" }), "field Header"},
		{"tag header Transfer-Encoding", mode(func(m *httppurge.TagMode) { m.Header = "Transfer-Encoding" }), "field Header"},
		{"tag method with a space", mode(func(m *httppurge.TagMode) { m.Method = "PURGE /x HTTP/1.1\r\n" }), "field Method"},
		{"tag prefix with a newline", mode(func(m *httppurge.TagMode) { m.Prefix = "\r\nX: " }), "Prefix"},
		{"tag separator with a newline", mode(func(m *httppurge.TagMode) { m.Separator = "\n" }), "Separator"},
		{"tag suffix with a NUL", mode(func(m *httppurge.TagMode) { m.Suffix = "\x00" }), "Suffix"},
		{"method with a request line", httppurge.WithMethod("PURGE / HTTP/1.1\r\nX: y\r\n\r\nGET"), "WithMethod"},
		{"site host with a newline", httppurge.WithSiteHost("www.example.com\r\nX: y"), "WithSiteHost"},
		{"site host with a space", httppurge.WithSiteHost("www.example.com x"), "WithSiteHost"},
		{"header name with a newline", httppurge.WithHeader("X\r\nY", "1"), "WithHeader"},
		{"header value with a newline", httppurge.WithHeader("X-Token", "1\r\nHost: evil"), "WithHeader"},
		{"header value with a NUL", httppurge.WithHeader("X-Token", "1\x00"), "WithHeader"},
		{"header Transfer-Encoding", httppurge.WithHeader("transfer-encoding", "chunked"), "WithHeader"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := httppurge.New(httppurge.WithNodes("127.0.0.1:6081"), tt.opt)
			require.Error(t, err)
			assert.Nil(t, b)
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

// The secrets a refused setting may hold (a token in a header value,
// credentials in a site host) are not shown.
func TestRefusedSettingsShowNoSecret(t *testing.T) {
	t.Parallel()
	for _, opt := range []httppurge.Option{
		httppurge.WithHeader("Authorization", "Bearer "+secret+"\r\n"),
		httppurge.WithHeader("X-Token", secret+"\x00"),
		httppurge.WithSiteHost("admin:" + secret + "@www.example.com"),
		httppurge.WithSiteHost(secret + "@www.example.com"),
		httppurge.WithSiteHost("https://admin:" + secret + "@www.example.com"),
		httppurge.WithSiteHost("www.example.com/?token=" + secret),
	} {
		_, err := httppurge.New(httppurge.WithNodes("127.0.0.1:6081"), opt)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), secret)
	}
}

// Tag paths with escapes and a query are sent as given, by both clients.
func TestTagPathSentAsGiven(t *testing.T) {
	t.Parallel()
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			n := newFakeNode(t)
			m := httppurge.XKey()
			m.Path = "/purge%2Ftags?via=xkey"
			b := newBackend(t, append(c.opts(t), httppurge.WithNodes(n.URL), httppurge.WithTagMode(m))...)
			_, err := b.Purge(t.Context(), backends.Request{Tags: []string{"a"}})
			require.NoError(t, err)
			assert.Equal(t, []string{"/purge%2Ftags?via=xkey"}, n.uris())
		})
	}
}

// Tags that the cache would read as something else (several tags, a
// header line) are refused one by one, named, as permanent failures of
// those objects only (backends.Partial); the other tags are purged.
func TestInvalidTagsRefusedOneByOne(t *testing.T) {
	t.Parallel()
	bad := []string{
		"",
		"a,b",
		"a b",
		"a\tb",
		"a\u00a0b",
		"a\u2028b",
		"a\r\nX-Injected: 1",
		"a\x00b",
		"a\x7fb",
		"a\u0085b",
		"\xff\xfe",
	}
	modes := []struct {
		name   string
		mode   httppurge.TagMode
		header string
		fields func(v string) []string
	}{
		{"xkey", httppurge.XKey(), "xkey-purge", strings.Fields},
		{"surrogate key", httppurge.SurrogateKey(), "Surrogate-Key", strings.Fields},
		{"ban", httppurge.BanTags("X-Ban-Tags"), "X-Ban-Tags", func(v string) []string {
			inner := strings.TrimSuffix(strings.TrimPrefix(v, `(^|\s)(`), `)(\s|$)`)
			return strings.Split(inner, "|")
		}},
		{"own separator", httppurge.TagMode{Method: "PURGE", Header: "X-Tags", Separator: "|"}, "X-Tags", func(v string) []string {
			return strings.Split(v, "|")
		}},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range clients {
				n := newFakeNode(t)
				b := newBackend(t, append(c.opts(t), httppurge.WithNodes(n.URL), httppurge.WithTagMode(m.mode))...)
				tags := append([]string{"good-1", "post:2"}, bad...)
				wantBad := bad
				if m.name == "own separator" {
					tags = append(tags, "x|y")
					wantBad = append(append([]string(nil), bad...), "x|y")
				}
				res, err := b.Purge(t.Context(), backends.Request{Tags: tags})
				require.Error(t, err, c.name)
				assert.True(t, backends.IsPermanent(err), c.name)
				failed, ok := backends.FailedObjects(err)
				require.True(t, ok, "only the invalid tags failed (%s): %v", c.name, err)
				assert.ElementsMatch(t, wantBad, failed.Tags, c.name)
				assert.Empty(t, failed.URLs, c.name)
				for _, tag := range wantBad[1:] {
					assert.Contains(t, err.Error(), "tag "+strconv.Quote(tag), c.name)
				}
				assert.Contains(t, err.Error(), "empty tag", c.name)
				assert.Contains(t, res.Detail, "objects refused", c.name)

				reqs := n.requests()
				require.Len(t, reqs, 1, c.name)
				assert.Len(t, reqs[0].Header.Values(m.header), 1, c.name)
				assert.Empty(t, reqs[0].Header.Values("X-Injected"), c.name)
				got := m.fields(reqs[0].Header.Get(m.header))
				if m.name == "ban" {
					assert.Equal(t, []string{"good-1", regexp.QuoteMeta("post:2")}, got, c.name)
				} else {
					assert.Equal(t, []string{"good-1", "post:2"}, got, c.name)
				}
			}
		})
	}
}
