// Package cloudflare is a purge backend for Cloudflare's cache, through the
// purge_cache API (POST /client/v4/zones/{zone_id}/purge_cache) with an API
// token. It needs no SDK.
//
// A [Backend] turns each batch from the dispatcher into purge requests of
// one kind each, as Cloudflare's API takes them: "files" (absolute URLs;
// site-relative paths become one https URL per hostname of
// [WithHostnames]) or "tags", at most [WithMaxItems] objects a request
// (Cloudflare's limit: [MaxItemsPerRequest], 100 operations, on every
// plan; [MaxURLsPerRequestEnterprise], 500 URLs, on Enterprise). Requests
// are paced on the client to the account's purge limits ([WithPlan],
// [WithRate]), so that a bulk change does not become a storm of 429s:
// purges by tag to the request token bucket, purges of URLs to the plan's
// URLs a second, which is all Cloudflare limits them by. By the pacer's
// schedule (BenchmarkRequestsPer10k), 10,000 URLs take 100 requests and
// about 12 seconds on Free, 5.8 on Pro and Business, and 2.4 on
// Enterprise (20 requests of 500); 10,000 tags take 100 requests and
// about 15 minutes on Free, 15 seconds on Pro, 5.1 on Business, and no
// wait on Enterprise, whose bucket holds 500.
// [Backend.PurgeAll] purges everything in the zone ("purge_everything"),
// which dispatcher.WithEscalation uses for a handoff too large to purge
// URL by URL.
//
// Answers are classified for the dispatcher: a 429 (or Cloudflare's code
// 971) waits for its Retry-After; 5xx and network errors back off and
// retry; a refused token (401, 403, codes 6003, 9109, 10000, ...), an
// unknown zone (404, codes 7000, 7003) and other refusals are permanent,
// reported as an [*Error] with Cloudflare's codes and messages. Objects
// Cloudflare refuses by name, and those that could never be sent (a path
// without hostnames, a tag Cloudflare does not accept), fail on their own
// ([*RejectedError], marked backends.Partial and backends.Permanent) while
// the rest is purged. A refusal that does not name its objects in the
// form [Backend.Purge] describes fails its whole request, permanently.
//
// The API token comes from [WithAPIToken] or the CLOUDFLARE_API_TOKEN
// environment variable, the zone from [WithZone] or CLOUDFLARE_ZONE_ID, as
// Cloudflare's own tools read them. The token needs the Zone > Cache Purge >
// Purge permission on the zone; it never appears in an error, a log line or
// a result.
//
// Package cloudflaretest has a faithful fake of the API for tests.
package cloudflare
