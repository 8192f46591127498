package localcache

import (
	"bufio"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/gormpurge/gormpurge/backends"
)

func TestAcceptEncoding(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]string{
		"":                              "",
		"gzip":                          "gzip",
		"gzip, deflate, br, zstd":       "gzip",
		"GZip":                          "gzip",
		"br, gzip ;q=0.5":               "gzip",
		"gzip; Q=0.001":                 "gzip",
		"gzip;q=0":                      "",
		"gzip; q=0.000":                 "",
		"gzip;q=soon":                   "",
		"gzip;q=-1":                     "",
		"gzip;q=0, gzip":                "gzip",
		"deflate, br, zstd":             "",
		"*":                             "",
		"x-gzip":                        "",
		"gzipped":                       "",
		"identity":                      "",
		"br;q=1.0, gzip;q=0.8, *;q=0.1": "gzip",
	} {
		assert.Equal(t, want, acceptEncoding(v), "%q", v)
	}
}

// FuzzKeyAgreesWithPurges: for any request target net/http accepts, the
// entry it fills is found by a purge of the same target as a model or an
// operator would write it, and by a purge of its canonical form (what the
// dispatcher hands every backend, and what httppurge sends a cache);
// a request for the canonical form fills the same entry.
func FuzzKeyAgreesWithPurges(f *testing.F) {
	for _, s := range []string{
		"/posts/1", "/caf\u00e9", "/caf%c3%a9", "/tags/go%2Ffeed", "/x?a=b c", "/x?a=b+c", "/search?q=caf%C3%A9",
		"/a/../b", "/%61", "/100%25", "/x?", "/a;b=c", "/~user/", "/a//b", "/x?q=%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		r := readRequest(target)
		if r == nil {
			return // net/http refuses it: no entry can exist
		}
		p := pageOf(r)
		if strings.HasPrefix(p.host, "!") {
			return // a request with no canonical form shares no entry and is purged by no URL
		}
		ix := p.indexes(nil)
		for _, spelling := range []string{target, "http://" + r.Host + target} {
			c, err := backends.CanonicalURL(spelling)
			if err != nil {
				continue
			}
			for _, s := range []string{spelling, c} {
				want, err := purgeIndex(s)
				if err != nil {
					t.Fatalf("purgeIndex(%q): %v, but CanonicalURL accepts it", s, err)
				}
				if !slices.Contains(ix, want) {
					t.Fatalf("a purge of %q looks up %q; the entry for request %q is indexed %q", s, want, target, ix)
				}
			}
			if c[0] == '/' {
				if r2 := readRequest(c); r2 == nil || pageOf(r2).key() != p.key() {
					t.Fatalf("a request for the canonical form %q does not find the entry of %q", c, target)
				}
			}
		}
	})
}

// readRequest parses "GET target HTTP/1.1" as net/http's server does, or
// returns nil when it refuses it.
func readRequest(target string) *http.Request {
	if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n#") { // origin-form, and clients never send a fragment
		return nil
	}
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: www.example.com\r\n\r\n")))
	if err != nil {
		return nil
	}
	return r
}
