package akamai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/gormpurge/gormpurge/backends"
)

// canonicalURLs turns the URLs of a Request into the objects Akamai
// expects: the canonical form ([backends.CanonicalURL]: lower-case host in
// punycode, path and query percent-encoded one way, no fragment) as an
// absolute https URL, with site-relative paths expanded to every configured
// hostname, and duplicates removed across http and https (one Fast Purge
// URL purges both schemes). The order of first appearance is kept. URLs
// that cannot be purged are returned in bad with the reason, redacted.
func canonicalURLs(urls, hosts []string) (out []string, bad []Rejected) {
	seen := make(map[string]bool, len(urls))
	add := func(u string) {
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	for _, raw := range urls {
		c, err := backends.CanonicalURL(raw)
		if err != nil {
			bad = append(bad, Rejected{Object: backends.RedactURL(raw), Reason: err.Error()})
			continue
		}
		if c[0] == '/' {
			if len(hosts) == 0 {
				bad = append(bad, Rejected{Object: c, Reason: "a site-relative path needs WithHostnames to become an absolute URL"})
				continue
			}
			for _, h := range hosts {
				add("https://" + h + c)
			}
			continue
		}
		add(httpsForm(c))
	}
	return out, bad
}

// httpsForm returns the https URL of a canonical absolute URL: Fast Purge
// purges the http and https forms of a page with one URL.
func httpsForm(c string) string {
	rest, ok := strings.CutPrefix(c, "http://")
	if !ok {
		return c
	}
	host, path, _ := strings.Cut(rest, "/")
	host = strings.TrimSuffix(host, ":443") // the default port of https
	return "https://" + host + "/" + path
}

// forbiddenTagChars are the characters Akamai does not allow in a cache tag.
const forbiddenTagChars = " ,\"=()?;/[]<>*@\\{}:"

// MaxTagLength is the longest cache tag Akamai accepts, in characters.
const MaxTagLength = 128

// MaxTagsPerObject is how many cache tags Akamai keeps for one object
// (https://techdocs.akamai.com/purge-cache/docs/purge-content-by-cache-tag,
// "Limitations": 128 tags of up to 128 characters per object).
const MaxTagsPerObject = 128

// CheckTag reports why Fast Purge would refuse tag, if it would: Akamai's
// own limits (length, forbidden characters, printable ASCII only) on top of
// the canonical rule of [backends.CanonicalTag], for the tag as it is sent
// ([TagForm]). Tools that take tags from users, such as the gormpurge
// command, check them with it before sending.
func CheckTag(tag string) error { return checkTag(TagForm(tag)) }

// TagForm returns tag as the backend sends it to Akamai, and as pages must
// name it in their Edge-Cache-Tag header: each ':' replaced by '.', since
// Akamai forbids ':' and gormpurge's read tags hold one ("posts:42" is
// "posts.42" on Akamai). Every other tag is sent as it is.
func TagForm(tag string) string { return strings.ReplaceAll(tag, ":", ".") }

// EdgeCacheTagHeader is Akamai's Edge-Cache-Tag, for gormpurge's read
// tags (gormpurge.WithTagHeaders): tags in their Akamai form ([TagForm]),
// separated by commas, at most [MaxTagsPerObject] of at most
// [MaxTagLength] characters.
func EdgeCacheTagHeader() backends.TagHeader {
	return backends.TagHeader{Name: "Edge-Cache-Tag", Separator: ',', MaxTags: MaxTagsPerObject, MaxTagBytes: MaxTagLength, Spell: TagForm}
}

// checkTag reports why Akamai would refuse tag, if it would.
func checkTag(tag string) error {
	switch {
	case tag == "":
		return fmt.Errorf("empty tag")
	case len(tag) > MaxTagLength:
		return fmt.Errorf("longer than %d characters", MaxTagLength)
	}
	if i := strings.IndexAny(tag, forbiddenTagChars); i >= 0 {
		return fmt.Errorf("character %q is not allowed in an Akamai cache tag", tag[i])
	}
	for i := 0; i < len(tag); i++ {
		if c := tag[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("byte %#x at %d: a cache tag is sent in an HTTP header and must be printable ASCII", c, i)
		}
	}
	return nil
}

// Body framing: {"objects":[ ... ]}.
const (
	bodyOpen  = `{"objects":[`
	bodyClose = `]}`
)

// encodeStrings returns the JSON body {"objects":[...]} for objects,
// without HTML escaping (which would turn < > & into six bytes each) and
// without a trailing newline.
func encodeStrings(objects []string) []byte {
	var buf bytes.Buffer
	buf.Grow(len(bodyOpen) + len(bodyClose) + bodySizeEstimate(objects))
	buf.WriteString(bodyOpen)
	var enc *json.Encoder
	for i, o := range objects {
		if i > 0 {
			buf.WriteByte(',')
		}
		if jsonLen(o) == len(o)+2 { // nothing to escape: the common case
			buf.WriteByte('"')
			buf.WriteString(o)
			buf.WriteByte('"')
			continue
		}
		if enc == nil {
			enc = json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
		}
		_ = enc.Encode(o)           // a string always encodes
		buf.Truncate(buf.Len() - 1) // Encode's newline
	}
	buf.WriteString(bodyClose)
	return buf.Bytes()
}

func bodySizeEstimate(objects []string) int {
	n := 0
	for _, o := range objects {
		n += len(o) + 3
	}
	return n
}

// jsonLen returns the length of s encoded as a JSON string by
// encoding/json with HTML escaping off, quotes included.
func jsonLen(s string) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f':
				n += 2
			case c < ' ':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			n += 6 // \ufffd
		case r == '\u2028' || r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}

// bodyLen returns len(encodeStrings(objects)), stopping early once the
// length passes limit (limit <= 0: no limit).
func bodyLen(objects []string, limit int) int {
	n := len(bodyOpen) + len(bodyClose)
	for i, o := range objects {
		if i > 0 {
			n++
		}
		n += jsonLen(o)
		if limit > 0 && n > limit {
			return n
		}
	}
	return n
}

// encode returns the body of a request for objects of kind: CP codes as
// JSON numbers, URLs and tags as JSON strings.
func encode(kind Kind, objects []string) []byte {
	if kind == KindCPCode {
		var buf bytes.Buffer
		buf.WriteString(bodyOpen)
		buf.WriteString(strings.Join(objects, ","))
		buf.WriteString(bodyClose)
		return buf.Bytes()
	}
	return encodeStrings(objects)
}
