package gormpurge

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/gormpurge/gormpurge/backends"
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

// normalizeURL validates raw and returns its canonical form
// ([backends.CanonicalURL]): an absolute URL or, with no base URL set, a
// site-relative path. With a base URL, paths and relative references are
// resolved against it, and an absolute URL must be on the base URL's host
// or one WithAllowedHosts names. A value beginning with "//" is always
// refused: a user-chosen slug behind "/" + slug must not name another host.
// Errors wrap ErrInvalidURL or ErrForeignHost and never quote raw.
func (p *urlPolicy) normalizeURL(raw string) (string, error) {
	if p.base != nil && !hasScheme(raw) && !strings.HasPrefix(raw, "//") {
		if strings.HasPrefix(raw, "/") { // an absolute path replaces the base's path and query
			raw = p.base.Scheme + "://" + p.base.Host + raw
		} else {
			if i := strings.IndexFunc(raw, isControl); i >= 0 {
				return "", fmt.Errorf("%w: control character %q at byte %d", ErrInvalidURL, raw[i], i)
			}
			ref, err := url.Parse(raw)
			if err != nil {
				return "", fmt.Errorf("%w: a relative reference that does not parse", ErrInvalidURL)
			}
			raw = p.base.ResolveReference(ref).String()
		}
	}
	n, err := backends.CanonicalURL(raw)
	if err != nil {
		return "", err
	}
	if n[0] == '/' || p.allowedHosts == nil {
		return n, nil
	}
	if host := hostnameOf(n); !p.allowedHosts[host] {
		return "", fmt.Errorf("%w: %q", ErrForeignHost, host)
	}
	return n, nil
}

// hasScheme reports whether s begins with a URL scheme and "://".
func hasScheme(s string) bool {
	scheme, _, ok := strings.Cut(s, "://")
	if !ok || scheme == "" {
		return false
	}
	for i := 0; i < len(scheme); i++ {
		c := scheme[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// hostnameOf returns the host name, without port, of a canonical absolute
// URL.
func hostnameOf(canonical string) string {
	_, rest, _ := strings.Cut(canonical, "://")
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		return rest[:end+1]
	}
	host, _, _ := strings.Cut(rest, ":")
	return host
}

// normalizeTag validates a cache tag ([backends.CanonicalTag]): tags travel
// in HTTP headers separated by spaces or commas, so those are refused along
// with control characters.
func normalizeTag(tag string) (string, error) {
	return backends.CanonicalTag(tag)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// newURLPolicy validates the base URL and host allow-list options. With a
// base URL, absolute URLs must be on its host or on one the allow-list
// names.
func newURLPolicy(base string, hosts []string) (*urlPolicy, error) {
	p := &urlPolicy{}
	if base != "" {
		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" || u.User != nil {
			return nil, fmt.Errorf("gormpurge: WithBaseURL(%q): want an absolute http or https URL without user information, such as \"https://www.example.com\"", backends.RedactURL(base))
		}
		c, err := backends.CanonicalURL(u.Scheme + "://" + u.Host + "/")
		if err != nil {
			return nil, fmt.Errorf("gormpurge: WithBaseURL(%q): %w", backends.RedactURL(base), err)
		}
		u.Scheme, u.Host, _ = strings.Cut(strings.TrimSuffix(c, "/"), "://")
		u.Fragment, u.RawFragment = "", ""
		if u.Path == "" {
			u.Path = "/"
		}
		p.base = u
	}
	if len(hosts) > 0 || p.base != nil {
		p.allowedHosts = make(map[string]bool, len(hosts)+1)
		for _, h := range hosts {
			h = strings.TrimSpace(h)
			if h == "" || strings.ContainsAny(h, "/:@ ") {
				return nil, fmt.Errorf("gormpurge: WithAllowedHosts: %q is not a host name (give names like \"www.example.com\", without scheme or port)", backends.RedactURL(h))
			}
			c, err := backends.CanonicalHost("https", h)
			if err != nil {
				return nil, fmt.Errorf("gormpurge: WithAllowedHosts: %q: %w", h, err)
			}
			p.allowedHosts[c] = true
		}
		if p.base != nil {
			p.allowedHosts[hostnameOf(p.base.Scheme+"://"+p.base.Host)] = true
		}
	}
	return p, nil
}
