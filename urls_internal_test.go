package gormpurge

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
)

func TestNormalizeURL(t *testing.T) {
	withBase, err := newURLPolicy("https://WWW.Example.com", []string{"cdn.example.com"})
	require.NoError(t, err)
	noBase, err := newURLPolicy("", nil)
	require.NoError(t, err)
	baseOnly, err := newURLPolicy("https://www.example.com", nil) // no allow-list: only the base URL's host
	require.NoError(t, err)
	idnHosts, err := newURLPolicy("", []string{"ex\u00e4mple.com"})
	require.NoError(t, err)
	for _, tc := range []struct {
		policy  *urlPolicy
		in      string
		want    string
		wantErr error
	}{
		{withBase, "/posts/1", "https://www.example.com/posts/1", nil},
		{withBase, "/posts/1?page=2#comments", "https://www.example.com/posts/1?page=2", nil},
		{withBase, "posts/1", "https://www.example.com/posts/1", nil},
		{withBase, "//cdn.example.com/a", "", ErrInvalidURL},
		{withBase, "//attacker:8080/x", "", ErrInvalidURL},
		{withBase, "/\\attacker/x", "https://www.example.com/%5Cattacker/x", nil},
		{withBase, "https://CDN.example.com:443/a", "https://cdn.example.com/a", nil},
		{withBase, "/tags/go%2ffeed", "https://www.example.com/tags/go%2Ffeed", nil},
		{withBase, "/x?q=caf\u00e9&a=b c", "https://www.example.com/x?q=caf%C3%A9&a=b%20c", nil},
		{withBase, "HTTP://CDN.example.com", "http://cdn.example.com/", nil},
		{withBase, "https://www.example.com/caf\u00e9", "https://www.example.com/caf%C3%A9", nil},
		{withBase, "https://evil.example.net/x", "", ErrForeignHost},
		{withBase, "ftp://www.example.com/x", "", ErrInvalidURL},
		{withBase, "/a\r\nX-Injected: 1", "", ErrInvalidURL},
		{withBase, "/a\x00", "", ErrInvalidURL},
		{withBase, "https://user:pw@www.example.com/", "", ErrInvalidURL},
		{withBase, "https://www.example.com/%zz", "https://www.example.com/%25zz", nil},
		{withBase, "mailto:someone@example.com", "", ErrInvalidURL},
		{noBase, "/posts/1", "/posts/1", nil},
		{noBase, "/caf\u00e9?q=a b", "/caf%C3%A9?q=a%20b", nil},
		{noBase, "//attacker/x", "", ErrInvalidURL},
		{noBase, "https://ex\u00e4mple.com/x", "https://xn--exmple-cua.com/x", nil},
		{noBase, "posts/1", "", ErrInvalidURL},
		{noBase, "https://any.example.org/x", "https://any.example.org/x", nil},
		{noBase, "https://", "", ErrInvalidURL},
		{baseOnly, "https://www.example.com/a", "https://www.example.com/a", nil},
		{baseOnly, "http://www.example.com:8080/a", "http://www.example.com:8080/a", nil},
		{baseOnly, "https://attacker.example/x", "", ErrForeignHost},
		{idnHosts, "https://EX\u00c4MPLE.com/x", "https://xn--exmple-cua.com/x", nil},
		{idnHosts, "https://xn--exmple-cua.com/x", "https://xn--exmple-cua.com/x", nil},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := tc.policy.normalizeURL(tc.in)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestURLPolicyOptionsAreValidated(t *testing.T) {
	for _, tc := range []struct {
		base  string
		hosts []string
		want  string
	}{
		{"www.example.com", nil, `WithBaseURL("www.example.com")`},
		{"ftp://x", nil, "WithBaseURL"},
		{"", []string{"https://x.example.com"}, "WithAllowedHosts"},
		{"", []string{""}, "WithAllowedHosts"},
	} {
		_, err := newURLPolicy(tc.base, tc.hosts)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
	}
}

func TestNormalizeTag(t *testing.T) {
	for in, ok := range map[string]bool{"post-1": true, "a b": false, "a,b": false, "a\nb": false, "Ünïcode": true} {
		_, err := normalizeTag(in)
		assert.Equal(t, ok, err == nil, in)
	}
}

// Resolving against the base URL agrees with resolving by hand, and the
// result is canonical.
func FuzzNormalizeURL(f *testing.F) {
	for _, s := range []string{"/posts/1", "/a/./b", "/a/../b", "//x/y", "/caf\u00e9", "/a?b#c", "/a%20b", "/~user/", "/.", "posts/1", "?q"} {
		f.Add(s)
	}
	base, _ := newURLPolicy("https://www.example.com", nil)
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range []*urlPolicy{base, {}} {
			got, err := p.normalizeURL(s)
			if err != nil {
				continue
			}
			again, err := backends.CanonicalURL(got)
			require.NoError(t, err)
			require.Equal(t, got, again, s)
			if p.base != nil {
				require.True(t, strings.HasPrefix(got, "https://www.example.com/"), "%q escaped the base host: %q", s, got)
			}
		}
	})
}
