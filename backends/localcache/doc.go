// Package localcache lets an application cache its own rendered pages in
// memory and have gormpurge invalidate exactly the pages whose data changed.
//
//	store, err := localcache.NewMemoryStore(localcache.WithMaxBytes(64 << 20))
//	if err != nil { ... }
//	backend, err := localcache.NewBackend(store) // give it to the dispatcher
//	if err != nil { ... }
//	http.ListenAndServe(addr, localcache.Middleware(store)(mux))
//
// [Middleware] caches GET responses with status 200, keyed by scheme, host,
// path and query (or by a [WithKeyFunc]), one entry per value of the request
// headers the response names in Vary (but see Accept-Encoding below). It
// honours Cache-Control (s-maxage, max-age, no-store, no-cache, private),
// Expires, Pragma and Age (see Freshness below) and falls back to a
// default TTL. It marks responses with X-Cache: HIT or MISS, and collapses
// concurrent misses for the same page into one call to the handler. It
// reads the handler's header names in any spelling (w.Header()["ETag"],
// w.Header()["set-cookie"]) and sends them in the canonical one.
//
// Keys and purge indexes use the canonical form of the URL
// ([backends.CanonicalURL]): hex in upper case, non-ASCII and unsafe bytes
// percent-encoded, escapes of unreserved characters decoded, and every
// other escape kept. So "/caf%c3%a9" and "/café" are one page, and a purge
// of either finds it, but an encoded slash stays encoded: "/tags/go%2Ffeed"
// is a different page from "/tags/go/feed", and neither fills the other's
// entry.
//
// # Configuration
//
// Every option is a With… function. [NewMemoryStore] and [NewBackend]
// return an error naming each invalid option and saying how to fix it.
// [Middleware], like chi's middleware, is built from options written in
// code and panics with that message instead, when the program starts;
// [NewMiddleware] returns the error, for settings read from configuration.
// An option given nil where it expects a function, a logger, a clock or an
// observer ([WithKeyFunc], [WithLogger], [WithClock], [WithObserver]) is
// such an error, not a request for the default: leave the option out for
// the default, and pass slog.New(slog.DiscardHandler) to silence the logs.
//
// # Freshness
//
// The middleware reads a response's lifetime as RFC 9111 says for a shared
// cache: s-maxage, else max-age, else Expires (counted from the response's
// Date, or from now without a valid one), else the [WithTTL], each less the
// response's Age. An Expires that does not parse (such as "0"), or several
// that disagree, mean already expired. Pragma: no-cache counts as
// Cache-Control: no-cache when the response has no Cache-Control field. A
// response already expired is not stored. On an [WithUntilPurged] route only
// s-maxage, less Age, bounds the server's lifetime; max-age and Expires are
// for browsers.
//
// # Misses
//
// A GET miss that may be stored is rendered into a buffer of at most
// [WithMaxEntryBytes] and sent to its client once the handler returns. It is
// stored only whole: only if the handler returned normally before the
// request's context was done, the body has the length its Content-Length
// declares, and sending it to the client succeeded. Concurrent misses of
// the page wait for that render and get the page as soon as it is known,
// never at the pace of the first client's connection; a waiting request
// whose own context ends renders its page itself.
//
// A response that may not be stored streams through to its client as the
// handler writes it, and the requests waiting on it stop waiting at once
// and render their own: one whose status or headers say so (no-store,
// private, no-cache, Set-Cookie, a lifetime already over, Content-Type:
// text/event-stream, trailers), one that grows past WithMaxEntryBytes, and
// one the handler flushes ([http.Flusher]) or hijacks ([http.Hijacker])
// before it returns. Handlers can hijack a GET through the middleware; a
// render that panics also releases the requests waiting on it.
//
// # Vary: Accept-Encoding
//
// As Varnish does, the middleware reduces Accept-Encoding to "gzip" when
// the request lists gzip with a q other than 0, and to "" otherwise (gzip
// only: not "*", deflate, br or zstd), so that browsers sending
// "gzip, deflate, br, zstd" and a warm-up sending "gzip" share one variant.
// That is right only when the handler gives them the same response, so the
// reduced key holds only a response without Content-Encoding, or gzip'd
// for a request that accepts gzip. A response in another encoding (br,
// zstd, deflate), which the handler may have chosen for what that
// request's full Accept-Encoding lists, is stored for that exact value
// only, and served to requests that send exactly the same. A request is
// answered from the reduced variant when there is one, else from the one
// for its exact value, so a client that accepts br may get the shared gzip
// variant: never a body in an encoding it did not ask for.
//
// # Per-route control
//
// For different rules on different routes, wrap each route's handler with
// its own Middleware; they may all share one [Store], and one [Backend]
// purges them all:
//
//	articles := localcache.Middleware(store, localcache.WithUntilPurged())
//	search := localcache.Middleware(store, localcache.WithTTL(time.Minute))
//	mux.Handle("GET /articles/{id}", articles(articleHandler))
//	mux.Handle("GET /search", search(searchHandler))
//
// # Until purged, and what browsers keep
//
// With [WithUntilPurged], the server keeps a page until a purge removes it, with
// no expiry: right for pages whose every change gormpurge purges. But a
// browser keeps a page for its max-age whatever the server purges, so a
// page the server keeps "forever" must reach browsers with a short max-age,
// or a purge would leave visitors with the old page. Server and browser
// lifetimes are therefore separate: on a WithUntilPurged route, clients may
// keep a page 60 seconds ([DefaultBrowserMaxAge]); [WithBrowserMaxAge] sets
// another lifetime on any route, in whole seconds, 0 sending no-cache.
// Either way the middleware writes the client's Cache-Control, without
// Expires or Age, on hits and on the misses that may be stored, and never
// looser than the handler's: max-age is the smaller of that lifetime and
// the handler's own max-age (without one, what remains of its Expires),
// less the response's Age, and the handler's must-revalidate,
// proxy-revalidate and no-transform are kept. A handler's
// "max-age=0, must-revalidate" thus reaches clients as it is, and
// "public, max-age=86400, immutable" as "max-age=60": immutable and
// s-maxage are dropped. Without these options, the handler's Cache-Control
// and Expires are replayed as it wrote them, and [WithTTL] routes keep pages
// for their s-maxage, max-age or TTL.
//
// # ETags and 304 Not Modified
//
// Every cached page has a strong ETag: the handler's own when it set one,
// else the SHA-256 of the body, computed once when the page is stored. A
// GET or HEAD whose If-None-Match lists it (weak comparison, "*" matches
// any) gets 304 Not Modified from the cache, with the ETag, Cache-Control,
// Expires and Vary headers and no body. The miss that stores a page is sent
// with the headers the handler wrote, so it carries only the handler's
// ETag, if any: a computed ETag appears from the first hit on.
// Other conditional headers (If-Modified-Since, If-Match, If-Range) and
// Range are ignored: otherwise a hit is the full page with status 200.
//
// # What is never cached
//
// The cache is shared by every visitor, so the middleware never stores a
// response that carries Set-Cookie or Cache-Control private, no-store or
// no-cache, and never answers from the cache, nor stores the answer to, a
// request that carries Authorization or a session cookie (by default: any
// cookie; see [WithSessionCookies]). Nor does it store a response with another
// status than 200, Vary: *, or one that cannot be kept whole (see Misses).
//
// # Purging
//
// [Backend] purges the [Store]: a path ("/articles/1") removes that page on
// every host, for every query string and every Vary value; an absolute URL
// ("https://example.com/articles/1") does the same on its host only; a query
// string in either narrows the purge to that exact query. A tag removes
// every entry whose response carried it in the tag header (Surrogate-Key by
// default; see [WithTagHeader]).
//
// Pages cached under a [WithKeyFunc] are found by the path, host and query of
// the request that filled them, in canonical form, not by the WithKeyFunc function's
// key. A purge by path, the usual case since gormpurge's models name
// paths, removes every entry of the page, whatever the query that filled
// it. A purge naming a query ("/list?page=2") matches only an entry filled
// by a request with that query ("page=2", in any percent-encoding), not
// one filled by "/list?page=2&utm_source=mail" that the WithKeyFunc function keyed
// alike; parameters are not reordered or dropped for purges.
//
// A response rendered while a purge ran is served but not stored, so that a
// page rendered from data read before a commit cannot outlive the purge
// that follows it.
//
// # Clearing the whole cache
//
// [Store.Clear] empties the store, for when pages are stale for a reason no
// purge covers (a deploy that changed templates). [Backend] does it as a
// purge of everything ([backends.PurgeAller]), and [ClearHandler] is an
// endpoint for operators, to mount behind the application's admin
// authentication only. It answers POST only, and refuses with 403 a POST
// that a browser marks as cross-origin ([http.CrossOriginProtection]), so
// that another site cannot make an operator's browser clear the cache:
//
//	admin.Handle("/admin/cache/clear", localcache.ClearHandler(store))
//
// ClearHandler panics on a nil store, as [Middleware] does; [NewClearHandler]
// returns the error instead.
//
// # Metrics
//
// With [WithObserver], a Middleware reports to an
// [github.com/gormpurge/gormpurge/observe.Observer] (such as the
// Prometheus or OpenTelemetry one of contrib/prompurge and
// contrib/otelpurge) the requests it answered from the cache ("hit", a
// request that got the page a concurrent miss rendered included), those
// its handler rendered ("miss") and those it may not cache ("bypass": other
// methods, personal requests), and the pages it stored; and, for a
// [MemoryStore] or another [StatsReporter], the store's entries and its
// evictions for room. The counters cost an atomic add per request, and
// nothing without the option. A Middleware has no Close: it reports for as
// long as the observer collects.
//
// # Many instances
//
// A [MemoryStore] lives in one process: behind a load balancer, a purge
// delivered on one instance would leave the others serving the old page.
// Two ways keep a fleet coherent, and the dispatcher and the outbox relay
// need no change for either: whichever instance delivers a purge, every
// instance's cache loses the page.
//
// A store shared by every instance: redisstore.New (module
// github.com/gormpurge/gormpurge/backends/localcache/redisstore) keeps
// entries and their indexes in Redis, with the memory store's semantics.
// One purge removes the page for everyone; a hit costs a round trip to
// Redis; when Redis cannot be reached, pages are rendered, never failed.
//
// An in-process store on every instance, kept coherent by a [Bus]: each
// instance's [Backend], made with [WithBus], purges its own store and then
// publishes the purge; every instance runs [Follow], which applies the
// purges the others publish. Hits stay in memory.
//
//	store, err := localcache.NewMemoryStore()
//	bus, err := redisstore.NewBus(rdb, "gormpurge") // or natsbus.New(nc, "gormpurge")
//	backend, err := localcache.NewBackend(store, localcache.WithBus(bus))
//	go localcache.Follow(ctx, store, bus)
//
// A purge reaches the other instances one bus delivery after the purging
// instance applied it: that is the window in which another instance may
// still serve the old page (the README gives measured figures). No
// instance serves a page whose purge it may have missed: while its
// subscription is down, or may have dropped a message (a broken
// connection, a slow consumer, a gap in an instance's message numbers),
// Follow suspends the store, which then answers nothing, and resumes it
// empty once the subscription is back. A Publish the bus does not confirm
// fails the purge, which the dispatcher retries. Pass the Backend to
// [ClearHandler] to clear every instance with one POST.
//
// The [Store] is an interface: [MemoryStore] keeps entries in this process;
// another store can implement it without changes to the middleware, and
// the storetest package checks that it behaves as the middleware needs.
// Such a store must treat an entry's TTL of 0 as no expiry, and implement
// Clear. A [Bus] is an interface too; the bustest package checks one.
package localcache
