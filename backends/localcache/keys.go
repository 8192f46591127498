package localcache

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gormpurge/gormpurge/backends"
)

// Index key prefixes. A page is indexed by its path alone, path and query,
// host and path, and host, path and query, so that each form of purge URL is
// one lookup.
const (
	ixPath          = "p "
	ixPathQuery     = "pq "
	ixHostPath      = "hp "
	ixHostPathQuery = "hpq "
	ixTag           = "t "
)

// keyFuncPrefix begins the keys built by a [WithKeyFunc]. Default keys begin
// with the scheme, so the two never collide.
const keyFuncPrefix = "key "

// page is what identifies a cached page, before Vary.
type page struct {
	scheme, host, path, query string
}

// pageOf returns the page r asks for, in the canonical form
// ([backends.CanonicalURL]) that purges are matched in: escapes of
// reserved characters stay as the client sent them ("/tags/go%2Ffeed" is
// not "/tags/go/feed"), hex is upper case, non-ASCII and unsafe bytes are
// encoded. A request whose host or path has no canonical form gets a page
// that no purge names and no other request shares.
func pageOf(r *http.Request) page {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	target, ok := requestTarget(r)
	if ok {
		if c, err := backends.CanonicalURL(scheme + "://" + r.Host + target); err == nil {
			if p, ok := splitCanonical(c); ok {
				return p
			}
		}
	}
	return page{scheme: scheme, host: "!" + r.Host, path: r.RequestURI + " " + r.URL.String()}
}

// requestTarget returns the path and query r asks for, as the client sent
// them: r.RequestURI, which keeps escapes that r.URL may spell another way
// (net/http re-encodes a path holding a character it thinks needs escaping,
// turning "!" into "%21"). A "#" there is part of the path the handler sees,
// not a fragment, so it is escaped. Requests built in-process have no
// RequestURI and use r.URL. It reports false for a target in another form
// ("*", "host:port", a bare word), or one holding a "%" that starts no
// escape: no purge can name them.
func requestTarget(r *http.Request) (string, bool) {
	target := r.RequestURI
	switch {
	case target == "":
		target = r.URL.EscapedPath()
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		if !strings.HasPrefix(target, "/") {
			return "", false
		}
	case strings.HasPrefix(target, "/"):
	case strings.HasPrefix(strings.ToLower(target), "http://") || strings.HasPrefix(strings.ToLower(target), "https://"):
		// The absolute form, as sent to a proxy: r.Host holds its host.
		rest := target[strings.Index(target, "://")+3:]
		j := strings.IndexAny(rest, "/?")
		if j < 0 {
			return "/", true
		}
		target = rest[j:]
		if target[0] == '?' {
			target = "/" + target
		}
	default:
		return "", false
	}
	// A "%" that starts no escape is canonically "%25", but net/http's query
	// parser drops the pair it is in while it decodes "%25": the two are
	// different pages, and such a target is kept apart.
	for i := 0; i < len(target); i++ {
		if target[i] == '%' && (i+2 >= len(target) || !isHexDigit(target[i+1]) || !isHexDigit(target[i+2])) {
			return "", false
		}
	}
	return strings.ReplaceAll(target, "#", "%23"), true
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// splitCanonical splits a canonical absolute URL into a page.
func splitCanonical(c string) (page, bool) {
	scheme, rest, ok := strings.Cut(c, "://")
	if !ok {
		return page{}, false
	}
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return page{}, false
	}
	path, query, _ := strings.Cut(rest[i:], "?")
	return page{scheme: scheme, host: rest[:i], path: path, query: query}, true
}

// key is the page's base key in the store.
func (p page) key() string {
	return p.scheme + "://" + p.host + p.path + "?" + p.query
}

// indexes lists the index keys of an entry for p with tags.
func (p page) indexes(tags []string) []string {
	ix := make([]string, 0, 4+len(tags))
	ix = append(ix,
		ixPath+p.path,
		ixPathQuery+p.path+"?"+p.query,
		ixHostPath+p.host+p.path,
		ixHostPathQuery+p.host+p.path+"?"+p.query,
	)
	for _, t := range tags {
		ix = append(ix, ixTag+t)
	}
	return ix
}

// encodingKey says how variantKey keys Accept-Encoding.
type encodingKey int

