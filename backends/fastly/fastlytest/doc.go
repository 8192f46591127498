// Package fastlytest is a faithful fake of Fastly's purge API, for testing
// code that purges through Fastly, ours or yours, without a Fastly account.
//
// [NewServer] starts the fake on a local TLS port with a fresh random API
// token and service ID. Point the code under test at [Server.URL] as its API
// base, with [Server.Client] (which trusts the fake's certificate),
// [Server.Token] and [Server.ServiceID], then read what it purged with
// [Server.Purges], [Server.URLs], [Server.Keys] and [Server.PurgeAlls]:
//
//	srv := fastlytest.NewServer()
//	t.Cleanup(srv.Close)
//	// Configure the code under test with srv.URL(), srv.Client(),
//	// srv.Token() and srv.ServiceID(), make it purge, then:
//	require.Equal(t, []string{"www.example.com/posts/1"}, srv.URLs())
//
// # What it serves
//
// The four purge endpoints of https://www.fastly.com/documentation/reference/api/purging/:
//
//   - POST /purge/{cached_url}: purge one URL, given without its scheme
//     ("www.example.com/posts/1?page=2"; the scheme is not part of
//     Fastly's cache key). Answered 200 {"status":"ok","id":"..."}. The
//     path and query are kept exactly as sent, percent-encoding included.
//   - POST /service/{service_id}/purge: purge up to 256 surrogate keys
//     ([MaxKeys]), listed in a JSON body {"surrogate_keys":[...]} or in a
//     space-separated Surrogate-Key header. Answered 200 with a JSON object
//     mapping each key to its purge ID.
//   - POST /service/{service_id}/purge/{surrogate_key}: purge one key,
//     answered 200 {"status":"ok","id":"..."}.
//   - POST /service/{service_id}/purge_all: purge everything, answered 200
//     {"status":"ok"}. Fastly documents that it cannot be soft: the fake
//     records it as hard whatever the request says.
//
// A Fastly-Soft-Purge header (any value) makes a URL or key purge soft; the
// fake records which ([Purge.Soft]).
//
// # What it checks
//
// Every request, in this order, once a [Server.Hold] lets it through: an
// injected failure ([Server.FailNext], [Server.Respond]); the Fastly-Key header, else 401 {"msg":"Provided
// credentials are missing or invalid"} (the fake requires the token for
// URL purges too, as a service with Fastly-Purge-Requires-Auth does); the
// route, else 404; the method (POST), else 405; the service ID, else 404
// {"msg":"Record not found","detail":"Cannot find service '...'"}; the
// keys (at least one, at most 256, no JSON body and header together, valid
// JSON with no other field), else 400; for purge_all, the hourly rate
// limit, else 429.
//
// # Rate limits
//
// Fastly allows 1,000 non-read API requests per hour and per user; URL and
// surrogate-key purges are not limited, purge_all counts
// (https://docs.fastly.com/api/, "Rate limiting"). The fake keeps one
// hourly window from its start ([WithHourlyLimit], default
// [DefaultHourlyLimit]; [WithNow] sets the clock), spends one request per
// accepted purge_all, and answers an authenticated request with
// Fastly-RateLimit-Remaining (requests left in the window) and
// Fastly-RateLimit-Reset (the window's end, in UTC epoch seconds). A
// purge_all with nothing remaining is answered 429 with those headers and
// spends nothing.
//
// # Faults and records
//
// [Server.FailNext] makes the next requests fail with a status and a body
// in Fastly's shape (a 429 also carries Retry-After: 1); [Server.Respond]
// installs a hook that decides per request; [Server.Hold] holds requests
// until released. [Server.Purges] lists what was accepted;
// [Server.Responses] counts answers by status; [Server.Reset] starts over.
//
// Like httptest, [NewServer], its options and FailNext panic on misuse (a
// nil option, an invalid value): a mistake in the test, not in the code
// under test.
//
// # What it does not model
//
// One service per server; the error texts are in Fastly's JSON shape
// ({"msg":...,"detail":...}) but not captured from the service; URL purges
// are not checked against the service's domains; PURGE requests sent to a
// site itself are not served; no purge ever takes effect anywhere.
package fastlytest
