// Package fastly is a purge backend for Fastly's purge API, with no SDK.
//
// A [Backend] turns each batch from the dispatcher into Fastly's purge
// requests, authenticated with the Fastly-Key header:
//
//   - URLs: one POST /purge/{host}{path} per URL (Fastly has no batch URL
//     purge), sent with bounded concurrency ([WithConcurrency]). A
//     site-relative path becomes one URL per hostname ([WithHostnames]);
//     http and https spellings of a page are one purge, since the scheme
//     is not part of Fastly's cache key.
//   - Tags: POST /service/{service_id}/purge with {"surrogate_keys":[...]},
//     at most 256 keys per request ([MaxKeysPerRequest]).
//   - Everything: POST /service/{service_id}/purge_all ([Backend.PurgeAll]),
//     which counts against Fastly's hourly API rate limit and is paced.
//
// [WithSoftPurge] marks content stale instead of removing it
// (Fastly-Soft-Purge: 1); purge_all is always hard.
//
// # Rate limits and failures
//
// Fastly documents that URL and surrogate-key purges are not rate limited,
// and that purge_all counts against the limit of 1,000 non-read API
// requests per hour, reported in the Fastly-RateLimit-Remaining and
// Fastly-RateLimit-Reset headers. The backend is a backends.Pacer: after a
// 429 it holds further purges until Retry-After (or the reset) has passed,
// and when Fastly says no hourly requests remain it holds purge_all until
// the reset; a caller whose deadline comes first is told how long to wait
// with backends.RetryAfter.
//
// Answers are classified for the dispatcher: 429 is backends.RetryAfter;
// 401, 403, 404 (an unknown service) and 400 are backends.Permanent; 5xx
// and network errors are temporary. A batch of which only some URLs failed
// reports exactly those with backends.Partial, so that only they are
// retried or counted as failed. The API token never appears in an error, a
// log line or a result.
//
// Credentials default to the FASTLY_API_TOKEN and FASTLY_SERVICE_ID
// environment variables, as Fastly's CLI reads them.
//
// Package fastlytest has a faithful fake of the API for tests.
package fastly