const (
	// reducedEncoding keys Accept-Encoding by what acceptEncoding returns.
	reducedEncoding encodingKey = iota
	// exactEncoding keys Accept-Encoding by its full value.
	exactEncoding
)

// variantKey is the key of the variant of base that r selects, given the
// headers the page varies on. Accept-Encoding is keyed as enc says.
func variantKey(base string, vary []string, r *http.Request, enc encodingKey) string {
	if len(vary) == 0 {
		return base
	}
	var b strings.Builder
	b.WriteString(base)
	for _, name := range vary {
		b.WriteByte('\n') // cannot occur in a header value
		b.WriteString(name)
		value := strings.Join(r.Header.Values(name), ",")
		if name == "Accept-Encoding" && enc == reducedEncoding {
			// '=' keeps these keys apart from full values, after ':'.
			b.WriteByte('=')
			value = acceptEncoding(value)
		} else {
			b.WriteByte(':')
		}
		b.WriteString(value)
	}
	return b.String()
}

// varyKey is the key that e, stored as the response to r, goes under: the
// variant of base that r selects, with r's Accept-Encoding reduced to what
// acceptEncoding returns when e's encoding suits every request that reduces
// in the same way (see sharedEncoding), and in full otherwise.
func varyKey(base string, e *Entry, r *http.Request) string {
	enc := reducedEncoding
	if slices.Contains(e.Vary, "Accept-Encoding") &&
		!sharedEncoding(e.Header, acceptEncoding(strings.Join(r.Header.Values("Accept-Encoding"), ","))) {
		enc = exactEncoding
	}
	return variantKey(base, e.Vary, r, enc)
}

// acceptEncoding reduces an Accept-Encoding field value to "gzip" when it
// lists gzip with a q other than 0, and to "" otherwise, so that browsers
// ("gzip, deflate, br, zstd") and clients that ask for gzip alone share one
// variant, as Varnish does. A malformed q counts as 0.
func acceptEncoding(v string) string {
	for member := range strings.SplitSeq(v, ",") {
		coding, params, _ := strings.Cut(member, ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			name, value, _ := strings.Cut(p, "=")
			if strings.EqualFold(strings.TrimSpace(name), "q") {
				var err error
				if q, err = strconv.ParseFloat(strings.TrimSpace(value), 64); err != nil {
					q = 0
				}
			}
		}
		if q > 0 {
			return "gzip"
		}
	}
	return ""
}

// sharedEncoding reports whether a response with header h, to a request
// whose Accept-Encoding reduces to accept, suits every request that reduces
// to the same: one without Content-Encoding does, and so does a gzip one
// when accept is "gzip". One in another encoding (br, zstd) may be the
// handler's choice for what that request's full Accept-Encoding lists, and
// is kept for requests with that exact value only.
func sharedEncoding(h http.Header, accept string) bool {
	ce := h["Content-Encoding"]
	switch {
	case len(ce) == 0:
		return true
	case len(ce) > 1:
		return false
	}
	v := strings.TrimSpace(ce[0])
	return v == "" || strings.EqualFold(v, "identity") || (accept == "gzip" && strings.EqualFold(v, "gzip"))
}

// purgeIndex returns the index key that a purge of u looks up: a path
// ("/a", "/a?q=1") or an absolute http(s) URL, in canonical form
// ([backends.CanonicalURL]), so that a purge of any spelling of a page
// finds the entries every other spelling filled.
func purgeIndex(u string) (string, error) {
	c, err := backends.CanonicalURL(u)
	if err != nil {
		return "", err
	}
	if c[0] == '/' {
		if strings.Contains(c, "?") {
			return ixPathQuery + c, nil
		}
		return ixPath + c, nil
	}
	p, ok := splitCanonical(c)
	if !ok {
		return "", errors.New("want a path beginning with / or an absolute http(s) URL")
	}
	if strings.Contains(c, "?") {
		return ixHostPathQuery + p.host + p.path + "?" + p.query, nil
	}
	return ixHostPath + p.host + p.path, nil
}

// splitList splits header values on commas and white space, as cache tag
// headers (Surrogate-Key, xkey, Cache-Tag, Edge-Cache-Tag) and Vary are
// written, and drops empty fields.
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		out = append(out, strings.FieldsFunc(v, func(r rune) bool {
			return r == ',' || r == ' ' || r == '\t'
		})...)
	}
	return out
}
