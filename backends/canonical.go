package backends

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
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

// CanonicalHost returns the canonical form of a URL's host and optional
// port, as [CanonicalURL] writes it for scheme ("http" or "https"):
// lower-case, punycode for an internationalised name, no trailing dot, no
// default port. An IPv6 literal keeps its brackets. Errors wrap
// [ErrInvalidURL] and do not quote hostport.
func CanonicalHost(scheme, hostport string) (string, error) {
	name, port := hostport, ""
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", fmt.Errorf("%w: host: unclosed IPv6 literal", ErrInvalidURL)
		}
		name, port = hostport[:end+1], hostport[end+1:]
		if port != "" && port[0] != ':' {
			return "", fmt.Errorf("%w: host: text after the IPv6 literal", ErrInvalidURL)
		}
		addr, err := netip.ParseAddr(name[1 : len(name)-1])
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return "", fmt.Errorf("%w: host: not an IPv6 address", ErrInvalidURL)
		}
		name = "[" + addr.String() + "]"
	} else {
		if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
			name, port = hostport[:i], hostport[i:]
		}
		var err error
		if name, err = canonicalHostName(name); err != nil {
			return "", err
		}
	}
	if port != "" {
		digits := port[1:]
		if digits == "" { // "host:" is "host"
			port = ""
		} else {
			n, err := strconv.Atoi(digits)
			if err != nil || n < 1 || n > 65535 || strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
				return "", fmt.Errorf("%w: port: not a number from 1 to 65535", ErrInvalidURL)
			}
			port = ":" + strconv.Itoa(n)
			if scheme == "http" && n == 80 || scheme == "https" && n == 443 {
				port = ""
			}
		}
	}
	return name + port, nil
}

// canonicalHostName lower-cases a host name, converts an internationalised
// one to punycode and drops a trailing dot. An ASCII name is only checked
// for characters that cannot be in a host: IDNA's stricter rules would
// refuse real names such as "my_host".
func canonicalHostName(name string) (string, error) {
	name = strings.TrimSuffix(name, ".")
	if name == "" {
		return "", fmt.Errorf("%w: no host", ErrInvalidURL)
	}
	if !isASCII(name) {
		a, err := idna.Lookup.ToASCII(name)
		if err != nil {
			return "", fmt.Errorf("%w: host: not a valid internationalised name", ErrInvalidURL)
		}
		name = strings.TrimSuffix(a, ".")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(isAlnum(c) || c == '-' || c == '.' || c == '_') {
			return "", fmt.Errorf("%w: host: character %q is not allowed", ErrInvalidURL, c)
		}
	}
	if name == "" || name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, "..") {
		return "", fmt.Errorf("%w: host: an empty label", ErrInvalidURL)
	}
	return strings.ToLower(name), nil
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

// RedactURL returns s with anything that may be a secret replaced by
// "REDACTED": the user information of a URL (a user name, which may be a
// token, and a password) and the value of every query parameter; the
// fragment is dropped. It works on strings that do not parse as URLs, and
// errs on the side of hiding more, so that an error or a log line about a
// malformed URL never quotes a credential. Use it wherever a URL that came
// from configuration or from a model reaches an error, a log line or a
// panic message.
func RedactURL(s string) string {
	// User information ends at the last "@": a careless password may hold
	// "/", "?" or "#", so the "@" is looked for before anything is cut.
	start := -1 // where user information could begin
	if i := strings.Index(s, "//"); i >= 0 {
		start = i + 2
	} else if !strings.HasPrefix(s, "/") {
		start = 0 // "user:password@host" without a scheme
	}
	if start >= 0 {
		if at := strings.LastIndexByte(s[start:], '@'); at >= 0 {
			s = s[:start] + "REDACTED" + s[start+at:]
		}
	}
	head, query, hasQuery := strings.Cut(s, "?")
	if i := strings.IndexByte(head, '#'); i >= 0 {
		head, query, hasQuery = head[:i], "", false
	}
	if !hasQuery {
		return head
	}
	query, _, _ = strings.Cut(query, "#")
	if query == "" {
		return head + "?"
	}
	parts := strings.Split(query, "&")
	for i, p := range parts {
		if name, _, ok := strings.Cut(p, "="); ok {
			parts[i] = name + "=REDACTED"
		} else if p != "" {
			parts[i] = "REDACTED"
		}
	}
	return head + "?" + strings.Join(parts, "&")
}

// redactScheme keeps an error about an unsupported scheme from quoting a
// credential when the value was "user:password@host" without a scheme.
func redactScheme(s string) string {
	if len(s) > 16 || strings.ContainsAny(s, "@:/") {
		return "…"
	}
	return s
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

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

// ObjectError reports a URL or tag of a [Request] that has no canonical
// form. Object is redacted ([RedactURL]) so that it can be logged.
type ObjectError struct {
	Kind   string // "url" or "tag"
	Object string // the refused URL or tag, redacted
	Err    error  // wraps ErrInvalidURL or ErrInvalidTag
}

func (e *ObjectError) Error() string {
	return fmt.Sprintf("%s %q refused: %v", e.Kind, e.Object, e.Err)
}

// Unwrap returns the reason.
func (e *ObjectError) Unwrap() error { return e.Err }

// CanonicalRequest returns r with every URL and tag in its canonical form
// ([CanonicalURL], [CanonicalTag]), normalised as [NewRequest] does, and
// the objects that have none as one *ObjectError each, joined. The
// returned Request holds every valid object, so a caller purges it and
// reports the error. Sinks and backends that take requests from users'
// code call it, so that each backend receives the same names for the same
// page whoever built the request.
func CanonicalRequest(r Request) (Request, error) {
	if isCanonicalList(r.URLs, CanonicalURL) && isCanonicalList(r.Tags, CanonicalTag) {
		return r, nil // the common case: a request the plugin built
	}
	var errs []error
	urls := make([]string, 0, len(r.URLs))
	for _, u := range r.URLs {
		if u == "" {
			continue
		}
		c, err := CanonicalURL(u)
		if err != nil {
			errs = append(errs, &ObjectError{Kind: "url", Object: RedactURL(u), Err: err})
			continue
		}
		urls = append(urls, c)
	}
	tags := make([]string, 0, len(r.Tags))
	for _, t := range r.Tags {
		if t == "" {
			continue
		}
		c, err := CanonicalTag(t)
		if err != nil {
			errs = append(errs, &ObjectError{Kind: "tag", Object: t, Err: err})
			continue
		}
		tags = append(tags, c)
	}
	return Request{URLs: normalise(urls), Tags: normalise(tags)}, errors.Join(errs...)
}

// isCanonicalList reports whether list is sorted, free of duplicates and
// empty strings, and made of canonical values only.
func isCanonicalList(list []string, canonical func(string) (string, error)) bool {
	for i, s := range list {
		if s == "" || i > 0 && list[i-1] >= s {
			return false
		}
		if c, err := canonical(s); err != nil || c != s {
			return false
		}
	}
	return true
}
