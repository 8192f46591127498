package backends

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sentinel errors of the canonical form. The errors returned by
// [CanonicalURL] and [CanonicalTag] wrap one of them; match with errors.Is.
var (
	// ErrInvalidURL: a purge URL that has no canonical form (a control
	// character, an unsupported scheme, user information, no host, a
	// protocol-relative "//host" form, a malformed host or port).
	ErrInvalidURL = errors.New("invalid purge URL")
	// ErrInvalidTag: a cache tag that cannot travel in an HTTP header
	// list (empty, white space, a comma, a control character or invalid
	// UTF-8).
	ErrInvalidTag = errors.New("invalid cache tag")
)

// CanonicalURL returns the one spelling of a purge URL that every part of
// gormpurge uses: the plugin (so the outbox stores it), the dispatcher,
// every backend, the local cache's keys and purge indexes, the warmer and
// the command. Two spellings of one page (as a user writes it, as a
// browser sends it) have the same canonical form, so a purge of either
// finds what the other cached.
//
// raw is an absolute http or https URL, or a site-relative path beginning
// with a single "/". The canonical form:
//
//   - has a lower-case scheme and host; an internationalised host is
//     converted to punycode (IDNA lookup rules) and a trailing dot dropped;
//   - has no default port (80 for http, 443 for https), no user
//     information (a URL carrying some is refused), and no fragment;
//   - has path "/" when an absolute URL has none, and no "?" when the query
//     is empty;
//   - has its path and query percent-encoded in one way: every byte that
//     RFC 3986 does not allow there (space, non-ASCII, quotes, angle and
//     square brackets, braces, backslash, caret, backquote, "|") is encoded, escapes use upper-case hex, escapes of unreserved characters
//     (letters, digits, "-._~") are decoded, and every other escape is kept
//     as it is, so that "/tags/go%2Ffeed" stays a different page from
//     "/tags/go/feed". A "%" that starts no escape becomes "%25". Nothing is
//     decoded that could change what the server sees: "+" stays "+", and
//     dot segments are kept.
//
// It refuses control characters, a value beginning with "//" (a
// protocol-relative URL would reach whatever host it names), schemes other
// than http and https, and malformed hosts and ports. Errors wrap
// [ErrInvalidURL] and never quote the URL (it may hold a credential: name
// the value with [RedactURL]). CanonicalURL is
// idempotent; the README's "The canonical form" table lists examples.
func CanonicalURL(raw string) (string, error) {
	if isCanonicalPath(raw) || isCanonicalAbsolute(raw) { // the common cases, without allocating
		return raw, nil
	}
	if i := strings.IndexFunc(raw, isControl); i >= 0 {
		return "", fmt.Errorf("%w: control character %q at byte %d", ErrInvalidURL, raw[i], i)
	}
	if !utf8.ValidString(raw) {
		return "", fmt.Errorf("%w: not valid UTF-8", ErrInvalidURL)
	}
	if i := strings.IndexByte(raw, '#'); i >= 0 {
		raw = raw[:i]
	}
	switch {
	case raw == "":
		return "", fmt.Errorf("%w: empty", ErrInvalidURL)
	case strings.HasPrefix(raw, "//"):
		return "", fmt.Errorf("%w: a value beginning with \"//\" names another host; give an absolute URL with its scheme, or a path beginning with a single \"/\"", ErrInvalidURL)
	case raw[0] == '/':
		return escapePathQuery(raw), nil
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "", fmt.Errorf("%w: want an absolute http(s) URL or a path beginning with \"/\"", ErrInvalidURL)
	}
	scheme = strings.ToLower(scheme)
	if scheme != "http" && scheme != "https" {
		return "", fmt.Errorf("%w: unsupported scheme %q (want http or https)", ErrInvalidURL, redactScheme(scheme))
	}
	authority, pathQuery := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, pathQuery = rest[:i], rest[i:]
	}
	if strings.Contains(authority, "@") {
		return "", fmt.Errorf("%w: user information is not allowed in a purge URL", ErrInvalidURL)
	}
	host, err := CanonicalHost(scheme, authority)
	if err != nil {
		return "", err
	}
	switch {
	case pathQuery == "":
		pathQuery = "/"
	case pathQuery[0] == '?':
		pathQuery = "/" + pathQuery
	}
	return scheme + "://" + host + escapePathQuery(pathQuery), nil
}

