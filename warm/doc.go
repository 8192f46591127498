// Package warm fetches pages again after they were purged, so that caches
// hold them before the first real visitor asks: the visitor gets a hit
// instead of waiting for the page to be rendered.
//
//	w, err := warm.New(warm.WithBaseURL("https://www.example.com"), warm.WithDelay(5*time.Second))
//	if err != nil { ... }
//	defer w.Close(ctx)
//	w.Enqueue("/articles/7", "/") // right after the purge of these pages
//
// [Warmer.Enqueue] warms pages in the background, after [WithDelay] (a CDN
// takes seconds to propagate a purge); [Warmer.Fetch] warms a list of pages
// at once and returns a [Summary] of status codes and timings, as an
// operator command does:
//
//	sum := w.Fetch(ctx, urls, func(r warm.Result) { bar.Add(1) })
//	fmt.Println(sum) // 120 URLs: 118 OK, 2 failed (404×1, error×1); p50 12ms p95 40ms max 80ms in 1.2s
//
// Each URL is fetched in its canonical form
// ([github.com/gormpurge/gormpurge/backends.CanonicalURL]), as caches key
// the page and purges name it; hosts are compared in that form too,
// internationalised names included.
//
// Pages are fetched over the network with GET, or in this process through
// [WithHandler], for example through the application's handler wrapped in
// the local cache's Middleware. Either way, the body is read to the end and
// discarded: caches store only complete responses. Redirects are not
// followed (unless a [WithHTTPClient] client follows them), and every fetch asks
// for the gzip variant, as browsers do (see [WithHeader]).
//
// In process, the base URL's scheme and host must be those the application
// itself sees in visitors' requests, since the local cache keys pages by
// them. Behind a proxy or load balancer that terminates TLS, the
// application sees plain http: give the base URL as
// "http://www.example.com", not "https://..." (or set the public host with
// a Host header), or the pages are warmed under keys no visitor's request
// matches (see [WithBaseURL]).
//
// Warming up is best effort: a URL that cannot be fetched, or gets an
// answer other than 2xx, is never retried. Fetch reports every URL in its
// [Result], to its progress function, [WithOnResult] and the [Summary] it
// returns, and logs nothing. Enqueue reports each Result to WithOnResult
// and to the logger ([WithLogger]): a failure at Warn level, a success at
// Debug; it also logs, at Warn, an invalid URL, and once per call the URLs
// it dropped because the queue was full or the Warmer closed. A page that was not warmed is
// simply rendered for its first visitor, as it would have been without
// this package.
//
// Caches share pages between visitors, so they neither answer nor store
// requests that carry credentials or session cookies. Warm pages as an
// anonymous visitor unless your cache is configured otherwise; see
// [WithHeader] and [WithBasicAuth].
//
// # Hosts and credentials
//
// The base URL's scheme, host and port are the Warmer's site, and the only
// one it sends its credentials and headers to ([WithBasicAuth],
// [WithHeader], a Host header included); they require [WithBaseURL],
// unless [WithHandler] is set (the site is then http://localhost). A path
// always resolves on the site: "//host/x", "/\host/x" and "/%2F%2Fhost/x"
// stay on it, or are invalid. An absolute URL on any other host, port or
// scheme is refused, not fetched: its Result's error wraps [ErrRefused]
// and names its host, Enqueue logs it at Warn with the host, and
// [Stats.Refused] and [Summary.Refused] count it. [WithAllowedHosts] lets
// the Warmer fetch other hosts too, as an anonymous visitor: only the
// User-Agent and "Accept-Encoding: gzip" go there. So a page URL that a
// hostile value turned into "http://attacker.example/x" gets nothing from
// the Warmer. A URL with a user or password is refused too, and no
// password in a URL reaches an error, a log or a Result. Without a base
// URL or a handler, no credentials or headers can be configured, and
// absolute URLs are fetched on any host, or on the allowed hosts only
// when [WithAllowedHosts] is given.
//
// The default client follows no redirect and uses no proxy (HTTP_PROXY and
// the like are ignored). A [WithHTTPClient] client may follow redirects, but
// only within the same rules: a redirect to a refused host is not
// followed, and one to an allowed host goes without the credentials and
// headers.
//
// [Warmer.Stats] counts the URLs fetched, failed and dropped. With
// [WithObserver], the Warmer reports them, and the URLs waiting in the
// queue, to an [github.com/gormpurge/gormpurge/observe.Observer] (such as
// the Prometheus or OpenTelemetry one of contrib/prompurge and
// contrib/otelpurge) each time it collects, until Close.
//
// Every option is a With… function, checked by [New], which returns an
// error naming each invalid one and saying how to fix it. An option given
// nil where it expects a handler, a client, a logger, a function or an
// observer ([WithHandler], [WithHTTPClient], [WithLogger], [WithOnResult],
// [WithObserver]) is such an error, not a request for the default: leave
// the option out for the default, and pass slog.New(slog.DiscardHandler)
// to silence the logs.
package warm
