// Package akamaitest is a faithful fake of Akamai's Fast Purge v3 API (CCU
// v3), for testing code that purges through Akamai, ours or yours, without
// an Akamai account.
//
// [NewServer] starts the fake on a local TLS port with fresh random
// credentials. Point the code under test at it with [Server.Credentials]
// (or an .edgerc file from [Server.WriteEdgerc]) and [Server.Client], then
// read what it accepted with [Server.Purges] and [Server.Objects]:
//
//	srv := akamaitest.NewServer()
//	t.Cleanup(srv.Close)
//	// Configure the code under test with srv.Credentials() (host, tokens and
//	// secret) and srv.Client() (which trusts the fake's certificate), make
//	// it purge, then:
//	require.Equal(t, []string{"https://www.example.com/posts/1"}, srv.Objects(akamai.KindURL))
//
// The package example shows a request signed with the EdgeGrid library.
//
// # What it checks
//
// Every request, in this order:
//
//   - The EdgeGrid EG1-HMAC-SHA256 signature, verified independently of the
//     signing library and tested against Akamai's official vectors:
//     401 for a missing or malformed Authorization header, an unknown client
//     or access token, a signature that does not match (method, scheme,
//     host with port, path and query, signed headers, and the SHA-256 of the
//     first max_body bytes of a POST body) or a nonce used before; 400 when
//     the timestamp is more than 30 seconds off (see [WithNow]). A request
//     signed by edgegrid.Config with MaxBody left at 0 hashes an empty body
//     and is refused with 401, as Akamai refuses it.
//   - The endpoint: POST /ccu/v3/{invalidate|delete}/{url|tag|cpcode}, with
//     an optional /staging or /production (the default); 404 for any other
//     path, 405 for any other method.
//   - Content-Type application/json (parameters allowed), else 415; a body
//     of at most 50,000 bytes ([akamai.MaxBodyBytes]), else 413.
//   - The body schema, else 400: an object with "objects", a non-empty
//     array, and for URL requests an optional "hostname"; no other property.
//     URL objects are absolute http or https URLs with a host, or ARLs
//     ("/L/..."), or paths when "hostname" is given, with no space,
//     control character or non-ASCII byte (title "bad URL", detail the
//     object). Tags are 1 to 128 printable ASCII characters with none of
//     space , " = ( ) ? ; / [ ] < > * @ \ { } : (title "bad tag", detail the
//     tag). CP codes are positive JSON integers.
//   - The hosts the account may purge ([WithAuthorizedHosts]): 403
//     "unauthorized arl", detail the URL.
//   - The account's token buckets ([WithRateLimits], on the [WithClock]
//     clock): a request costs one request token plus one token per object
//     from its kind's bucket, all or nothing; when either is short the
//     answer is 429 with Akamai's body ("Rate Limit exceeded", "URL Rate
//     Limit exceeded", "TAG ..." or "CPCODE ...", with rateLimit,
//     rateLimitCurrentRequestSize and rateLimitRemaining) and nothing is
//     spent.
//
// An accepted request is answered 201 with {"httpStatus":201,
// "estimatedSeconds":5,"purgeId":...,"supportId":...,"detail":"Request
// accepted"} and recorded. Errors are problem JSON with httpStatus, title,
// detail, supportId and describedBy, as application/problem+json
// (application/json for 429 and 500, as in Akamai's OpenAPI file, and for
// the other 5xx). Authentication errors, which Akamai's API gateway answers
// before Fast Purge sees the request, also carry the gateway's type, status,
// instance, method, requestId and requestTime.
//
// # Rate-limit headers
//
// Every response to a correctly signed request carries X-Ratelimit-Limit,
// -Remaining, -Limit-Per-Second and -Seconds-To-Refresh-Limit for the
// request bucket and, when the path names a kind, the same with an -Objects
// suffix for that kind's bucket. Remaining is rounded down, Limit-Per-Second
// rounded down to the millionth and Seconds-To-Refresh-Limit (the time until
// the bucket is full) rounded up to the microsecond, so that a client that
// waits (needed - Remaining) / Limit-Per-Second for each bucket is never
// refused.
//
// # Time
//
// Two clocks: the buckets refill on [WithClock] (default: real time), and
// signature timestamps are checked against [WithNow] (default: time.Now),
// because the signing library stamps requests with real time. Give one
// [ScaledClock] to the fake and to the client under test to run minutes of
// pacing at Akamai's published limits in seconds. [WithLatency] delays
// requests and answers on the WithClock clock, so that a request spends its
// tokens when it arrives, as at Akamai, and not when the client sent it.
//
// # Faults and records
//
// [Server.FailNext] makes the next requests fail with a status and a
// realistic body (500, 503, 504, 507, 429, 403, ...); [Server.Respond]
// installs a hook that decides per request. [Server.Purges],
// [Server.Objects] and [Server.Responses] tell what happened; [Server.Reset]
// starts over.
//
// # What it does not model
//
// One account per server; the Host header is not checked against the
// credentials' host (the signature covers it); no purge ever completes or
// is visible anywhere (v3 has no status endpoint); nothing is spent on
// requests refused before the buckets (400, 403, 413, ...); the
// rate-limit-status endpoint is not served.
package akamaitest
