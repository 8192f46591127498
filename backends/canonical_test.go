package backends_test

import (
	"errors"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
)

// readmeCanonicalTable returns the rows of the README's table of canonical
// forms: input and canonical form, or "" where the input is refused.
func readmeCanonicalTable(t *testing.T) [][2]string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(readme), "<!-- canonical-urls:begin -->")
	require.True(t, ok, "README.md has no canonical-urls table")
	table, _, ok := strings.Cut(rest, "<!-- canonical-urls:end -->")
	require.True(t, ok)
	row := regexp.MustCompile("^\\| `([^`]*)` \\| (?:`([^`]*)`|error) \\|$")
	var rows [][2]string
	for line := range strings.SplitSeq(strings.TrimSpace(table), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue // the header
		}
		rows = append(rows, [2]string{m[1], m[2]})
	}
	require.Greater(t, len(rows), 20, "the README's table did not parse")
	return rows
}

func TestCanonicalURLREADMETable(t *testing.T) {
	for _, row := range readmeCanonicalTable(t) {
		in, want := row[0], row[1]
		t.Run(in, func(t *testing.T) {
			got, err := backends.CanonicalURL(in)
			if want == "" {
				require.ErrorIs(t, err, backends.ErrInvalidURL)
				assert.NotContains(t, err.Error(), "secret")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, want, got)
			again, err := backends.CanonicalURL(got)
			require.NoError(t, err)
			assert.Equal(t, got, again, "not idempotent")
		})
	}
}

func TestCanonicalURLRefuses(t *testing.T) {
	for _, in := range []string{
		"", "/a\x00b", "/a\nb", "/a\x7f", "//host/x", "///x", "javascript:alert(1)", "mailto:a@b.example",
		"http://", "http://:80/", "http://a b/", "http://ex%41mple.com/", "http://[::1/", "http://[::1]x/",
		"http://[fe80::1%25eth0]/", "http://host:0/", "http://host:-1/", "http://host:8o/", "http://ho\\st/",
		"https://TOKEN@www.example.com/", "http://a:b@c@d/", "/\xff", "http://host../", "http://.host/", "http://a..b/",
	} {
		_, err := backends.CanonicalURL(in)
		assert.ErrorIs(t, err, backends.ErrInvalidURL, "%q", in)
	}
}

// TestCanonicalURLNeverQuotesCredentials: errors about a URL with user
// information, well or badly formed, never repeat it.
func TestCanonicalURLNeverQuotesCredentials(t *testing.T) {
	for _, in := range []string{
		"https://admin:s3cr3tMARK@www.example.com/",
		"https://admin:s3cr3tMARK@bad host/",
		"http://admin:p%s3cr3tMARK@host/",
		"http://s3cr3tMARK@host:99999/",
		"http://admin:s3cr3tMARK/x@host/",
		"http://admin:s3cr3tMARK@[::1/",
		"HTTP://s3cr3tMARK@ex\u00e4mple..com/",
	} {
		_, err := backends.CanonicalURL(in)
		require.Error(t, err, in)
		assert.NotContains(t, err.Error(), "s3cr3tMARK", in)
	}
}

// TestCanonicalURLMatchesBrowsers: what net/http receives from a client
// that asks for a page has the canonical form of that page's URL, however
// the link was written.
func TestCanonicalURLMatchesBrowsers(t *testing.T) {
	for _, link := range []string{
		"/caf\u00e9", "/caf%c3%a9", "/search?q=caf%C3%A9", "/search?q=caf\u00e9", "/tags/go%2Ffeed", "/a%7e",
	} {
		u, err := url.Parse("http://www.example.com" + link)
		require.NoError(t, err)
		// What a server sees: the escaped path and the raw query.
		sent := u.EscapedPath()
		if u.RawQuery != "" {
			sent += "?" + u.RawQuery
		}
		a, err := backends.CanonicalURL(link)
		require.NoError(t, err)
		b, err := backends.CanonicalURL(sent)
		require.NoError(t, err)
		assert.Equal(t, a, b, link)
	}
}

func TestCanonicalHost(t *testing.T) {
	for _, c := range []struct{ scheme, in, want string }{
		{"http", "WWW.Example.com", "www.example.com"},
		{"http", "www.example.com:80", "www.example.com"},
		{"https", "www.example.com:80", "www.example.com:80"},
		{"https", "www.example.com:0443", "www.example.com"},
		{"http", "www.example.com:", "www.example.com"},
		{"http", "[2001:DB8::1]:8080", "[2001:db8::1]:8080"},
		{"http", "my_host.internal", "my_host.internal"},
		{"https", "xn--bcher-kva.example", "xn--bcher-kva.example"},
	} {
		got, err := backends.CanonicalHost(c.scheme, c.in)
		require.NoError(t, err, c.in)
		assert.Equal(t, c.want, got, c.in)
	}
}

