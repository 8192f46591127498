package httppurge

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultMaxHeaderBytes is the largest tag header value the presets send in
// one request. Varnish refuses a request header line longer than its
// http_req_hdr_len parameter, 8 KB by default, name included; this leaves
// room for the name.
const DefaultMaxHeaderBytes = 8000

// TagMode says how cache tags are purged: each request sends Method to
// Path with the tags in one header, Header: Prefix, then the tags (each
// passed through Quote when it is set) joined by Separator, then Suffix.
// Tags that do not fit in MaxHeaderBytes go in further requests. A tag the
// cache would not read as one tag (empty, white space, a comma, a control
// character, invalid UTF-8, or Separator when Quote is nil) is refused.
//
// The zero TagMode is [NoTags]: tags are not purged.
type TagMode struct {
	// Method is the HTTP method, such as "PURGE" or "BAN".
	Method string
	// Header is the request header that carries the tags, such as
	// "xkey-purge".
	Header string
	// Path is the request path, perhaps with a query, sent as given:
	// printable ASCII beginning with "/", anything else percent-encoded;
	// "/" when empty.
	Path string
	// Prefix, Separator and Suffix frame the tags in the header value.
	Prefix, Separator, Suffix string
	// Quote, when not nil, is applied to each tag, for example
	// regexp.QuoteMeta for a ban expression.
	Quote func(tag string) string
	// MaxHeaderBytes bounds the header value of one request; 0 means no
	// bound. A tag that does not fit alone fails with a
	// [backends.Permanent] error.
	MaxHeaderBytes int
}

// XKey purges tags with Varnish's xkey module: PURGE / with
// "xkey-purge: tag1 tag2", which the VCL passes to xkey.purge(). It is the
// default.
func XKey() TagMode {
	return TagMode{Method: "PURGE", Header: "xkey-purge", Separator: " ", MaxHeaderBytes: DefaultMaxHeaderBytes}
}

// XKeySoft is [XKey] with the "xkey-softpurge" header, which the VCL passes
// to xkey.softpurge(): objects expire but may still be served stale while
// they are fetched again.
func XKeySoft() TagMode {
	m := XKey()
	m.Header = "xkey-softpurge"
	return m
}

// SurrogateKey purges tags with PURGE / and "Surrogate-Key: tag1 tag2", the
// convention of Fastly-style VCL.
func SurrogateKey() TagMode {
	m := XKey()
	m.Header = "Surrogate-Key"
	return m
}

// BanTags purges tags with a Varnish ban: BAN / with header holding a
// regular expression that matches any of the tags as a space-separated word,
// such as `(^|\s)(tag1|tag2)(\s|$)`. The VCL turns it into a ban, for
// example std.ban("obj.http.xkey ~ " + req.http.X-Ban-Tags).
func BanTags(header string) TagMode {
	return TagMode{
		Method:         "BAN",
		Header:         header,
		Prefix:         `(^|\s)(`,
		Separator:      "|",
		Suffix:         `)(\s|$)`,
		Quote:          regexp.QuoteMeta,
		MaxHeaderBytes: DefaultMaxHeaderBytes,
	}
}

// NoTags does not purge tags, for caches that know none (nginx, Squid):
// the tags of a request are skipped, and Result.Detail counts them. A
// Backend in this mode reports it through [Backend.CanPurgeTags], so that
// dispatcher.New refuses to escalate its handoffs to tags.
func NoTags() TagMode { return TagMode{} }

// enabled reports whether m purges tags.
func (m TagMode) enabled() bool { return m.Method != "" || m.Header != "" }

func (m TagMode) validate() error {
	if !m.enabled() {
		return nil
	}
	var errs []error
	if !isToken(m.Method) {
		errs = append(errs, fmt.Errorf("field Method %q is not a valid HTTP method", m.Method))
	}
	if !isToken(m.Header) {
		errs = append(errs, fmt.Errorf("field Header %q is not a valid header name", m.Header))
	} else if reservedHeader(m.Header) {
		errs = append(errs, fmt.Errorf("field Header %q: the backend sets this header itself; name the header your cache reads the tags from", m.Header))
	}
	if m.Path != "" {
		if _, err := parseTagPath(m.Path); err != nil {
			errs = append(errs, fmt.Errorf("field Path %q: %w", m.Path, err))
		}
	}
	if m.Separator == "" {
		errs = append(errs, errors.New("field Separator is empty: tags would run together"))
	}
	if strings.ContainsFunc(m.Prefix+m.Separator+m.Suffix, isCtl) {
		errs = append(errs, errors.New("field Prefix, Separator or Suffix holds a control character"))
	}
	if m.MaxHeaderBytes < 0 {
		errs = append(errs, fmt.Errorf("field MaxHeaderBytes %d: use 0 for no bound", m.MaxHeaderBytes))
	} else if m.MaxHeaderBytes > 0 && m.MaxHeaderBytes <= len(m.Prefix)+len(m.Suffix) {
		errs = append(errs, fmt.Errorf("field MaxHeaderBytes %d leaves no room for a tag", m.MaxHeaderBytes))
	}
	return errors.Join(errs...)
}

