package localcache

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// etagListMatches reports whether the If-None-Match field values list
// etag, or are "*", by the weak comparison of RFC 9110, section 8.8.3.2:
// W/ prefixes are ignored. A malformed member ends the search in its field
// value.
func etagListMatches(values []string, etag string) bool {
	etag = strings.TrimPrefix(etag, "W/")
	for _, v := range values {
		for {
			v = strings.TrimLeft(v, " \t,")
			if v == "" {
				break
			}
			if v[0] == '*' {
				return true
			}
			tag, rest, ok := scanETag(v)
			if !ok {
				break
			}
			if tag == etag {
				return true
			}
			v = rest
		}
	}
	return false
}

// scanETag reads the entity-tag at the start of s and returns its
// opaque-tag, quotes included and W/ dropped, and what follows it.
func scanETag(s string) (tag, rest string, ok bool) {
	s = strings.TrimPrefix(s, "W/")
	if len(s) < 2 || s[0] != '"' {
		return "", "", false
	}
	end := strings.IndexByte(s[1:], '"')
	if end < 0 {
		return "", "", false
	}
	return s[:end+2], s[end+2:], true
}

// computeETag returns a strong ETag for body: the first 128 bits of its
// SHA-256, in hex, quoted. It is the same in every process, so instances
// behind one load balancer agree.
func computeETag(body []byte) string {
	sum := sha256.Sum256(body)
	b := make([]byte, 0, 2+2*16)
	b = append(b, '"')
	b = hex.AppendEncode(b, sum[:16])
	b = append(b, '"')
	return string(b)
}
