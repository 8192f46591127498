// Package localcache lets an application cache its own rendered pages in
// memory and have gormpurge invalidate exactly the pages whose data changed.
//
//	store := localcache.NewMemoryStore(localcache.MaxBytes(64 << 20))
//	http.ListenAndServe(addr, localcache.Middleware(store)(mux))
//	backend := localcache.NewBackend(store) // give it to the dispatcher
//
// [Middleware] caches GET responses with status 200, keyed by scheme, host,
// path and query, one entry per value of the request headers the response
// names in Vary. It honours Cache-Control (s-maxage, max-age, no-store,
// no-cache, private) and falls back to a default TTL. It marks responses
// with X-Cache: HIT or MISS, and collapses concurrent misses for the same page
// into one call to the handler.
//
// # What is never cached
//
// The cache is shared by every visitor, so the middleware never stores a
// response that carries Set-Cookie or Cache-Control private, no-store or
// no-cache, and never answers from the cache, nor stores the answer to, a
// request that carries Authorization or a session cookie (by default: any
// cookie; see [SessionCookies]).
//
// # Purging
//
// [Backend] purges the [Store]: a path ("/articles/1") removes that page on
// every host, for every query string and every Vary value; an absolute URL
// ("https://example.com/articles/1") does the same on its host only; a query
// string in either narrows the purge to that exact query. A tag removes
// every entry whose response carried it in the tag header (Surrogate-Key by
// default; see [TagHeader]).
//
// A response rendered while a purge ran is served but not stored, so that a
// page rendered from data read before a commit cannot outlive the purge
// that follows it.
//
// Expires and Pragma are ignored: use Cache-Control. A hit is always the
// full page with status 200, also for a conditional or range request.
//
// The [Store] is an interface: [MemoryStore] keeps entries in this process;
// a store shared by several instances (such as Redis) can implement it
// without changes to the middleware.
package localcache
