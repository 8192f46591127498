package backends

import "testing"

// FuzzCanonicalFastPaths: a value the fast paths take as canonical is one
// the full canonicaliser leaves as it is.
func FuzzCanonicalFastPaths(f *testing.F) {
	for _, s := range []string{
		"/posts/1", "https://www.example.com/a?b=%20", "http://h:8080/", "http://h:80/", "https://h:0443/",
		"https://a..b/", "https://a./", "http://h:99999/", "https://H/", "https://h/a%2f", "https://h/?",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !isCanonicalPath(s) && !isCanonicalAbsolute(s) {
			return
		}
		// The slow path: a fragment marker forces it, and is dropped.
		got, err := CanonicalURL(s + "#")
		if err != nil || got != s {
			t.Fatalf("fast path takes %q as canonical; the canonicaliser gives %q, %v", s, got, err)
		}
	})
}
