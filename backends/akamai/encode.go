package akamai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// canonicalURLs turns the URLs of a Request into the objects Akamai
// expects: absolute https URLs, with site-relative paths expanded to every
// configured hostname, hosts in ASCII (punycode), paths and queries
// percent-encoded, fragments dropped, and duplicates removed across http and
// https (one Fast Purge URL purges both schemes). The order of first
// appearance is kept. URLs that cannot be purged are returned in bad with
// the reason.
func canonicalURLs(urls, hosts []string) (out []string, bad []Rejected) {
	seen := make(map[string]bool, len(urls))
	add := func(u string) {
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	for _, raw := range urls {
		if strings.HasPrefix(raw, "/") && !strings.HasPrefix(raw, "//") {
			if len(hosts) == 0 {
				bad = append(bad, Rejected{Object: raw, Reason: "a site-relative path needs WithHostnames to become an absolute URL"})
				continue
			}
			p, err := canonicalPath(raw)
			if err != nil {
				bad = append(bad, Rejected{Object: raw, Reason: err.Error()})
				continue
			}
			for _, h := range hosts {
				add("https://" + h + p)
			}
			continue
		}
		u, err := canonicalURL(raw)
		if err != nil {
			bad = append(bad, Rejected{Object: redacted(raw), Reason: err.Error()})
			continue
		}
		add(u)
	}
	return out, bad
}

// canonicalURL returns raw as an https URL Akamai accepts.
func canonicalURL(raw string) (string, error) {
	if isCleanHTTPS(raw) { // the common case, without parsing
		return raw, nil
	}
	u, err := url.Parse(escapeStrayPercents(raw))
	if err != nil {
		return "", fmt.Errorf("not a URL: %w", err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", fmt.Errorf("scheme %q: want http or https, or a path beginning with /", u.Scheme)
	}
	if u.User != nil {
		return "", fmt.Errorf("user information is not allowed")
	}
	host, err := asciiHost(u.Host)
	if err != nil {
		return "", err
	}
	// The default port of either scheme names the same page as none.
	if p := u.Port(); scheme == "http" && p == "80" || scheme == "https" && p == "443" {
		host = strings.TrimSuffix(host, ":"+p)
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if u.RawQuery != "" || u.ForceQuery {
		path += "?" + escapeUnsafe(u.RawQuery)
	}
	return "https://" + host + path, nil
}

// canonicalPath returns a site-relative path, with its query, in the form
// Akamai accepts: non-ASCII and unsafe bytes percent-encoded, no fragment.
func canonicalPath(raw string) (string, error) {
	if isCleanPath(raw) {
		return raw, nil
	}
	u, err := url.Parse(escapeStrayPercents(raw))
	if err != nil {
		return "", fmt.Errorf("not a path: %w", err)
	}
	p := u.EscapedPath()
	if u.RawQuery != "" || u.ForceQuery {
		p += "?" + escapeUnsafe(u.RawQuery)
	}
	return p, nil
}

// asciiHost lower-cases host and converts an internationalised name to
// punycode, keeping any port. An ASCII name is only checked for characters
// that cannot be in a host: IDNA's stricter rules would refuse real names
// such as "my_host" or "r4---sn.example".
func asciiHost(host string) (string, error) {
	if host == "" {
		return "", fmt.Errorf("no host")
	}
	name, port := host, ""
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		name, port = host[:i], host[i:]
	}
	if isASCII(name) {
		for i := 0; i < len(name); i++ {
			c := name[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._[]:", c) >= 0) {
				return "", fmt.Errorf("host %q: character %q is not allowed", name, c)
			}
		}
		return strings.ToLower(name) + port, nil
	}
	a, err := idna.Lookup.ToASCII(name)
	if err != nil {
		return "", fmt.Errorf("host %q: %w", name, err)
	}
	return strings.ToLower(a) + port, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// escapeStrayPercents writes a "%" that does not start an escape as "%25",
// so that "/100%-off" is a path and not a parse error.
func escapeStrayPercents(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && (i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2])) {
			b.WriteString("%25")
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// redacted returns raw with any password replaced by "xxxxx", for logs and
// errors.
func redacted(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		return u.Redacted()
	}
	return raw
}

// isCleanHTTPS reports whether s is already a canonical https URL made of
// safe ASCII, with a lower-case host and no fragment, so that it can be sent
// as it is.
func isCleanHTTPS(s string) bool {
	rest, ok := strings.CutPrefix(s, "https://")
	if !ok {
		return false
	}
	slash := strings.IndexByte(rest, '/')
	if slash <= 0 {
		return false
	}
	for i := 0; i < slash; i++ {
		c := rest[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false // upper case, a port or anything unusual: the slow path
		}
	}
	return isCleanPath(rest[slash:])
}

// isCleanPath reports whether s holds only bytes that need no escaping in a
// URL path or query and no fragment, and a well-formed percent-encoding.
func isCleanPath(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			continue
		}
		if c == '#' || unsafeByte(c) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// unsafeByte reports whether c must be percent-encoded in a URL: non-ASCII,
// controls, space and the characters RFC 3986 never allows unescaped.
func unsafeByte(c byte) bool {
	return c <= ' ' || c >= 0x7f || strings.IndexByte(`"<>\^`+"`{|}", c) >= 0
}

// escapeUnsafe percent-encodes the unsafe bytes of s and leaves the rest,
// including existing escapes, alone.
func escapeUnsafe(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unsafeByte(c) || c == '%' && (i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2])) {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// forbiddenTagChars are the characters Akamai does not allow in a cache tag.
const forbiddenTagChars = " ,\"=()?;/[]<>*@\\{}:"

// MaxTagLength is the longest cache tag Akamai accepts, in characters.
const MaxTagLength = 128

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
