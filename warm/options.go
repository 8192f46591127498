package warm

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/internal/nilcheck"
	"github.com/gormpurge/gormpurge/observe"
)

// Defaults used by [New] for settings that no [Option] changes.
const (
	DefaultConcurrency = 4
	DefaultTimeout     = 30 * time.Second
	DefaultQueueSize   = 10_000
	DefaultUserAgent   = "gormpurge-warm/1"
	// DefaultAcceptEncoding is the Accept-Encoding header of every fetch,
	// unless one is given to [WithHeader]: the variant browsers get.
	DefaultAcceptEncoding = "gzip"
)

// An Option configures a [Warmer]. Options are applied in order by [New],
// which then validates the result.
type Option func(*config)

// config holds every setting of a Warmer. defaultConfig fills it in one
// place; validate checks it.
type config struct {
	concurrency int
	delay       time.Duration
	baseURL     string
	base        *url.URL // baseURL parsed by validate; nil without WithBaseURL
	site        *origin  // set by validate: the base URL's, or http://localhost for a handler without one
	hosts       []string // as given to WithAllowedHosts
	// allowedHosts holds the hosts given to WithAllowedHosts, as
	// canonicalHost returns them; nil without the option.
	allowedHosts map[string]bool
	handler      http.Handler
	client       *http.Client
	timeout      time.Duration
	header       http.Header
	host         string // a Host given to WithHeader; sets Request.Host
	user, pass   string
	basicAuth    bool
	userAgent    string
	queueSize    int
	logger       *slog.Logger
	onResult     func(Result)
	observer     observe.Observer // nil: report to none
	clock        clock
	errs         []error // problems found while applying options
}

