package akamai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
)

func TestCanonicalURLs(t *testing.T) {
	tests := []struct {
		name  string
		in    []string
		hosts []string
		want  []string
		bad   []string
	}{
		{"https kept", []string{"https://www.example.com/a?b=1"}, nil, []string{"https://www.example.com/a?b=1"}, nil},
		{"http becomes https", []string{"http://www.example.com/a"}, nil, []string{"https://www.example.com/a"}, nil},
		{"one URL per scheme pair", []string{"http://www.example.com/a", "https://www.example.com/a"}, nil, []string{"https://www.example.com/a"}, nil},
		{"host lower-cased, fragment dropped", []string{"HTTPS://WWW.Example.COM/A#top"}, nil, []string{"https://www.example.com/A"}, nil},
		{"empty path is /", []string{"https://www.example.com"}, nil, []string{"https://www.example.com/"}, nil},
		{"port kept", []string{"https://www.example.com:8443/a"}, nil, []string{"https://www.example.com:8443/a"}, nil},
		{"default ports dropped", []string{"http://www.example.com:80/a", "https://www.example.com:443/a", "https://www.example.com/a"}, nil,
			[]string{"https://www.example.com/a"}, nil},
		{"hosts IDNA would refuse", []string{"https://my_host.example/a", "https://r4---sn-x.example/b"}, nil,
			[]string{"https://my_host.example/a", "https://r4---sn-x.example/b"}, nil},
		{"stray percent", []string{"https://www.example.com/100%-off?x=5%"}, nil, []string{"https://www.example.com/100%25-off?x=5%25"}, nil},
		{"stray percent in a path", []string{"/100%-off"}, []string{"www.example.com"}, []string{"https://www.example.com/100%25-off"}, nil},
		{"non-ASCII path percent-encoded", []string{"https://www.example.com/café"}, nil, []string{"https://www.example.com/caf%C3%A9"}, nil},
		{"non-ASCII query percent-encoded", []string{"https://www.example.com/s?q=crème brûlée"}, nil, []string{"https://www.example.com/s?q=cr%C3%A8me%20br%C3%BBl%C3%A9e"}, nil},
		{"existing escapes kept", []string{"https://www.example.com/a%20b?x=%2F"}, nil, []string{"https://www.example.com/a%20b?x=%2F"}, nil},
		{"IDN host in punycode", []string{"https://Bücher.example/x"}, nil, []string{"https://xn--bcher-kva.example/x"}, nil},
		{"path on every hostname", []string{"/posts/1"}, []string{"www.example.com", "m.example.com"},
			[]string{"https://www.example.com/posts/1", "https://m.example.com/posts/1"}, nil},
		{"path with unsafe bytes", []string{"/a b/<c>"}, []string{"www.example.com"}, []string{"https://www.example.com/a%20b/%3Cc%3E"}, nil},
		{"path without hostnames", []string{"/posts/1"}, nil, nil, []string{"/posts/1"}},
		{"other scheme", []string{"ftp://www.example.com/a"}, nil, nil, []string{"ftp://www.example.com/a"}},
		{"user info, password not repeated", []string{"https://u:p@www.example.com/a"}, nil, nil, []string{"https://REDACTED@www.example.com/a"}},
		{"no host", []string{"https:///a"}, nil, nil, []string{"https:///a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, bad := canonicalURLs(tt.in, tt.hosts)
			assert.Equal(t, tt.want, got)
			var badObjs []string
			for _, r := range bad {
				badObjs = append(badObjs, r.Object)
				assert.NotEmpty(t, r.Reason)
			}
			assert.Equal(t, tt.bad, badObjs)
			for _, u := range got {
				for i := 0; i < len(u); i++ {
					c := u[i]
					require.False(t, c <= ' ' || c >= 0x7f || strings.IndexByte(`"<>\^`+"`{|}", c) >= 0, "%q holds an unsafe byte", u)
				}
			}
		})
	}
}