// path returns the request path of tag purges, as sent.
func (m TagMode) path() string {
	if m.Path == "" {
		return "/"
	}
	return m.Path
}

// parseTagPath parses a TagMode's Path, which is sent as the request
// target as it is: a path beginning with "/", and perhaps a query, in
// printable ASCII (anything else percent-encoded), without a fragment.
func parseTagPath(p string) (*url.URL, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, errors.New("must begin with \"/\"")
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return nil, fmt.Errorf("byte %d (%q): only printable ASCII without spaces or \"#\" may be sent as a request target; percent-encode the rest", i, c)
		}
	}
	u, err := url.ParseRequestURI(p)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("not a valid path: %w", err)
	}
	return u, nil
}

// chunks splits tags, in order, into header values that each fit
// MaxHeaderBytes. A tag that cannot be sent is left out: it is in refused,
// and why in bad.
func (m TagMode) chunks(tags []string) (values []string, counts []int, refused []string, bad []error) {
	var (
		b strings.Builder
		n int
	)
	flush := func() {
		if n > 0 {
			b.WriteString(m.Suffix)
			values, counts = append(values, b.String()), append(counts, n)
			b.Reset()
			n = 0
		}
	}
	for _, tag := range tags {
		if err := m.checkTag(tag); err != nil {
			refused, bad = append(refused, tag), append(bad, err)
			continue
		}
		q := tag
		if m.Quote != nil {
			q = m.Quote(tag)
			if strings.ContainsFunc(q, isCtl) {
				refused = append(refused, tag)
				bad = append(bad, fmt.Errorf("httppurge: tag %q: TagMode.Quote returned %q, which holds a control character", tag, q))
				continue
			}
		}
		if m.MaxHeaderBytes > 0 {
			if len(m.Prefix)+len(q)+len(m.Suffix) > m.MaxHeaderBytes {
				refused = append(refused, tag)
				bad = append(bad, fmt.Errorf("httppurge: tag %.40q...: %d bytes do not fit in one %s header of %d bytes (TagMode.MaxHeaderBytes)",
					tag, len(q), m.Header, m.MaxHeaderBytes))
				continue
			}
			if n > 0 && b.Len()+len(m.Separator)+len(q)+len(m.Suffix) > m.MaxHeaderBytes {
				flush()
			}
		}
		if n == 0 {
			b.WriteString(m.Prefix)
		} else {
			b.WriteString(m.Separator)
		}
		b.WriteString(q)
		n++
	}
	flush()
	return values, counts, refused, bad
}

// checkTag reports a tag that cannot be sent in m's header as one tag:
// the caches read tag headers as lists separated by white space or commas,
// so a tag holding one would purge other tags, and a control character
// could end the header.
func (m TagMode) checkTag(tag string) error {
	switch {
	case tag == "":
		return errors.New("httppurge: an empty tag purges nothing")
	case !utf8.ValidString(tag):
		return fmt.Errorf("httppurge: tag %q is not valid UTF-8", tag)
	case strings.ContainsFunc(tag, unicode.IsControl):
		return fmt.Errorf("httppurge: tag %q holds a control character", tag)
	case strings.ContainsFunc(tag, unicode.IsSpace) || strings.Contains(tag, ","):
		return fmt.Errorf("httppurge: tag %q holds white space or a comma, which separate tags in the %s header: the cache would read it as several tags", tag, m.Header)
	case m.Quote == nil && strings.Contains(tag, m.Separator):
		return fmt.Errorf("httppurge: tag %q holds the separator %q of the %s header: the cache would read it as several tags", tag, m.Separator, m.Header)
	}
	return nil
}