func defaultConfig() config {
	return config{
		concurrency: DefaultConcurrency,
		timeout:     DefaultTimeout,
		header:      make(http.Header),
		userAgent:   DefaultUserAgent,
		queueSize:   DefaultQueueSize,
		logger:      slog.Default(),
		clock:       realClock{},
	}
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

// WithConcurrency sets how many fetches a Warmer runs at once, [Warmer.Fetch]
// and [Warmer.Enqueue] together. Keep it low enough that warming does not
// overload the origin the cache was protecting. Defaults to
// [DefaultConcurrency] (4).
func WithConcurrency(n int) Option {
	return func(c *config) { c.concurrency = n }
}

// WithDelay makes [Warmer.Enqueue] fetch a URL no sooner than d after it was
// enqueued. Use it when warming through a CDN, whose purges take seconds to
// reach every edge: a fetch that arrives first would be answered from the
// stale copy. [Warmer.Fetch] never waits. Defaults to 0: fetch at once.
func WithDelay(d time.Duration) Option {
	return func(c *config) { c.delay = d }
}

// WithBaseURL sets the site that paths such as "/posts/1" are fetched from,
// for example "https://www.example.com" or "http://127.0.0.1:8080". A path
// replaces the base URL's path, as in a link; a value such as "//host/x",
// "/\\host/x" or "/%2F%2Fhost/x" is a path too (or invalid), and stays on
// the base URL's host. Without it, a path is an error for that URL unless
// [WithHandler] is set. The base URL must not contain a user or password:
// give them to [WithBasicAuth].
//
// The base URL's scheme, host and port are the Warmer's site: the only one
// its credentials and headers ([WithBasicAuth], [WithHeader]) are sent to.
// An absolute URL is fetched with them if it has the same scheme, host name
// (in any case) and port (the scheme's default when none is given) as the
// base URL; on any other host, port or scheme it is refused, not fetched,
// and reported with an error wrapping [ErrRefused], unless its host is one
// given to [WithAllowedHosts], in which case it is fetched without them.
// So a URL that a hostile value turned into "http://attacker.example/x"
// gets nothing from the Warmer, and the site's pages are warmed as before.
//
// With [WithHandler], the base URL gives the in-process requests their
// scheme and host, and a cache in the application keys pages by them: give
// the scheme and host the application itself sees in visitors' requests,
// not necessarily those in the browser's address bar. Behind a proxy or
// load balancer that terminates TLS, the application sees plain http, so
// use "http://www.example.com" (or keep a base URL that names a server, and
// set the public host with WithHeader("Host", ...)); with
// "https://www.example.com" the pages would be warmed under an https key
// that no visitor's request matches, and visitors would still miss. Then
// give the Warmer paths, or absolute URLs in http: an absolute
// "https://www.example.com/..." is on another scheme than the base URL, and
// refused.
func WithBaseURL(base string) Option {
	return func(c *config) { c.baseURL = base }
}

// WithHandler makes the Warmer call h in this process instead of going
// through the network, for example the application's mux wrapped in
// [github.com/gormpurge/gormpurge/backends/localcache.Middleware], so that
// the page cache is filled without a round trip. Each request gets the
// URL's host, or the base URL's for a path ("localhost" without
// [WithBaseURL], and then the site of the credentials and headers is
// http://localhost: see WithBaseURL for which URLs are refused), the URL's scheme (a request for an https URL has a
// non-nil TLS field), RemoteAddr "127.0.0.1:0", and a context that ends
// with the fetch's [WithTimeout], with the ctx given to [Warmer.Fetch] for
// its fetches, and, for Enqueue's fetches, when a Close whose ctx ended
// gives up waiting for them; h should honour it. Redirects are not
// followed: a 3xx answer is the result, and counts as failed. A panic in h
// is recovered and becomes the URL's error. It cannot be combined with
// [WithHTTPClient].
//
// The scheme and host must be those the application sees in visitors'
// requests, since the local cache keys pages by them: behind a proxy that
// terminates TLS, that is http and the public host, so use a base URL such
// as "http://www.example.com". See WithBaseURL.
func WithHandler(h http.Handler) Option {
	return func(c *config) {
		switch {
		case h == nil:
			c.fail("WithHandler(nil): pass the application's http.Handler, or leave the option out to fetch over the network")
			return
		case nilcheck.IsNil(h):
			c.fail("WithHandler((%T)(nil)): the handler is a nil %T: pass the application's http.Handler, or leave the option out to fetch over the network", h, h)
			return
		}
		c.handler = h
	}
}

// WithHTTPClient sets the client used to fetch over the network, for example one
// with a custom transport, TLS settings or a proxy. The client sends
// cookies according to its own settings (with a Jar, cookies a page sets
// are sent with the next fetches to the hosts that set them), its
// transport's proxy sees what it carries (over plain http, every header,
// the credentials included), and Close leaves its idle connections alone.
//
// New uses a copy of cl whose CheckRedirect applies the Warmer's host
// policy before cl's own (or, without one, net/http's limit of 10
// redirects): a redirect to a URL that [WithBaseURL] says is refused is
// not followed, and fails with an error wrapping [ErrRefused] that names
// its host; one to a host given to [WithAllowedHosts] is followed without
// the credentials and headers, and without a Referer; only one on the
// base URL's scheme, host and port carries them. (net/http on its own
// copies every header to any host, and Authorization and Cookie to the
// same host name on another port.) Set cl's CheckRedirect to return
// [http.ErrUseLastResponse] to follow none.
//
// Defaults to a client without a cookie jar that follows no redirect (see
// [New]) and uses no proxy, not even one named by HTTP_PROXY or
// HTTPS_PROXY, with a keep-alive transport that keeps [WithConcurrency]
// idle connections per host.
func WithHTTPClient(cl *http.Client) Option {
	return func(c *config) {
		if cl == nil {
			c.fail("WithHTTPClient(nil): pass an *http.Client, or leave the option out to use the default client")
			return
		}
		c.client = cl
	}
}

// WithTimeout bounds each fetch, from the request to the end of the body.
// Defaults to [DefaultTimeout] (30s).
func WithTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

// WithHeader adds a header sent with every fetch from the site, the base
// URL's scheme, host and port ([WithBaseURL], which it requires unless
// [WithHandler] is set); it may be given several times, also for the same
// name. Use it to warm the variant that visitors get from a cache that
// varies on a header, for example Accept-Language. A "Host" header sets
// the request's host, to warm a site through a base URL that names one
// server of several. Fetches from a host given to [WithAllowedHosts] get
// none of these headers, Host included: only the User-Agent and
// "Accept-Encoding: gzip". An error of New's names a header, never its
// value.
//
// Every fetch sends "Accept-Encoding: gzip" ([DefaultAcceptEncoding])
// unless an Accept-Encoding header is given here. Pages that Vary on
// Accept-Encoding are cached once per variant, and browsers all ask for
// gzip: caches such as Varnish, and the local cache, reduce the header to
// gzip or not, so a fetch without it would warm the variant no visitor
// asks for. Give Accept-Encoding here to warm another variant, such as
// "identity" for the uncompressed one. Since the header is set explicitly,
// Go's transport does not decompress the body; it is discarded anyway.
//
// A Cookie header makes most caches pass the request to the origin without
// answering or storing it: Varnish's built-in VCL does for any Cookie, and
// so does the local cache by default (see its WithSessionCookies option). A
// warm-up as a logged-in visitor only helps a cache configured to key
// pages on that cookie.
func WithHeader(name, value string) Option {
	return func(c *config) {
		if !validHeaderName(name) {
			c.fail("WithHeader(%q, ...): the name must be a non-empty header name, such as \"Accept-Language\"", name)
			return
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			c.fail("WithHeader(%q, ...): the value must not contain CR, LF or NUL", name) // the value may be a secret
			return
		}
		if http.CanonicalHeaderKey(name) == "Host" {
			c.host = value
			return
		}
		c.header.Add(name, value)
	}
}

// WithBasicAuth sends user and password with every fetch from the site,
// the base URL's scheme, host and port ([WithBaseURL], which it requires
// unless [WithHandler] is set), for a site behind HTTP basic
// authentication such as a staging site; never to another host, one given
// to [WithAllowedHosts] included, nor through a redirect (see
// [WithHTTPClient]). Shared caches, the local cache included, neither answer
// nor store a request that carries Authorization unless configured to;
// check that yours is. By default no credentials are sent.
func WithBasicAuth(user, password string) Option {
	return func(c *config) {
		if user == "" || strings.Contains(user, ":") {
			c.fail("WithBasicAuth(%q, ...): the user must be non-empty and must not contain a colon", user)
			return
		}
		c.user, c.pass, c.basicAuth = user, password, true
	}
}

// WithUserAgent sets the User-Agent header of every fetch, so that the
// origin's logs and statistics can tell warm-up traffic apart. Unlike the
// headers of [WithHeader], it is sent to every host fetched, those given to
// [WithAllowedHosts] too: it must not hold a secret. Defaults to
// [DefaultUserAgent].
func WithUserAgent(ua string) Option {
	return func(c *config) {
		if ua == "" {
			c.fail(`WithUserAgent(""): name the client, such as %q, or leave the option out`, DefaultUserAgent)
			return
		}
		c.userAgent = ua
	}
}

// WithAllowedHosts lets the Warmer fetch absolute URLs on hosts other than
// the base URL's (see [WithBaseURL]): each host is a name such as
// "static.example.com", matched in any case, or an IP address, without
// scheme, port or path; a URL on it is fetched over any scheme and port.
// Those fetches carry no credentials and none of the headers of
// [WithHeader]: only the User-Agent and "Accept-Encoding: gzip", as an
// anonymous visitor's would. The name matches the option of the same name
// of package gormpurge; give the warmer the same hosts. It may be given
// several times; the hosts add up.
//
// Without WithBaseURL (and without [WithHandler]), no credentials or
// headers can be configured, and the Warmer fetches absolute URLs on any
// host unless this option is given, and then only on those hosts.
// Defaults to none: with a base URL, only its site is fetched.
func WithAllowedHosts(hosts ...string) Option {
	return func(c *config) {
		if c.hosts == nil {
			c.hosts = []string{}
		}
		c.hosts = append(c.hosts, hosts...)
	}
}

// WithQueueSize bounds how many URLs wait in [Warmer.Enqueue]'s queue. When
// the queue is full, a new URL is dropped: warming up is best effort, and a
// page that was not warmed is merely rendered by its first visitor. Drops
// are counted in [Stats.Dropped] and logged. Defaults to
// [DefaultQueueSize] (10,000).
func WithQueueSize(n int) Option {
	return func(c *config) { c.queueSize = n }
}

// WithLogger sets where the Warmer writes its records: Debug for a fetch
// made in the background by [Warmer.Enqueue], Warn for one that failed
// (no answer, or a status other than 2xx), for an invalid or refused URL
// given to Enqueue (a refused one with its host, see [WithBaseURL]), for a
// redirect refused and for a dropped URL, Error for a panic in the [WithOnResult]
// function. [Warmer.Fetch] logs nothing: it reports through its [Summary],
// its progress function and WithOnResult. To silence the Warmer, pass
// slog.New(slog.DiscardHandler). Defaults to [slog.Default] at the time New
// is called.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.fail("WithLogger(nil): pass slog.New(slog.DiscardHandler) to silence the warmer")
			return
		}
		c.logger = l
	}
}

