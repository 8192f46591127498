// Package cloudfront purges Amazon CloudFront distributions through
// invalidations, with the AWS SDK for Go v2. It is a module of its own, so
// that the SDK stays out of applications that do not use CloudFront.
//
// A [Backend] turns each batch from the dispatcher into CreateInvalidation
// calls on one distribution ([WithDistribution]). A URL becomes its
// invalidation path ([InvalidationPath]): path and query in canonical form,
// the scheme and host dropped, since a distribution invalidates a path on
// every host it serves. A path and query ending in "*" is a wildcard path.
// Everything is the path "/*" ([Backend.PurgeAll]).
//
// # Limits
//
// CloudFront lets a distribution have at most 3,000 individual paths and 15
// wildcard paths in invalidations in progress ([MaxPathsInProgress],
// [MaxWildcardsInProgress]); more is refused with
// TooManyInvalidationsInProgress. The backend counts its own invalidations
// in progress and, when the next one would exceed a limit, waits (in
// [Backend.Pace], which the dispatcher calls outside the attempt's
// deadline) for earlier ones to complete, asking CloudFront with
// GetInvalidation every [WithWaitPoll], instead of failing; a failed check
// is retried, and an invalidation never seen completed stops counting
// after [WithMaxInvalidationAge]. Purge itself never waits: a batch larger
// than the limits is invalidated one chunk per attempt, the rest returned
// as backends.RetryAfter and backends.Partial, and the retry of the same
// Request creates only the chunks not yet created. When others'
// invalidations fill the limits, CloudFront's refusal is
// backends.RetryAfter, and the backend backs off in Pace (poll interval,
// doubled per refusal in a row, up to 5 minutes). The credentials need
// cloudfront:CreateInvalidation and cloudfront:GetInvalidation on the
// distribution. A tag is never a wildcard.
//
// Every invalidation has a CallerReference of its own: a random prefix
// drawn at [New] and a counter. CloudFront answers a reused reference with
// the earlier invalidation, invalidating nothing new, a known way of
// losing purges when references are derived from time or content.
//
// # Cost
//
// Each account submits [FreePathsPerMonth] (1,000) paths a month free;
// each path after that costs [PricePerPathUSD] ($0.005). A wildcard path
// counts as one, whatever it matches. A bulk change that purges thousands
// of pages should therefore invalidate "/*" instead:
//
//	d, err := dispatcher.New([]backends.Backend{cf},
//		dispatcher.WithEscalation("cloudfront", dispatcher.Escalation{Above: 100, All: true}))
//
// makes any handoff of more than 100 URLs one invalidation of "/*" (see
// the example). "/*" empties the distribution's caches: the origin then
// serves every page again.
//
// # Tags
//
// CloudFront invalidates cache tags (items "#tag") only on a distribution
// with a CacheTagConfig; [WithCacheTags] turns them on. Without it, tags
// are refused with backends.Permanent and backends.Partial naming them.
//
// # Credentials
//
// Without [WithAWSConfig], [New] loads the SDK's default configuration:
// the environment, the shared config and credentials files, SSO, web
// identity, or the container or instance role, as the AWS CLI does. The
// backend never shows credentials in errors, logs or its String.
//
// Package cloudfronttest has a faithful fake of the API for tests.
package cloudfront
