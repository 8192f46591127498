package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/httppurge"
)

// Defaults and bounds of the HTTP cache flags.
const (
	defaultBanHeader = "X-Ban-Tags"
	// httpBatchRequests is about how many requests one batch sends to each
	// HTTP cache node: a path is one request per --site-host, so a batch
	// holds httpBatchRequests/len(siteHosts) objects. With the default
	// node concurrency and request timeout, such a batch ends within
	// --attempt-timeout even on a slow node.
	httpBatchRequests = 100
	// maxNodeConcurrency bounds --node-concurrency.
	maxNodeConcurrency = 256
	// maxProbeWait bounds the check that the nodes accept connections.
	maxProbeWait = 3 * time.Second
)

func init() {
	registerBackend(backendEntry{
		name:       "HTTP caches",
		chooseWith: "--http-nodes URL,...",
		summary:    "HTTP caches that accept PURGE, such as Varnish, nginx and Squid (--http-nodes)",
		group:      "HTTP caches",
		addFlags:   addHTTPFlags,
	})
}

// httpSettings are the HTTP cache backend's flags.
type httpSettings struct {
	nodes           []string
	method          string
	tagMode         string
	banHeader       string
	headers         []string
	requestTimeout  time.Duration
	nodeConcurrency int
}

func addHTTPFlags(f *pflag.FlagSet) backendSettings {
	s := &httpSettings{}
	f.Var((*commaList)(&s.nodes), "http-nodes", "purge from HTTP caches: each `NODE`'s base URL, such as http://10.0.0.5:6081 (comma-separated or repeated)")
	f.StringVar(&s.method, "method", httppurge.DefaultMethod, "HTTP `METHOD` of URL purges, such as BAN for a VCL that bans by URL")
	f.StringVar(&s.tagMode, "tag-mode", "xkey", "how the caches purge tags (`MODE`): xkey, xkey-soft, surrogate-key, ban, or none")
	f.StringVar(&s.banHeader, "ban-header", defaultBanHeader, "the `HEADER` holding the ban expression with --tag-mode ban")
	f.StringArrayVarP(&s.headers, "header", "H", nil, "add `'Name: value'` to every purge request, such as a token the cache checks; repeatable")
	f.DurationVar(&s.requestTimeout, "request-timeout", httppurge.DefaultRequestTimeout, "give up on one purge request to a node after this `DURATION`")
	f.IntVar(&s.nodeConcurrency, "node-concurrency", httppurge.DefaultNodeConcurrency, fmt.Sprintf("send at most `N` purge requests to each node at once (1 to %d)", maxNodeConcurrency))
	return s
}

func (s *httpSettings) chosen() bool { return len(s.nodes) > 0 }

// tagModes maps --tag-mode to the backend's tag modes.
var tagModes = map[string]func(banHeader string) httppurge.TagMode{
	"xkey":          func(string) httppurge.TagMode { return httppurge.XKey() },
	"xkey-soft":     func(string) httppurge.TagMode { return httppurge.XKeySoft() },
	"surrogate-key": func(string) httppurge.TagMode { return httppurge.SurrogateKey() },
	"ban":           httppurge.BanTags,
	"none":          func(string) httppurge.TagMode { return httppurge.NoTags() },
}

// build returns the HTTP cache backend the flags describe.
func (s *httpSettings) build(a *app, kind purgeKind, siteHosts []string) (*builtBackend, error) {
	opts, err := s.options(a, kind, siteHosts)
	if err != nil {
		return nil, err
	}
	hb, err := httppurge.New(opts...)
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	nodes := hb.Nodes()
	what := strings.ToUpper(s.method)
	if kind == kindTags {
		what = "tags (" + strings.ToLower(s.tagMode) + ")"
	}
	rec := &attemptRecorder{Backend: hb}
	bb := &builtBackend{
		Backend:     rec,
		description: fmt.Sprintf("%s to %s: %s", what, countOf(len(nodes), "node", "nodes"), strings.Join(nodes, ", ")),
		estimate:    s.estimator(siteHosts),
		probe: func(ctx context.Context) error {
			return probeNodes(ctx, nodes, min(s.requestTimeout, maxProbeWait))
		},
		attempts: rec.results,
	}
	if kind == kindURLs {
		bb.hostsOf = func(obj string) []string { return hostsOf(obj, siteHosts) }
	}
	return bb, nil
}