// WithOnResult sets a function called with every [Result], from
// [Warmer.Fetch] and [Warmer.Enqueue] alike, for example to export metrics
// or to wait for a fetch in a test. It runs on the goroutine that produced
// the result: a background fetch, the caller of Fetch, or the caller of
// Enqueue for an invalid URL. Keep it short; it may be called concurrently.
// A panic in fn is recovered and logged at Error level. [Warmer.Close]
// waits for the background fetches but not for their calls of fn, which
// may still run after Close returns; fn should not call Close, and if it
// does, Close returns without waiting for fn. Defaults to none; nil is an
// error.
func WithOnResult(fn func(Result)) Option {
	return func(c *config) {
		if fn == nil {
			c.fail("WithOnResult(nil): pass a function, or leave the option out")
			return
		}
		c.onResult = fn
	}
}

// validate reports every invalid setting, each with how to fix it, and
// parses the base URL.
func (c *config) validate() error {
	errs := c.errs
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.concurrency < 1 {
		add("WithConcurrency(%d): need at least 1 fetch at a time", c.concurrency)
	}
	if c.delay < 0 {
		add("WithDelay(%v): use 0 to fetch at once, or a positive delay", c.delay)
	}
	if c.baseURL != "" {
		shown := redactURL(c.baseURL)
		u, err := url.Parse(c.baseURL)
		switch {
		case err != nil && shown != c.baseURL:
			add("WithBaseURL(%q): cannot be parsed; remove the user and password, and give them to WithBasicAuth", shown)
		case err != nil:
			add("WithBaseURL(%q): %s", shown, parseProblem(err))
		case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			add("WithBaseURL(%q): need an absolute http or https URL, such as \"https://www.example.com\"", shown)
		case u.User != nil:
			add("WithBaseURL(%q): remove the user and password, and give them to WithBasicAuth", shown)
		case u.RawQuery != "" || u.Fragment != "":
			add("WithBaseURL(%q): remove the query and fragment", shown)
		default:
			c.base = u
			o := originOf(u)
			c.site = &o
		}
	}
	if c.site == nil && c.handler != nil && c.baseURL == "" {
		c.site = &origin{scheme: "http", host: "localhost", port: "80"}
	}
	if c.site == nil && c.baseURL == "" {
		var given []string
		if c.basicAuth {
			given = append(given, "WithBasicAuth")
		}
		if len(c.header) > 0 || c.host != "" {
			given = append(given, "WithHeader")
		}
		if len(given) > 0 {
			add("%s without WithBaseURL: credentials and headers are sent only to the base URL's scheme, host and port; set WithBaseURL to the site they are for",
				strings.Join(given, " and "))
		}
	}
	if c.hosts != nil {
		c.allowedHosts = make(map[string]bool, len(c.hosts))
		for _, h := range c.hosts {
			if !validHost(h) {
				add("WithAllowedHosts(%q): give a host name such as \"static.example.com\" or an IP address, without scheme, port or path", h)
				continue
			}
			c.allowedHosts[canonicalHost(unbracket(h))] = true
		}
	}
	if c.handler != nil && c.client != nil {
		add("WithHandler and WithHTTPClient: use one, the handler to fetch in this process or the client to fetch over the network")
	}
	if c.timeout <= 0 {
		add("WithTimeout(%v): need a positive duration", c.timeout)
	}
	if c.queueSize < 1 {
		add("WithQueueSize(%d): need room for at least 1 URL", c.queueSize)
	}
	return errors.Join(errs...)
}

// validHost reports whether h is a host name (letters, digits, '-', '_'
// and '.'), or an IP address, IPv6 with or without brackets.
func validHost(h string) bool {
	if net.ParseIP(unbracket(h)) != nil {
		return true
	}
	if h == "" || strings.ContainsAny(h, ":/?#@[]") {
		return false
	}
	_, err := backends.CanonicalHost("http", h) // internationalised names too
	return err == nil
}

// unbracket returns h without the brackets around an IPv6 address.
func unbracket(h string) string {
	if len(h) > 2 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", r):
		default:
			return false
		}
	}
	return true
}
