package httppurge

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gormpurge/gormpurge/backends"
)

// node is one cache node, its share of the request budget and its idle
// connections.
type node struct {
	key      string        // normal base URL, such as "http://10.0.0.5:6081"
	scheme   string        // "http" or "https"
	host     string        // host[:port], as in the URL
	hostname string        // host without port
	addr     string        // host:port to dial
	slots    chan struct{} // one token per request in flight; see WithNodeConcurrency
	pool     *connPool     // nil when purges go through WithHTTPClient's client
}

// parseNode parses a node as WithNodes takes it: a base URL, or host:port
// for plain HTTP.
func parseNode(s string) (*node, error) {
	raw := s
	if !strings.Contains(s, "://") {
		raw = "http://" + s
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, parseError(s, err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("scheme %q: use http or https", u.Scheme)
	case u.Hostname() == "":
		return nil, errors.New("no host: use a base URL such as \"http://10.0.0.5:6081\"")
	case u.User != nil:
		return nil, errors.New("credentials in the URL: send them with WithHeader(\"Authorization\", ...)")
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return nil, errors.New("a node is a base URL without path or query, such as \"http://10.0.0.5:6081\"")
	}
	host := strings.ToLower(u.Host)
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	hostname := strings.ToLower(u.Hostname())
	return &node{key: u.Scheme + "://" + host, scheme: u.Scheme, host: host, hostname: hostname,
		addr: net.JoinHostPort(hostname, port)}, nil
}

// parseError describes err, url.Parse's error for s, without quoting s:
// url.Parse quotes the whole URL, and the part of it at fault, which may be
// a piece of a password or of a query value.
func parseError(s string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && !strings.ContainsAny(s, "@?#") {
		return fmt.Errorf("not a valid URL: %w", ue.Err)
	}
	return errors.New("not a valid URL: check its percent-escapes, host and port")
}

// checkSiteHost reports why h cannot be a Host header.
func checkSiteHost(h string) error {
	if strings.Contains(h, "://") || strings.ContainsAny(h, "/?#@") {
		return errors.New("give a host name such as \"www.example.com\", not a URL")
	}
	if h == "" || strings.ContainsFunc(h, isSpaceOrCtl) {
		return errors.New("need a host name such as \"www.example.com\"")
	}
	u, err := url.Parse("http://" + h)
	if err != nil || u.Host != h || u.Hostname() == "" {
		return errors.New("not a valid host[:port]")
	}
	return nil
}

// job is one purge request, sent to every node. It is read-only once
// planned.
type job struct {
	method      string
	uri         string // request target: escaped path and query
	path        string // decoded path, as in url.URL.Path
	rawPath     string // escaped path when it differs from the default encoding
	rawQuery    string
	host        string           // Host header; "" for the node's own address
	header      http.Header      // for net/http
	headerBlock string           // the header lines besides Host, for the own client
	target      string           // path and query, or tag header summary, for errors
	tags        int              // tags in the request; 0 for a URL purge
	objects     backends.Request // what it purges, as the Request held it: for a Partial error
}

// headerBlock returns h as header lines, each ending in CRLF, sorted by
// name.
func headerBlock(h http.Header) string {
	var b strings.Builder
	_ = h.Write(&b) // writes to a strings.Builder cannot fail
	return b.String()
}

// plan turns r into the requests each node receives. Objects that cannot be
// purged at all are left out: they are in refused, and why in bad. Tags
// skipped under NoTags are counted.
func (b *Backend) plan(r backends.Request) (jobs []*job, skippedTags int, refused backends.Request, bad []error) {
	jobs = make([]*job, 0, len(r.URLs)*max(1, len(b.cfg.siteHosts))+1)
	for _, raw := range r.URLs {
		js, err := b.urlJobs(raw)
		if err != nil {
			refused.URLs, bad = append(refused.URLs, raw), append(bad, err)
			continue
		}
		jobs = append(jobs, js...)
	}
	if len(r.Tags) == 0 {
		return jobs, 0, refused, bad
	}
	m := b.cfg.tags
	if !m.enabled() {
		return jobs, len(r.Tags), refused, bad
	}
	values, counts, refusedTags, badTags := m.chunks(r.Tags)
	refused.Tags, bad = refusedTags, append(bad, badTags...)
	// chunks keeps the order of the tags it accepts: chunk i holds the
	// next counts[i] of them.
	accepted := make([]string, 0, len(r.Tags))
	for _, tag := range r.Tags {
		if !slices.Contains(refusedTags, tag) {
			accepted = append(accepted, tag)
		}
	}
	host := ""
	if len(b.cfg.siteHosts) > 0 {
		host = b.cfg.siteHosts[0]
	}
	target, _ := parseTagPath(m.path()) // checked by New
	for i, v := range values {
		h := b.header.Clone()
		h.Set(m.Header, v)
		jobs = append(jobs, &job{
			method:      m.Method,
			uri:         m.path(),
			path:        target.Path,
			rawPath:     target.RawPath,
			rawQuery:    target.RawQuery,
			host:        host,
			header:      h,
			headerBlock: headerBlock(h),
			target:      fmt.Sprintf("%s with %s: %d tags", m.path(), m.Header, counts[i]),
			tags:        counts[i],
			objects:     backends.Request{Tags: accepted[:counts[i]:counts[i]]},
		})
		accepted = accepted[counts[i]:]
	}
	return jobs, 0, refused, bad
}

// urlJobs returns the requests that purge one URL, in its canonical form
// ([backends.CanonicalURL]) as browsers send it: an absolute URL under its
// own host, a path under every site host.
func (b *Backend) urlJobs(raw string) ([]*job, error) {
	if raw == "" {
		return nil, errors.New("httppurge: cannot purge an empty URL")
	}
	c, err := backends.CanonicalURL(raw)
	if err != nil {
		return nil, fmt.Errorf("httppurge: cannot purge %q: %w", backends.RedactURL(raw), err)
	}
	host, target := "", c
	if c[0] != '/' {
		_, rest, _ := strings.Cut(c, "://")
		i := strings.IndexByte(rest, '/') // a canonical absolute URL has a path
		host, target = rest[:i], rest[i:]
	}
	escapedPath, rawQuery, _ := strings.Cut(target, "?")
	path, err := url.PathUnescape(escapedPath)
	if err != nil { // cannot happen: the canonical form's escapes are valid
		return nil, fmt.Errorf("httppurge: cannot purge %q: %w", backends.RedactURL(raw), err)
	}
	mk := func(host string) *job {
		return &job{method: b.cfg.method, uri: target, path: path, rawPath: escapedPath, rawQuery: rawQuery,
			host: host, header: b.header, headerBlock: b.headerBlock, target: target,
			objects: backends.Request{URLs: []string{raw}}}
	}
	if host != "" {
		return []*job{mk(host)}, nil
	}
	if len(b.cfg.siteHosts) == 0 {
		return nil, fmt.Errorf("httppurge: cannot purge path %q: the caches key pages by Host, and no site host is set: use WithSiteHost(\"www.example.com\"), or have gormpurge hand over absolute URLs (gormpurge.WithBaseURL)", backends.RedactURL(raw))
	}
	jobs := make([]*job, 0, len(b.cfg.siteHosts))
	for _, h := range b.cfg.siteHosts {
		jobs = append(jobs, mk(h))
	}
	return jobs, nil
}