// options returns the backend's options the flags describe.
func (s *httpSettings) options(a *app, kind purgeKind, siteHosts []string) ([]httppurge.Option, error) {
	mode, ok := tagModes[strings.ToLower(s.tagMode)]
	switch {
	case !ok:
		return nil, usageErrorf("--tag-mode %q: use xkey, xkey-soft, surrogate-key, ban or none", s.tagMode)
	case kind == kindTags && strings.EqualFold(s.tagMode, "none"):
		return nil, usageErrorf("--tags with --tag-mode none: the caches would purge nothing; choose how they purge tags")
	case s.requestTimeout <= 0:
		return nil, usageErrorf("--request-timeout %v: need a positive duration", s.requestTimeout)
	case s.nodeConcurrency < 1 || s.nodeConcurrency > maxNodeConcurrency:
		return nil, usageErrorf("--node-concurrency %d: need 1 to %d", s.nodeConcurrency, maxNodeConcurrency)
	}
	opts := []httppurge.Option{
		httppurge.WithNodes(s.nodes...),
		httppurge.WithMethod(strings.ToUpper(s.method)),
		httppurge.WithTagMode(mode(s.banHeader)),
		httppurge.WithLogger(a.logger),
		httppurge.WithRequestTimeout(s.requestTimeout),
		httppurge.WithNodeConcurrency(s.nodeConcurrency),
		httppurge.WithMaxObjects(httpBatchObjects(len(siteHosts))),
	}
	if len(siteHosts) > 0 {
		opts = append(opts, httppurge.WithSiteHost(siteHosts...))
	}
	for _, h := range s.headers {
		name, value, err := parseHeader(h)
		if err != nil {
			return nil, err
		}
		opts = append(opts, httppurge.WithHeader(name, value))
	}
	return opts, nil
}

// estimator returns how many requests purging objects takes on each node.
func (s *httpSettings) estimator(siteHosts []string) func(purgeKind, []string) (int, bool) {
	return func(kind purgeKind, objects []string) (int, bool) {
		if kind == kindTags {
			return tagRequests(tagModes[strings.ToLower(s.tagMode)](s.banHeader), objects), true
		}
		n := 0
		for _, u := range objects {
			n += len(hostsOf(u, siteHosts))
		}
		return n, true
	}
}

// hostsOf returns the Host headers the URL obj, in canonical form, is
// purged with: its own host, or each site host for a path.
func hostsOf(obj string, siteHosts []string) []string {
	if strings.HasPrefix(obj, "/") {
		return siteHosts
	}
	u, err := url.Parse(obj)
	if err != nil { // checked: cannot happen
		return nil
	}
	return []string{u.Host}
}

// httpBatchObjects returns how many objects one batch to HTTP caches
// holds, so that it sends about httpBatchRequests requests to each node
// when each path is purged on siteHosts hosts.
func httpBatchObjects(siteHosts int) int {
	return max(1, httpBatchRequests/max(1, siteHosts))
}

// tagRequests returns how many requests m takes to purge tags: each header
// holds as many as fit in m.MaxHeaderBytes.
func tagRequests(m httppurge.TagMode, tags []string) int {
	if m.MaxHeaderBytes <= 0 {
		return min(1, len(tags))
	}
	n, size := 0, 0
	for _, t := range tags {
		if m.Quote != nil {
			t = m.Quote(t)
		}
		switch {
		case size == 0:
			n++
			size = len(m.Prefix) + len(t) + len(m.Suffix)
		case size+len(m.Separator)+len(t) > m.MaxHeaderBytes:
			n++
			size = len(m.Prefix) + len(t) + len(m.Suffix)
		default:
			size += len(m.Separator) + len(t)
		}
	}
	return n
}

// probeNodes connects once to each node, its base URL as
// [httppurge.Backend.Nodes] gives it, waiting at most wait. When every
// node refuses the connection or has no address, retrying cannot help:
// it returns an error naming them, with a hint. Otherwise it returns nil,
// and the purge goes on, retrying the nodes that did not answer.
func probeNodes(ctx context.Context, nodes []string, wait time.Duration) error {
	problems := make([]string, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { problems[i] = unreachable(ctx, n, wait) })
	}
	wg.Wait()
	if slices.Contains(problems, "") {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "no HTTP cache node accepts connections; nothing was sent:")
	for i, n := range nodes {
		fmt.Fprintf(&b, "\n  %s: %s", n, problems[i])
	}
	b.WriteString("\ncheck the addresses and ports in --http-nodes, and that each node (its firewall, its ACL) lets this host connect")
	return failedf("%s", b.String())
}

// unreachable connects to the node whose base URL is node, and says why
// it cannot be reached for good: it refuses connections, or its host has
// no address. It returns "" when the node accepts the connection, or when
// the connection failed otherwise (a timeout may pass).
func unreachable(ctx context.Context, node string, wait time.Duration) string {
	u, err := url.Parse(node)
	if err != nil {
		return ""
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	d := net.Dialer{Timeout: wait}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	var dnsErr *net.DNSError
	switch {
	case err == nil:
		_ = conn.Close()
		return ""
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return "no such host"
	}
	return ""
}

// attemptRecorder is an HTTP cache backend that keeps the result of every
// call to Purge (purgeLog): each attempt at a batch, for the per-node
// counts. It keeps the backend's Close, and has no Pace or PurgeAll.
type attemptRecorder struct {
	*httppurge.Backend
	purgeLog
}

func (r *attemptRecorder) Purge(ctx context.Context, req backends.Request) (backends.Result, error) {
	return r.purge(ctx, r.Backend, req)
}
