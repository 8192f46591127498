// Package cloudflaretest is a faithful fake of Cloudflare's purge_cache API
// (POST /client/v4/zones/{zone_id}/purge_cache), for testing code that
// purges through Cloudflare, ours or yours, without a Cloudflare account.
//
// [NewServer] starts the fake on a local TLS port with a fresh random zone
// ID and API token. Point the code under test at [Server.Endpoint] with
// [Server.Token], [Server.Zone] and [Server.Client], make it purge, then read
// what the fake accepted with [Server.Purges], [Server.Files] and
// [Server.Tags]:
//
//	srv := cloudflaretest.NewServer()
//	t.Cleanup(srv.Close)
//	b, _ := cloudflare.New(cloudflare.WithEndpoint(srv.Endpoint()), cloudflare.WithZone(srv.Zone()),
//		cloudflare.WithAPIToken(srv.Token()), cloudflare.WithHTTPClient(srv.Client()))
//	// ... purge, then:
//	require.Equal(t, []string{"https://www.example.com/posts/1"}, srv.Files())
//
// # What it checks
//
// Every request, in this order, answered in Cloudflare's envelope
// {"success":false,"errors":[{"code":...,"message":...}],"messages":[],"result":null}:
//
//   - The route: POST {Endpoint}/zones/{zone_id}/purge_cache, else 404 with
//     code 7000 "No route for that URI" (405 for another method).
//   - The token: "Authorization: Bearer <token>"; a missing or malformed
//     header is 400 with code 6003 "Invalid request headers" (its
//     error_chain holds 6111 "Invalid format for Authorization header"), a
//     wrong token 403 with code 10000 "Authentication error".
//   - The zone: a zone ID that is not 32 lower-case hex digits is 400 with
//     code 7003 "Could not route to ..., perhaps your object identifier is
//     invalid?"; a well-formed ID of another zone is 404 with the same code.
//   - The JSON body: an object holding exactly one of "files", "tags",
//     "hosts", "prefixes" (non-empty arrays) or "purge_everything" (true),
//     as Cloudflare's API reference lists the body's variants, with no other
//     field; else 400 with code 1012. A list longer than the limit
//     ([WithMaxItems], default 100; [WithMaxFiles] for Enterprise's 500
//     URLs) is 400 with code 1013 (the fake's code: Cloudflare documents
//     the limit, not the code).
//   - Each object: files are absolute http or https URLs with a host (or
//     {"url":...,"headers":{...}} objects); tags are 1 to 1,024 printable
//     ASCII characters without spaces. A refused object is 400 with
//     codes 1016 "One or more cache purge errors" and, for each object, 1100
//     (a tag too long: "Tag exceeds maximum length of 1024 characters: ..."),
//     1315 (a tag with a character that is not printable ASCII) or
//     [CodeRefusedURL] (a URL: the fake's code and message), whose message
//     ends with ": " and the object. Cloudflare documents no per-object
//     code or message: these are the fake's. [Server.RefuseURLs] refuses
//     chosen URLs in the same way.
//   - Tags, hosts and prefixes need an Enterprise zone: [WithoutTags] makes
//     the fake answer them with 400 and code 1107 "Only enterprise zones
//     can purge by tag.".
//   - The account's purge limits, as Cloudflare publishes them: a request
//     of tags, hosts, prefixes or of everything takes one token of the
//     token bucket ([WithBucket], default Cloudflare's Pro plan: 5 requests
//     a second, bucket 25); a request of files takes no token of it but one
//     URL token per URL of the URL rate ([WithURLRate], default Pro's
//     1,500 URLs a second, of which one second's worth may be spent at
//     once). When there are not enough, the answer is 429 with a
//     Retry-After header (whole seconds, rounded up) and code 971 "Please
//     wait and consider throttling your request speed", and nothing is
//     purged.
//
// An accepted request is answered 200 with
// {"success":true,"errors":[],"messages":[],"result":{"id":"<32 hex digits>"}}
// and recorded.
//
// # Faults and records
//
// [Server.FailNext] makes the next requests fail with a status (429 with
// Retry-After, 500, 502, 503, 504, 400, 403, ...) before any other check;
// [Server.Respond] installs a hook that decides per request;
// [Server.Hold] holds requests until released. [Server.Purges],
// [Server.Files], [Server.Tags], [Server.Everything] and
// [Server.Responses] tell what happened; [Server.Reset] starts over.
//
// # What it does not model
//
// Legacy X-Auth-Email/X-Auth-Key credentials; the account-wide API limit of
// 1,200 requests in five minutes; the URL rate as a moving average
// (the fake uses a token bucket of one second's worth); custom cache keys (the headers of a file object are
// accepted and ignored); a purge never completes anywhere.
package cloudflaretest