func TestCanonicalTag(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{"post:1", true}, {"Posts", true}, {"caf\u00e9", true}, {"a/b=c", true},
		{"", false}, {"a b", false}, {"a,b", false}, {"a\tb", false}, {"a\u00a0b", false}, {"a\u2028b", false},
		{"a\x00", false}, {"a\r\nX-Injected: 1", false}, {"\xff", false},
	} {
		got, err := backends.CanonicalTag(c.in)
		if !c.ok {
			assert.ErrorIs(t, err, backends.ErrInvalidTag, "%q", c.in)
			continue
		}
		require.NoError(t, err, c.in)
		assert.Equal(t, c.in, got)
	}
}

func TestRedactURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"http://admin:p%ssword@host:6081/x", "http://REDACTED@host:6081/x"},
		{"http://TOKEN@host/", "http://REDACTED@host/"},
		{"http://host/purge?token=abc&x=1", "http://host/purge?token=REDACTED&x=REDACTED"},
		{"http://host/?abc", "http://host/?REDACTED"},
		{"http://u:pa/ss@host/x", "http://REDACTED@host/x"},
		{"http://u:pa?ss@host/x", "http://REDACTED@host/x"},
		{"http://admin:S3CRET#x@varnish:6081", "http://REDACTED@varnish:6081"},
		{"http://S3CRET#@varnish:6081", "http://REDACTED@varnish:6081"},
		{"https://host/x?email=a@b.example", "https://REDACTED@b.example"}, // hides too much, never too little
		{"admin:secret@host:80", "REDACTED@host:80"},
		{"http://[::1]:80/a#frag", "http://[::1]:80/a"},
		{"/posts/1", "/posts/1"},
		{"/users/@bob", "/users/@bob"},
	} {
		assert.Equal(t, c.want, backends.RedactURL(c.in), c.in)
	}
}

// FuzzCanonicalURL: never panics; idempotent; the result is valid UTF-8
// printable ASCII that net/url parses back to itself; and an input with
// user information is refused without being quoted.
func FuzzCanonicalURL(f *testing.F) {
	for _, s := range []string{
		"/posts/1", "HTTPS://WWW.Example.COM", "http://www.example.com:80/a", "https://bücher.example/a",
		"/café?q=a b", "/tags/go%2Ffeed", "/100%", "//evil/x", "http://[::1]:8080/x?y#z", "/a/../b",
		"https://user:pw@host/", "http://host:99999/", "/%zz%2", "/?#", "http://ex.com?a=%e9",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := backends.CanonicalURL(in)
		if err != nil {
			if !errors.Is(err, backends.ErrInvalidURL) {
				t.Fatalf("CanonicalURL(%q): error %v does not wrap ErrInvalidURL", in, err)
			}
			if u, perr := url.Parse(in); perr == nil && u.User != nil {
				if pw, ok := u.User.Password(); ok && len(pw) > 3 && strings.Contains(err.Error(), pw) {
					t.Fatalf("CanonicalURL(%q): error quotes the password: %v", in, err)
				}
			}
			return
		}
		again, err := backends.CanonicalURL(got)
		if err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, got, again, err)
		}
		for i := 0; i < len(got); i++ {
			if c := got[i]; c <= ' ' || c >= 0x7f {
				t.Fatalf("CanonicalURL(%q) = %q: byte %#x at %d", in, got, c, i)
			}
		}
		if !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8 %q", got)
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("CanonicalURL(%q) = %q, which net/url refuses: %v", in, got, err)
		}
		if u.User != nil || u.Fragment != "" {
			t.Fatalf("CanonicalURL(%q) = %q keeps user information or a fragment", in, got)
		}
	})
}

// FuzzCanonicalTag: never panics, idempotent, and an accepted tag is one
// field of a space- or comma-separated header list.
func FuzzCanonicalTag(f *testing.F) {
	for _, s := range []string{"post:1", "a b", "a,b", "caf\u00e9", "\x00", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := backends.CanonicalTag(in)
		if err != nil {
			return
		}
		if again, err := backends.CanonicalTag(got); err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q, %v", got, again, err)
		}
		if fields := strings.FieldsFunc(got, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }); len(fields) != 1 || fields[0] != got {
			t.Fatalf("tag %q is not one header field", got)
		}
	})
}

func TestFormSpelling(t *testing.T) {
	for in, want := range map[string]string{
		"/search?q=go%20gorm":       "/search?q=go+gorm",
		"https://h/s?a=1%202&b=%20": "https://h/s?a=1+2&b=+",
		"/search?q=go+gorm":         "",
		"/a%20b":                    "", // a space in a path is always %20
		"/search?q=a%2520b":         "",
		"https://h/a%20b?q=x":       "",
	} {
		assert.Equal(t, want, backends.FormSpelling(in), in)
	}
}
