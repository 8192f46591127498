// Package akamai is a purge backend for Akamai's Fast Purge API (CCU v3).
//
// A [Backend] turns each batch from the dispatcher into signed POSTs to
// /ccu/v3/{invalidate|delete}/{url|tag}[/{network}]: URLs made absolute with
// the configured hostnames, percent-encoded and deduplicated across http and
// https, packed to Akamai's 50,000-byte body limit and to the size of the
// matching rate-limit bucket, and paced on the client so that a bulk change
// does not become a storm of 429s. Answers are classified for the
// dispatcher: 429 waits for the bucket to refill, 507, 5xx and network errors
// back off and retry, 413 splits the batch, and 400, 401, 403 and 415 are
// permanent, reported as an [*Error] with Akamai's title, detail and support
// ID.
//
// With the site's CP codes ([WithCPCodes]), the Backend also purges
// everything it caches in one request ([Backend.PurgeAll]), which
// dispatcher.WithEscalation uses for a handoff too large to purge URL by
// URL.
//
// Credentials come from an .edgerc file, the environment or code, and are
// checked once, at [New]. Requests are signed with EdgeGrid
// (EG1-HMAC-SHA256) by github.com/akamai/AkamaiOPEN-edgegrid-golang/v8.
//
// Every option is a With… function. [New] checks them and returns a
// [*ConfigError] naming each invalid one and how to fix it; an option given
// nil where it expects a client, a logger or a clock ([WithHTTPClient],
// [WithLogger], [WithClock]) is such an error, not a request for the
// default: leave the option out for the default, and pass
// slog.New(slog.DiscardHandler) to silence the logs.
//
// Package akamaitest has a faithful fake of the API for tests.
package akamai
