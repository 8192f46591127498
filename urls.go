package gormpurge

import (
	"fmt"
	"net/url"
	"strings"
)

// AbsoluteURLer is implemented by a model that has a page of its own, such as
// a post's permalink. AbsoluteURL returns an absolute http(s) URL or a
// site-relative path beginning with "/"; an empty string means "no page".
type AbsoluteURLer interface{ AbsoluteURL() string }

// PurgeURLer is implemented by a model shown on more pages than its own, such
// as a feed or a sitemap. Each entry is an absolute http(s) URL or a
// site-relative path.
type PurgeURLer interface{ PurgeURLs() []string }

// DependentPather is implemented by a model whose change invalidates pages of
// related rows: a post's tag pages, its author's page, the list pages it
// appears on. This is django-dumper's dependent_paths.
type DependentPather interface{ DependentPaths() []string }

// PurgeTagger is implemented by a model whose pages carry cache tags
// (surrogate keys, Akamai Edge-Cache-Tag, Varnish xkey), so that every page
// with the tag can be purged at once.
type PurgeTagger interface{ PurgeTags() []string }

// urlPolicy turns what models return into the URLs handed to the sink. It is
// immutable once the Plugin is built.
type urlPolicy struct {
	base         *url.URL        // nil: site-relative paths are kept as paths
	allowedHosts map[string]bool // nil: any host
}

// normalizeURL validates raw and returns its normal form: an absolute URL with
// a lower-case scheme and host and no fragment, or, with no base URL set, a
// site-relative path. Errors wrap ErrInvalidURL or ErrForeignHost.
func (p *urlPolicy) normalizeURL(raw string) (string, error) {
	if isPlainPath(raw) { // the common case, without parsing
		if p.base == nil {
			return raw, nil
		}
		if p.base.Path == "/" && p.base.RawQuery == "" {
			return p.base.Scheme + "://" + p.base.Host + raw, nil
		}
	}
	if i := strings.IndexFunc(raw, isControl); i >= 0 {
		return "", fmt.Errorf("%w: control character %q at byte %d", ErrInvalidURL, raw[i], i)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	if u.Opaque != "" {
		return "", fmt.Errorf("%w: opaque URL", ErrInvalidURL)
	}
	u.Fragment, u.RawFragment = "", ""
	if !u.IsAbs() && u.Host == "" {
		if p.base != nil {
			u = p.base.ResolveReference(u)
		} else {
			if !strings.HasPrefix(u.Path, "/") {
				return "", fmt.Errorf("%w: a site-relative path must begin with \"/\" (or set WithBaseURL)", ErrInvalidURL)
			}
			u.User = nil
			return u.String(), nil
		}
	}
	if u.Scheme == "" && p.base != nil { // "//host/path"
		u.Scheme = p.base.Scheme
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%w: unsupported scheme %q (want http or https)", ErrInvalidURL, u.Scheme)
	}
	if u.Hostname() == "" {
		return "", fmt.Errorf("%w: no host", ErrInvalidURL)
	}
	if u.User != nil {
		return "", fmt.Errorf("%w: user information is not allowed in a purge URL", ErrInvalidURL)
	}
	u.Host = strings.ToLower(u.Host)
	if p.allowedHosts != nil && !p.allowedHosts[u.Hostname()] {
		return "", fmt.Errorf("%w: %q", ErrForeignHost, u.Hostname())
	}
	if u.Path == "" {
		u.Path = "/"
	}
	return u.String(), nil
}

// normalizeTag validates a cache tag. Tags travel in HTTP headers separated by
// spaces or commas, so those are refused along with control characters.
func normalizeTag(tag string) (string, error) {
	if i := strings.IndexFunc(tag, func(r rune) bool { return isControl(r) || r == ' ' || r == ',' }); i >= 0 {
		return "", fmt.Errorf("%w: character %q at byte %d", ErrInvalidTag, tag[i], i)
	}
	return tag, nil
}

// isPlainPath reports whether s is a site-relative path made only of
// characters that url.Parse and URL.String leave as they are, so that it is
// already in normal form.
func isPlainPath(s string) bool {
	if len(s) == 0 || s[0] != '/' || (len(s) > 1 && s[1] == '/') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '/' || c == '-' || c == '_' || c == '.' || c == '~':
		default:
			return false
		}
	}
	return !strings.Contains(s, "/.")
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// newURLPolicy validates the base URL and host allow-list options.
func newURLPolicy(base string, hosts []string) (*urlPolicy, error) {
	p := &urlPolicy{}
	if base != "" {
		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
			return nil, fmt.Errorf("gormpurge: WithBaseURL(%q): want an absolute http or https URL such as \"https://www.example.com\"", base)
		}
		u.Host = strings.ToLower(u.Host)
		if u.Path == "" {
			u.Path = "/"
		}
		p.base = u
	}
	if len(hosts) > 0 {
		p.allowedHosts = make(map[string]bool, len(hosts)+1)
		for _, h := range hosts {
			h = strings.ToLower(strings.TrimSpace(h))
			if h == "" || strings.ContainsAny(h, "/:@ ") {
				return nil, fmt.Errorf("gormpurge: WithAllowedHosts: %q is not a host name (give names like \"www.example.com\", without scheme or port)", h)
			}
			p.allowedHosts[h] = true
		}
		if p.base != nil {
			p.allowedHosts[p.base.Hostname()] = true
		}
	}
	return p, nil
}
