package httppurge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gormpurge/gormpurge/backends"
)

// Defaults used by [New] for settings that no [Option] changes.
const (
	DefaultName              = "httppurge"
	DefaultMethod            = "PURGE"
	DefaultNodeConcurrency   = 8
	DefaultRequestTimeout    = 10 * time.Second
	DefaultDiscoveryInterval = 30 * time.Second
	DefaultMaxObjects        = 1000
)

// An Option configures a [Backend] made by [New] or a [Cluster] made by
// [NewCluster]. Options are applied in order; New then validates the result.
type Option func(*config)

// config holds every setting of a Backend. defaultConfig fills it in one
// place; validate checks it.
type config struct {
	name              string
	nodes             []string
	discover          func(ctx context.Context) ([]string, error)
	discoverSet       bool
	discoveryInterval time.Duration
	siteHosts         []string
	userAgentSet      bool // WithHeader replaced the default User-Agent
	method            string
	header            http.Header
	tags              TagMode
	nodeConcurrency   int
	requestTimeout    time.Duration
	client            *http.Client
	tlsConfig         *tls.Config
	maxObjects        int
	logger            *slog.Logger
	errs              []error // problems found while applying options
}

func defaultConfig() config {
	return config{
		name:              DefaultName,
		discoveryInterval: DefaultDiscoveryInterval,
		method:            DefaultMethod,
		header:            http.Header{"User-Agent": {"gormpurge-httppurge"}},
		tags:              XKey(),
		nodeConcurrency:   DefaultNodeConcurrency,
		requestTimeout:    DefaultRequestTimeout,
		maxObjects:        DefaultMaxObjects,
		logger:            slog.Default(),
	}
}

// WithName sets the backend's Name, as the dispatcher reports it. Give each
// cluster its own name when a dispatcher delivers to several, such as
// "varnish" and "nginx". Defaults to [DefaultName] ("httppurge").
func WithName(name string) Option {
	return func(c *config) { c.name = name }
}

// WithNodes sets the cache nodes that receive every purge: base URLs such
// as "http://10.0.0.5:6081", or "host:port" for plain HTTP. Use it or
// [WithDiscovery], not both.
func WithNodes(nodes ...string) Option {
	return func(c *config) {
		if len(nodes) == 0 {
			c.errs = append(c.errs, errors.New("WithNodes(): name at least one node, such as \"http://10.0.0.5:6081\""))
		}
		c.nodes = append(c.nodes, nodes...)
	}
}

// WithDiscovery sets a function that returns the current cache nodes, in the
// form [WithNodes] takes, for clusters whose nodes change (DNS, Kubernetes
// endpoints). It is called at once, then every [WithDiscoveryInterval], and
// sooner when a node could not be reached; each call gets a deadline of
// [WithRequestTimeout]. When it fails or returns no node, the last list is
// kept. See [DNS] for a ready-made one. Use it or [WithNodes], not both.
func WithDiscovery(fn func(ctx context.Context) ([]string, error)) Option {
	return func(c *config) { c.discover, c.discoverSet = fn, true }
}

// WithDiscoveryInterval sets how often the [WithDiscovery] function is
// called. Defaults to [DefaultDiscoveryInterval] (30s).
func WithDiscoveryInterval(d time.Duration) Option {
	return func(c *config) { c.discoveryInterval = d }
}

// WithSiteHost sets the Host header sent with the purge of a site-relative
// path ("/articles/1"): the site's host name, such as "www.example.com",
// since the caches key their objects by Host and path. With several hosts,
// each path is purged once per host. An absolute URL is always purged with
// its own host. Hosts are sent lowercased: host names are case-insensitive,
// and caches such as Varnish hash the Host header as sent. Defaults to none: a path then fails with a
// [backends.Permanent] error that says to set this option.
func WithSiteHost(hosts ...string) Option {
	return func(c *config) {
		if len(hosts) == 0 {
			c.errs = append(c.errs, errors.New("WithSiteHost(): name at least one host, such as \"www.example.com\""))
		}
		for _, h := range hosts {
			c.siteHosts = append(c.siteHosts, strings.ToLower(h))
		}
	}
}