// CanonicalTag returns the canonical form of a cache tag (surrogate key):
// the tag itself, since tags are opaque and case-sensitive, once it is
// known to travel safely in the space- or comma-separated header lists
// caches read (Surrogate-Key, xkey, Cache-Tag, Edge-Cache-Tag). It refuses
// an empty tag, white space, a comma, a control character and invalid
// UTF-8, with an error that wraps [ErrInvalidTag]. A backend keeps only its
// own extra limits (Akamai's characters and length).
func CanonicalTag(tag string) (string, error) {
	if tag == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidTag)
	}
	if !utf8.ValidString(tag) {
		return "", fmt.Errorf("%w: not valid UTF-8", ErrInvalidTag)
	}
	for i, r := range tag {
		var what string
		switch {
		case r == ',':
			what = "a comma"
		case isControl(r):
			what = "a control character"
		case r == ' ':
			what = "a space"
		case unicode.IsSpace(r):
			what = "white space"
		default:
			continue
		}
		return "", fmt.Errorf("%w: holds %s (%q at byte %d): tags travel in HTTP headers separated by spaces or commas", ErrInvalidTag, what, r, i)
	}
	return tag, nil
}

// escapePathQuery percent-encodes a path with an optional query (no
// fragment) in the canonical way described at [CanonicalURL].
func escapePathQuery(s string) string {
	if isCanonicalPathQuery(s) {
		return s
	}
	var b strings.Builder
	inQuery := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '?' && !inQuery {
			if i == len(s)-1 {
				break // an empty query is no query
			}
			inQuery = true
			b.WriteByte(c)
			continue
		}
		if c == '%' {
			if i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
				v := unhex(s[i+1])<<4 | unhex(s[i+2])
				if isUnreserved(v) {
					b.WriteByte(v)
				} else {
					writeEscape(&b, v)
				}
				i += 2
				continue
			}
			writeEscape(&b, c)
			continue
		}
		if isUnreserved(c) || strings.IndexByte("!$&'()*+,;=:@/", c) >= 0 || inQuery && c == '?' {
			b.WriteByte(c)
			continue
		}
		writeEscape(&b, c)
	}
	return b.String()
}

func writeEscape(b *strings.Builder, c byte) {
	const hex = "0123456789ABCDEF"
	b.WriteByte('%')
	b.WriteByte(hex[c>>4])
	b.WriteByte(hex[c&15])
}

// isCanonicalPathQuery reports whether s, a path with an optional query,
// is already as escapePathQuery would write it.
func isCanonicalPathQuery(s string) bool {
	inQuery := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '?' && !inQuery:
			if i == len(s)-1 {
				return false
			}
			inQuery = true
		case c == '%':
			if i+2 >= len(s) || !isUpperHex(s[i+1]) || !isUpperHex(s[i+2]) || isUnreserved(unhex(s[i+1])<<4|unhex(s[i+2])) {
				return false
			}
			i += 2
		case isUnreserved(c) || strings.IndexByte("!$&'()*+,;=:@/", c) >= 0 || inQuery && c == '?':
		default:
			return false
		}
	}
	return true
}

func isUpperHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }

// isCanonicalAbsolute reports whether s is an absolute URL already in
// canonical form with an ASCII host name (not an IP literal): the plugin
// hands such URLs over with WithBaseURL, and the dispatcher, the outbox
// and the backends see them again, so they are recognised without parsing.
func isCanonicalAbsolute(s string) bool {
	rest, ok := strings.CutPrefix(s, "https://")
	defaultPort := "443"
	if !ok {
		if rest, ok = strings.CutPrefix(s, "http://"); !ok {
			return false
		}
		defaultPort = "80"
	}
	slash := strings.IndexByte(rest, '/')
	if slash <= 0 {
		return false
	}
	host, port, hasPort := strings.Cut(rest[:slash], ":")
	if host == "" || host[0] == '.' || host[len(host)-1] == '.' || strings.Contains(host, "..") {
		return false
	}
	for i := 0; i < len(host); i++ {
		if c := host[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	if hasPort {
		if port == "" || port[0] == '0' || len(port) > 5 || port == defaultPort {
			return false
		}
		for i := 0; i < len(port); i++ {
			if port[i] < '0' || port[i] > '9' {
				return false
			}
		}
		if n, _ := strconv.Atoi(port); n > 65535 {
			return false
		}
	}
	return isCanonicalPathQuery(rest[slash:])
}

// isCanonicalPath reports whether s is a site-relative path, without a
// query, made only of characters the canonical form keeps as they are.
func isCanonicalPath(s string) bool {
	if len(s) == 0 || s[0] != '/' || len(s) > 1 && s[1] == '/' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isUnreserved(c) && c != '/' {
			return false
		}
	}
	return true
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isUnreserved(c byte) bool {
	return isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// FormSpelling returns the other spelling under which caches hold the page
// of a canonical URL whose query holds an encoded space ("%20"): the one
// with "+", as HTML forms send a space, which net/http's query parser reads
// the same. It returns "" when there is none. Purging both spellings keeps a
// page stale under neither, whichever one the visitors' browsers used.
func FormSpelling(canonical string) string {
	path, query, ok := strings.Cut(canonical, "?")
	if !ok || !strings.Contains(query, "%20") {
		return ""
	}
	return path + "?" + strings.ReplaceAll(query, "%20", "+")
}
