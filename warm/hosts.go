package warm

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/gormpurge/gormpurge/backends"
)

// target is a URL to fetch: as given, and resolved.
type target struct {
	raw  string
	u    *url.URL // absolute; never modified once built
	site bool     // u is on the site: send the credentials and headers
}

// resolve turns raw into the URL to fetch, or an error naming it. A URL
// that is neither on the site nor on an allowed host is refused with an
// error wrapping [ErrRefused].
func (w *Warmer) resolve(raw string) (target, error) {
	shown := redactURL(raw)
	fetch := raw
	if c, err := backends.CanonicalURL(raw); err == nil {
		fetch = c // as the caches key the page, and as purges name it
	}
	u, err := url.Parse(fetch)
	if err != nil {
		if shown != raw {
			// The parser's message may quote a piece of the password.
			return target{}, fmt.Errorf("warm: URL %q: cannot be parsed", shown)
		}
		return target{}, fmt.Errorf("warm: URL %q: %s", shown, parseProblem(err))
	}
	u.Fragment, u.RawFragment = "", ""
	switch {
	case (u.Scheme == "http" || u.Scheme == "https") && u.Host != "":
	case u.Scheme != "" || u.Host != "" || !strings.HasPrefix(raw, "/"):
		return target{}, fmt.Errorf("warm: URL %q: need an absolute http or https URL, or a path beginning with \"/\"", shown)
	case w.cfg.base != nil:
		u = w.cfg.base.ResolveReference(u)
	case w.cfg.handler != nil:
		u.Scheme, u.Host = "http", "localhost"
	default:
		return target{}, fmt.Errorf("warm: URL %q is a path: set WithBaseURL to say which site to fetch it from", shown)
	}
	site, err := w.cfg.allow(u, shown)
	if err != nil {
		return target{}, err
	}
	return target{raw: raw, u: u, site: site}, nil
}

// allow reports whether u, an absolute URL shown as shown, is on the site
// (scheme, host and port of the base URL), or else returns an error
// wrapping ErrRefused unless u is on an allowed host. Without a site and
// an allow-list, every host is allowed (no credentials are configured).
func (c *config) allow(u *url.URL, shown string) (site bool, err error) {
	if u.User != nil {
		return false, &refusal{url: shown, host: u.Host, why: "it has a user or password (credentials are set by WithBasicAuth, for the base URL only)"}
	}
	o := originOf(u)
	switch {
	case c.site != nil && o == *c.site:
		return true, nil
	case c.allowedHosts != nil && c.allowedHosts[o.host]:
		return false, nil
	case c.site == nil && c.allowedHosts == nil:
		return false, nil
	case c.site == nil:
		return false, &refusal{url: shown, host: u.Host, why: "its host is not one given to WithAllowedHosts"}
	default:
		return false, &refusal{url: shown, host: u.Host, why: fmt.Sprintf("it is not on the base URL's site (%s), nor on a host given to WithAllowedHosts", c.site)}
	}
}

// ErrRefused is the error, wrapped, of every URL that [Warmer.Fetch] and
// [Warmer.Enqueue] refuse to fetch: one neither on the base URL's scheme,
// host and port nor on a host given to [WithAllowedHosts], one with a user
// or password, and a redirect to such a URL when a [WithHTTPClient] client
// follows redirects. The error names the URL and its host.
var ErrRefused = errors.New("warm: URL refused: neither on the base URL's site nor on an allowed host")

// refusal is the error of a URL refused by the host policy.
type refusal struct {
	url  string // redacted
	host string
	why  string
}

func (r *refusal) Error() string {
	return fmt.Sprintf("warm: URL %q: refused, host %q: %s", r.url, r.host, r.why)
}

func (r *refusal) Unwrap() error { return ErrRefused }

// origin is what a URL's credentials are bound to: its scheme, its host
// name in lower case (an IP address in its usual form) and its port, the
// scheme's default when it names none. The transport dials the same host
// and port.
type origin struct {
	scheme, host, port string
}

func originOf(u *url.URL) origin {
	o := origin{scheme: strings.ToLower(u.Scheme), host: canonicalHost(u.Hostname()), port: u.Port()}
	if o.port == "" {
		o.port = "80"
		if o.scheme == "https" {
			o.port = "443"
		}
	}
	return o
}

func (o origin) String() string {
	return o.scheme + "://" + net.JoinHostPort(o.host, o.port)
}

// canonicalHost returns host in lower case, or in the usual form of its IP
// address.
func canonicalHost(host string) string {
	if ip := net.ParseIP(host); ip != nil {
		return ip.String()
	}
	if c, err := backends.CanonicalHost("http", host); err == nil {
		return c // lower case, punycode for an internationalised name
	}
	return strings.ToLower(host)
}

// redactURL returns raw as errors, logs and results show it: an absolute
// URL holding an "@" anywhere (user information, whose password may hold
// "/", "?" or "#") as [backends.RedactURL] shows it, and anything else as
// given, since a page's path and query are not secrets.
func redactURL(raw string) string {
	if i := strings.Index(raw, "//"); i >= 0 && strings.Contains(raw[i+2:], "@") {
		return backends.RedactURL(raw)
	}
	return raw
}

// parseProblem returns why url.Parse failed, without the URL that its
// error repeats.
func parseProblem(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// checkRedirect returns the CheckRedirect function of the copy New makes
// of a WithHTTPClient client: a redirect to a URL the Warmer would refuse is
// not followed, and one to an allowed host other than the site's carries
// the anonymous headers only, net/http having copied every header of the
// first request (Authorization and Cookie too, to the same host name on
// another port or scheme). Then next, the client's own function, decides;
// without one, at most 10 redirects are followed, as net/http does.
func (w *Warmer) checkRedirect(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		site, err := w.cfg.allow(req.URL, redactURL(req.URL.String()))
		if err != nil {
			return err
		}
		if !site {
			req.Header = w.anonymousHeader() // no Referer either
			req.Host = ""
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
}
