// Package httppurge purges pages from HTTP caches that accept a PURGE
// request (Varnish, nginx with ngx_cache_purge, Squid, and others), by
// sending each purge to every node of a cluster.
//
//	b, err := httppurge.New(
//		httppurge.WithNodes("http://10.0.0.5:6081", "http://10.0.0.6:6081"), // or WithDiscovery(fn)
//		httppurge.WithSiteHost("www.example.com"),                            // Host header for site-relative paths
//	)
//	d, err := dispatcher.New([]backends.Backend{b})
//	defer d.Close(ctx) // drains, then closes b
//
// # Requests
//
// For every URL, every node receives one request: the method set with
// [WithMethod] (PURGE by default), the URL's path and query, and the Host
// header of the site the page belongs to, since the caches key their objects
// by Host and path: an absolute URL's own host, or for a site-relative path
// each host given to [WithSiteHost]. The node's address is only where the
// request goes.
//
// The request line and the Host header take the URL's canonical form
// ([backends.CanonicalURL]), as browsers send them, since the caches key
// objects by those bytes: the path and query percent-encoded UTF-8 with
// upper-case hex (spaces encoded, an encoded slash kept encoded), and the
// host in lower case, in punycode for an internationalised name and
// without the scheme's default port. Site hosts are written the same way.
//
// Tags go by the [TagMode] set with [WithTagMode]: [XKey] (the default,
// Varnish's xkey-purge header), [XKeySoft], [SurrogateKey], [BanTags] (a
// Varnish BAN expression), or [NoTags] for caches that know none. Several
// tags go in one request, split over as many requests as it takes to keep
// the header under [TagMode.MaxHeaderBytes] (8,000 bytes for the presets;
// Varnish refuses a header line over 8 KB).
//
// # Answers
//
//   - 2xx: purged. 404: the page was not cached, which is success too.
//   - 403 and 405: permanent. The [*NodeError] names the node and says that
//     the cache's purge ACL does not allow this client, giving the client
//     address the cache saw.
//   - No answer (connection refused, timeout), 408, 429 and 5xx other than
//     501: temporary, retried by the dispatcher; a Retry-After header is
//     honoured.
//   - 400, 413, 414, 422 and 431 concern one request: the others go on,
//     and when nothing else failed the error is a [backends.Partial]
//     naming the objects of the refused requests. Every other status is
//     permanent for the node.
//
// A node whose answer concerns the node as a whole (no answer, 5xx, 403,
// ...) receives nothing more in that call, and is tried again as a whole.
// A URL with no canonical form (neither an absolute http(s) URL nor a path
// beginning with a single "/"), a path with no site host set, or a tag that the cache would not read as one tag (empty,
// white space, a comma, a control character, invalid UTF-8, the tag mode's
// separator) or that cannot fit in a header fails on its own, named in a
// [backends.Permanent] error, after the others are purged. When every node
// purged the rest, the error is a [backends.Partial] naming those objects,
// so that the dispatcher counts only them as failed.
//
// # Validation and secrets
//
// [New] refuses every setting that would reach the wire as something other
// than itself: methods, header names and [TagMode.Header] must be HTTP
// tokens (and not a header that frames the request, such as Host or
// Content-Length); [TagMode.Path] must be a path in printable ASCII; site
// hosts, header values and the tag framing must hold no control character.
// No error, log or panic of the package shows a credential: node URLs (and
// any URL) appear as [backends.RedactURL] shows them, and header values not
// at all.
//
// # One node at a time
//
// Nodes are purged in parallel, and one node down never stops the others.
// Result.IDs says, per node, what it did. The error of a call joins one
// [*NodeError] per failed node, and is marked [backends.Permanent] only when
// no failed node can succeed on a retry. The Backend remembers which nodes
// have purged a request: when the dispatcher retries it, only the nodes that
// failed receive it again.
//
// A Backend is still one backend to the dispatcher: while it retries a batch
// for a node that is down, the batch holds one of the backend's workers. With
// a fixed list of nodes, [NewCluster] makes one Backend per node instead, so
// that each node has its own queue, workers and retries, and a node that
// stays down delays nothing but its own purges. With [WithDiscovery], a node
// that leaves the list is no longer retried.
//
// # Connections and limits
//
// Each node gets at most [WithNodeConcurrency] requests in flight, shared by
// concurrent calls, over as many keep-alive connections. The backend keeps
// these connections itself: the goroutine that sends a request writes it and
// reads the answer on its connection, which costs about half the CPU of
// net/http's Transport for these tiny requests (net/http parses the
// answers). Every request has a deadline ([WithRequestTimeout]); answers are
// drained so that connections are reused; a keep-alive connection the node
// closed while idle is replaced without a failure; redirects are never
// followed, and no HTTP proxy is used. https nodes are verified against the
// system's roots or [WithTLSConfig]. [WithHTTPClient] sends through an
// *http.Client instead.
//
// Keep [TagMode.MaxHeaderBytes] under the cache's header limit: Varnish
// closes the connection, with no answer, on a header line longer than its
// http_req_hdr_len, and a missing answer looks like a network failure, which
// is retried.
//
// # Discovery
//
// [WithDiscovery] takes a function that returns the current nodes, such as
// [DNS] for a Kubernetes headless service. A goroutine calls it at once and
// then every [WithDiscoveryInterval], and sooner when a node could not be
// reached; a failed call keeps the last list. Close stops it.
//
// # Options
//
// Every option is a With… function. [New] and [NewCluster] check them and
// return an error naming each invalid one and how to fix it; an option
// given nil where it expects a function, a client, TLS settings or a logger
// ([WithDiscovery], [WithHTTPClient], [WithTLSConfig], [WithLogger]) is such
// an error, not a request for the default: leave the option out for the
// default, and pass slog.New(slog.DiscardHandler) to silence the logs.
package httppurge