// WithMethod sets the HTTP method of URL purges, such as "BAN" for a
// Varnish configuration that bans by URL. Tags use the method of their
// [TagMode]. Defaults to [DefaultMethod] ("PURGE").
func WithMethod(method string) Option {
	return func(c *config) { c.method = method }
}

// WithHeader adds a header to every purge request, for example
// WithHeader("X-Purge-Strict", "1") for a Varnish configuration that then
// answers 404 for a page it did not hold, or a token the cache checks.
// A User-Agent given here replaces the default one; other names may be
// given several times. Defaults to none besides User-Agent.
func WithHeader(name, value string) Option {
	return func(c *config) {
		if !isToken(name) {
			c.errs = append(c.errs, fmt.Errorf("WithHeader(%q, ...): not a valid header name", name))
			return
		}
		if strings.ContainsFunc(value, isCtl) {
			// The value is not shown: it may be a token.
			c.errs = append(c.errs, fmt.Errorf("WithHeader(%q, ...): the value holds a control character (value not shown)", name))
			return
		}
		if reservedHeader(name) {
			c.errs = append(c.errs, fmt.Errorf("WithHeader(%q, ...): the backend sets this header itself (use WithSiteHost for Host)", name))
			return
		}
		if http.CanonicalHeaderKey(name) == "User-Agent" && !c.userAgentSet {
			c.header.Del(name) // the default
			c.userAgentSet = true
		}
		c.header.Add(name, value)
	}
}

// WithTagMode sets how cache tags are purged: [XKey] (the default),
// [XKeySoft], [SurrogateKey], [BanTags], a TagMode of your own, or
// [NoTags] for caches that know no tags (nginx, Squid).
func WithTagMode(m TagMode) Option {
	return func(c *config) { c.tags = m }
}

// WithNodeConcurrency bounds how many purge requests are in flight to each
// node at once, across concurrent calls to Purge; it is also the number of
// keep-alive connections kept open to each node. Defaults to
// [DefaultNodeConcurrency] (8).
func WithNodeConcurrency(n int) Option {
	return func(c *config) { c.nodeConcurrency = n }
}

// WithRequestTimeout bounds each purge request, from connecting to reading
// the whole answer, and each call to the discovery function. The context
// given to Purge can end it sooner. Defaults to [DefaultRequestTimeout]
// (10s).
func WithRequestTimeout(d time.Duration) Option {
	return func(c *config) { c.requestTimeout = d }
}

// WithTLSConfig sets the TLS settings for nodes whose URL begins with
// https, for example a private CA in RootCAs or a client certificate.
// ServerName defaults to the node's host name. Defaults to the system's
// roots and TLS 1.2 or later.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *config) {
		if cfg == nil {
			c.errs = append(c.errs, errors.New("WithTLSConfig(nil): leave the option out to use the system's roots"))
			return
		}
		c.tlsConfig = cfg
	}
}

// WithHTTPClient sends the purges through client's Transport instead of the
// backend's own connections, for a transport of your own (a custom dialer,
// a proxy that must be used). It costs more CPU per request: net/http hands
// each request to two goroutines of the connection and back, which at tens
// of thousands of purges per second is about twice the work. The backend
// uses a copy of client that never follows redirects, applies
// WithRequestTimeout to each request, and does not close client's
// connections on Close. Defaults to the backend's own keep-alive
// connections, which use no proxy and follow no redirects.
func WithHTTPClient(client *http.Client) Option {
	return func(c *config) {
		if client == nil {
			c.errs = append(c.errs, errors.New("WithHTTPClient(nil): leave the option out to use the backend's own client"))
			return
		}
		c.client = client
	}
}

// WithMaxObjects sets the most URLs plus tags in one call to Purge, as
// reported by Limits: the dispatcher cuts batches to fit, so that one call
// ends well within its deadline. Defaults to [DefaultMaxObjects] (1000).
func WithMaxObjects(n int) Option {
	return func(c *config) { c.maxObjects = n }
}