func TestCheckTag(t *testing.T) {
	for tag, ok := range map[string]bool{
		"post-1":                  true,
		"Post_1.v2":               true,
		"café":                    false,
		strings.Repeat("a", 128):  true,
		"~!#$%&'+-.^_`|":          true,
		strings.Repeat("a", 129):  false,
		"":                        false,
		"two words":               false,
		"a,b":                     false,
		"a:b":                     false,
		"a/b":                     false,
		"a\x01b":                  false,
		string([]byte{0xff, 'a'}): false,
		`q"uote`:                  false,
		"a@b":                     false,
		"{x}":                     false,
	} {
		assert.Equal(t, ok, checkTag(tag) == nil, "tag %q", tag)
	}
}

// encodingJSONLen is the reference: the length encoding/json gives, with
// HTML escaping off.
func encodingJSONLen(s string) int {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return b.Len() - 1
}

func TestJSONLenMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "abc", `a"b\c`, "<&>", "\n\r\t\b\f", "\x00\x1f", "é", "\u2028\u2029", "\xff\xfe", "日本", "\U0001F600"} {
		assert.Equal(t, encodingJSONLen(s), jsonLen(s), "%q", s)
	}
}

func FuzzJSONLen(f *testing.F) {
	f.Add("https://www.example.com/a?b=<c>&d")
	f.Add("\xff\u2028\"")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := jsonLen(s), encodingJSONLen(s); got != want {
			t.Fatalf("jsonLen(%q) = %d, encoding/json gives %d", s, got, want)
		}
	})
}

func TestEncodeBody(t *testing.T) {
	objs := []string{"https://www.example.com/a?x=<1>&y=2", "tag\"q"}
	body := encodeStrings(objs)
	assert.Equal(t, `{"objects":["https://www.example.com/a?x=<1>&y=2","tag\"q"]}`, string(body), "no HTML escaping, no newline")
	assert.Equal(t, len(body), bodyLen(objs, 0))
	assert.Equal(t, `{"objects":[12345,98765]}`, string(encode(KindCPCode, []string{"12345", "98765"})))
}

func testBackend(t *testing.T, opts ...Option) *Backend {
	t.Helper()
	b, err := New(append([]Option{WithCredentials(Credentials{
		Host: "akab-test.luna.akamaiapis.net", ClientToken: "ct", ClientSecret: "cs", AccessToken: "at",
	})}, opts...)...)
	require.NoError(t, err)
	return b
}

func TestPlanFillsRequestsToTheByteLimit(t *testing.T) {
	b := testBackend(t)
	urls := make([]string, 5000)
	for i := range urls {
		urls[i] = fmt.Sprintf("https://www.example.com/articles/%06d?tab=<all>", i)
	}
	chunks := b.plan(KindURL, urls)
	total := 0
	for i, c := range chunks {
		body := encode(KindURL, c)
		require.LessOrEqual(t, len(body), MaxBodyBytes)
		if i < len(chunks)-1 {
			next := jsonLen(chunks[i+1][0]) + 1
			assert.Greater(t, len(body)+next, MaxBodyBytes, "chunk %d could hold one more object", i)
		}
		total += len(c)
	}
	assert.Equal(t, len(urls), total)

	tags := make([]string, 12_000)
	for i := range tags {
		tags[i] = fmt.Sprintf("t%d", i)
	}
	for _, c := range b.plan(KindTag, tags) {
		assert.LessOrEqual(t, len(c), 5000, "no more tags than the bucket holds")
		assert.LessOrEqual(t, len(encode(KindTag, c)), MaxBodyBytes)
	}
}

func TestSizeIsTheBodySent(t *testing.T) {
	b := testBackend(t, WithHostnames("www.example.com", "m.example.com"))
	r := backends.NewRequest([]string{"/a", "/ü?x=<y>", "https://other.example.com/b", "HTTP://Other.example.com/c"}, nil)
	objs, bad := b.objects(KindURL, r)
	require.Empty(t, bad)
	assert.Equal(t, len(encode(KindURL, objs)), b.size(r))

	tags := backends.NewRequest(nil, []string{"a", "b.c", "d~e"})
	objs, _ = b.objects(KindTag, tags)
	assert.Equal(t, len(encode(KindTag, objs)), b.size(tags))
}
