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
// Pages are fetched over the network with GET, or in this process through
// [WithHandler], for example through the application's handler wrapped in
// the local cache's Middleware. Either way, the body is read to the end and
// discarded: caches store only complete responses.
//
// Warming up is best effort. A URL that cannot be fetched is reported in
// its [Result] and logged, never retried; a URL that finds Enqueue's queue
// full is dropped. A page that was not warmed is simply rendered for its
// first visitor, as it would have been without this package.
//
// Caches share pages between visitors, so they neither answer nor store
// requests that carry credentials or session cookies. Warm pages as an
// anonymous visitor unless your cache is configured otherwise; see
// [WithHeader] and [WithBasicAuth].
package warm