// WithLogger sets where the backend reports discovery: a failed refresh at
// Warn, a changed node list at Info. Purge failures are returned, not
// logged. To silence it, pass slog.New(slog.DiscardHandler). Defaults to
// [slog.Default] at the time New is called.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.errs = append(c.errs, errors.New("WithLogger(nil): pass slog.New(slog.DiscardHandler) to silence the backend"))
			return
		}
		c.logger = l
	}
}

// newConfig returns the default configuration changed by opts, in order.
// A nil Option is recorded as an error for validate to report.
func newConfig(opts []Option) config {
	cfg := defaultConfig()
	for _, opt := range opts {
		if opt == nil {
			cfg.errs = append(cfg.errs, errors.New("an Option is nil: remove it, or pass one made by a With... function"))
			continue
		}
		opt(&cfg)
	}
	return cfg
}

// validate reports every invalid setting, each with how to fix it. It
// returns the parsed static nodes.
func (c *config) validate() ([]*node, error) {
	errs := c.errs
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.name == "" || strings.ContainsFunc(c.name, isSpaceOrCtl) {
		add("WithName(%q): use a short name without spaces, such as \"varnish\"", c.name)
	}
	var nodes []*node
	switch {
	case len(c.nodes) > 0 && c.discoverSet:
		add("WithNodes and WithDiscovery: use one of them, not both")
	case len(c.nodes) == 0 && !c.discoverSet:
		add("no nodes: use WithNodes(\"http://10.0.0.5:6081\", ...) or WithDiscovery(fn)")
	case c.discoverSet && c.discover == nil:
		add("WithDiscovery(nil): pass a function that returns the nodes")
	}
	seen := map[string]bool{}
	for _, s := range c.nodes {
		n, err := parseNode(s)
		if err != nil {
			add("WithNodes(%q): %v", backends.RedactURL(s), err)
			continue
		}
		if seen[n.key] {
			add("WithNodes: %s is named twice", n.key)
			continue
		}
		seen[n.key] = true
		nodes = append(nodes, n)
	}
	if c.discoveryInterval <= 0 {
		add("WithDiscoveryInterval(%v): need a positive interval", c.discoveryInterval)
	}
	for i, h := range c.siteHosts {
		if err := checkSiteHost(h); err != nil {
			add("WithSiteHost(%q): %v", backends.RedactURL(h), err)
			continue
		}
		// The Host header browsers send: punycode for an IDN name.
		if ch, err := backends.CanonicalHost("http", h); err == nil {
			c.siteHosts[i] = ch
		} else {
			add("WithSiteHost(%q): %v", backends.RedactURL(h), err)
		}
	}
	if !isToken(c.method) {
		add("WithMethod(%q): not a valid HTTP method; use \"PURGE\" or \"BAN\"", c.method)
	}
	if err := c.tags.validate(); err != nil {
		add("WithTagMode: %v", err)
	}
	if c.nodeConcurrency < 1 {
		add("WithNodeConcurrency(%d): need at least 1 request in flight per node", c.nodeConcurrency)
	}
	if c.requestTimeout <= 0 {
		add("WithRequestTimeout(%v): need a positive timeout", c.requestTimeout)
	}
	if c.client != nil && c.tlsConfig != nil {
		add("WithHTTPClient and WithTLSConfig: set the TLS settings in the client's Transport")
	}
	if c.maxObjects < 1 {
		add("WithMaxObjects(%d): need at least 1 object per call", c.maxObjects)
	}
	return nodes, errors.Join(errs...)
}

// isToken reports whether s is a non-empty HTTP token (RFC 9110 tchar), as
// method and header names must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", ch) >= 0:
		default:
			return false
		}
	}
	return true
}

// reservedHeader reports whether the backend writes the header name itself
// (Host), or it frames the message or the connection: set by a user, it
// would split or corrupt the requests.
func reservedHeader(name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Expect", "Te", "Trailer", "Upgrade":
		return true
	}
	return false
}

// isCtl reports whether r may not appear in a header value.
func isCtl(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }

func isSpaceOrCtl(r rune) bool { return r <= ' ' || r == 0x7f }
