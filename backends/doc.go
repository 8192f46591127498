// Package backends is the small vocabulary shared by the gormpurge plugin, the
// dispatcher and every purge backend: the [Request] that says what to purge,
// the [Backend] interface a cache implements, and the error classifiers
// ([Permanent], [RetryAfter]) a backend uses to tell the dispatcher what to do
// with a failure.
//
// It imports nothing of gorm or of the gormpurge root package, so a backend can
// be built, tested and used without a database.
//
// # Writing a backend
//
// A backend is a type with the three methods of [Backend]. Name is stable
// and unique per dispatcher. Limits says how large one call may be; the
// dispatcher cuts batches to fit, so Purge must purge exactly what it is
// given, every object of it, up to those limits. Purge must be safe for
// concurrent use: the dispatcher calls it from several workers at once.
// [Func] turns a function into a Backend with no limits, for small
// integrations.
//
// Purge takes a context first and honours it: when ctx has already ended,
// it purges nothing and returns an error wrapping ctx.Err(); when ctx ends
// while a request is in flight, it gives up promptly with such an error.
// The dispatcher gives each attempt its own deadline.
//
// Optional interfaces say what else a backend can do; the dispatcher
// checks for them with a type assertion:
//
//   - [Pacer]: the backend paces itself against a rate limit it knows (the
//     Akamai backend's copy of Fast Purge's token buckets). The dispatcher
//     calls Pace before each Purge, outside the attempt's deadline, so that
//     waiting for tokens never counts as a failed attempt.
//   - [PurgeAller]: the backend can purge everything it caches for the
//     site in one coarse operation (Akamai's CP codes, the local cache's
//     Clear), used when a handoff is escalated to a purge of everything.
//   - [AllPacer]: a PurgeAller whose purge of everything must wait its turn
//     (CloudFront's "/*" waits for room among the wildcard invalidations in
//     progress). The dispatcher calls PaceAll before each PurgeAll, as it
//     calls Pace before Purge.
//   - [TagPurger]: the backend can tell whether its configuration purges
//     cache tags at all (an HTTP cache without tags skips them). A backend
//     that does not implement it is assumed to purge tags.
//   - [Closer]: the backend holds goroutines or connections. Close(ctx)
//     releases them within ctx and may be called twice, and on a backend
//     never used. The dispatcher closes such backends after draining.
//
// A backend's constructor, New(opts ...Option) (or New(ctx, opts...)),
// returns (*Backend, error): a nil option, an invalid value or a missing
// credential is an error naming the option and how to fix it, since
// configuration comes from the environment at run time. Its test kit
// (akamaitest, cloudflaretest, fastlytest, cloudfronttest) is the other
// way round: NewServer(opts ...Option) returns *Server only and, like
// httptest.NewServer, panics with a clear message on misuse (a nil option,
// an invalid value, FailNext with a status out of its range), because
// that is a mistake in the test, not in the code under test. The kits'
// test controls, where a kit has them, agree in name and shape:
// FailNext(status, times) fails the next requests with the provider's
// answer for status, Respond(hook) lets a hook decide per request, Hold()
// (arrived, release) holds requests in flight for backendtest.Harness.Hold,
// Responses counts answers by status, and Reset starts over.
//
// # Classifying failures
//
// The dispatcher decides what to do with a failure from how it is marked:
//
//   - A plain error is temporary (a 5xx, no answer): retried with backoff.
//   - [Permanent] marks what retrying cannot fix (a 403, a refused
//     credential, an object the cache will never accept): reported, not
//     retried.
//   - [RetryAfter] marks a temporary failure with a known wait (a 429 with
//     Retry-After or rate-limit headers): the next attempt waits at least
//     that long.
//   - [Partial] names the objects that failed when the rest of the batch
//     was purged, in the form the Request held them, so that only they
//     count as failed. It combines with Permanent and RetryAfter.
//
// A service that refuses single objects of a request by name (Akamai,
// Cloudflare) reports them in a [RejectedError], marked Permanent and
// Partial, so that callers find those backends' refusals with one
// errors.As (Fastly reports its per-URL failures in a fastly.FailedError,
// each with its own cause; CloudFront its refused paths in a
// cloudfront.RefusedError). A 429's Retry-After header is read with
// [ParseRetryAfter].
//
// Wrap errors with %w so the marks survive, and keep secrets (tokens,
// passwords, signed headers) out of every error and log line; name a URL
// that may carry a credential with [RedactURL].
//
// # Canonical objects
//
// A purge names a page in one spelling, [CanonicalURL] (tags: [CanonicalTag]),
// defined here and nowhere else. Requests from the plugin, the dispatcher
// and the outbox already hold that form; a backend called directly brings
// what it is given to it with [CanonicalRequest] (or the two functions)
// and sends exactly that: "/caf\u00e9" reaches the cache as "/caf%C3%A9". An
// object with no canonical form fails on its own, with [Partial] and
// [Permanent], and the others are purged.
//
// # Testing a backend
//
// Package backendtest holds the conformance suite every backend passes:
// backendtest.Run(t, factory) checks limits, canonical objects, context
// cancellation, each class of failure, concurrent use, Close and that no
// error shows a secret. The factory returns a backendtest.Harness: the
// backend pointed at a faithful fake of its cache (an httptest server
// answering as the real one does; akamaitest for Fast Purge), a function
// saying what the fake received, and ways to make the fake fail with each
// class or hold its answer. A class the backend cannot produce is declared
// unsupported by returning false from Harness.Fail. A backend is done when
// it passes the suite against its fake, and its fake's own tests against
// the real service.
package backends
