package cloudfronttest

import (
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Option configures a [Server]. Pass options to [NewServer]. An option
// given an invalid value panics, as httptest does on misuse: it is a
// mistake in the test, not in the code under test. Leave the option out
// for the default.
type Option func(*config)

type config struct {
	distributions []string
	delay         time.Duration
	maxPaths      int
	maxWildcards  int
	cacheTags     bool
	creds         *aws.Credentials
}

// DefaultCompletionDelay is how long, by default, an invalidation of the
// fake stays InProgress before it is Completed. Real invalidations take
// from seconds to a few minutes; tests want them short.
const DefaultCompletionDelay = 100 * time.Millisecond

// WithDistributions sets the ids of the distributions the account has.
// The default is one, [DefaultDistribution]. A request for another id is
// answered 404 NoSuchDistribution. It panics if no id is given or an id is
// empty.
func WithDistributions(ids ...string) Option {
	if len(ids) == 0 {
		panic("cloudfronttest: WithDistributions(): give at least one distribution id, such as \"EDFDVBD6EXAMPLE\", or leave the option out")
	}
	for _, id := range ids {
		if id == "" {
			panic(fmt.Sprintf("cloudfronttest: WithDistributions(%q): a distribution id is empty", ids))
		}
	}
	ids = append([]string(nil), ids...)
	return func(c *config) { c.distributions = ids }
}

// WithCompletionDelay sets how long each invalidation stays InProgress
// after it is created, counting against the in-progress limits, before it
// is Completed. 0 completes it at once. The default is
// [DefaultCompletionDelay]. It panics if d is negative.
func WithCompletionDelay(d time.Duration) Option {
	if d < 0 {
		panic(fmt.Sprintf("cloudfronttest: WithCompletionDelay(%v): the delay must not be negative", d))
	}
	return func(c *config) { c.delay = d }
}

// WithInProgressLimits sets the distribution's in-progress limits: the
// individual paths and the wildcard paths of the invalidations in progress.
// The defaults are CloudFront's, 3,000 and 15. It panics unless both are
// at least 1.
func WithInProgressLimits(paths, wildcards int) Option {
	if paths < 1 || wildcards < 1 {
		panic(fmt.Sprintf("cloudfronttest: WithInProgressLimits(%d, %d): both limits must be at least 1", paths, wildcards))
	}
	return func(c *config) { c.maxPaths, c.maxWildcards = paths, wildcards }
}

// WithCacheTags gives the distributions a CacheTagConfig: invalidation
// items "#tag" are accepted and recorded as tags. Without it they are
// answered 400 InvalidArgument, like any item that does not begin with
// "/". (Whether CloudFront refuses or ignores tag items on a distribution
// without a CacheTagConfig is not documented; the fake refuses them, so
// that a misconfigured test fails.)
func WithCacheTags() Option {
	return func(c *config) { c.cacheTags = true }
}

// WithCredentials fixes the access key id, secret key and optional session
// token that requests must be signed with, instead of fresh random ones.
// It panics (without showing the secret) if the key id or the secret is
// empty.
func WithCredentials(accessKeyID, secretAccessKey, sessionToken string) Option {
	if accessKeyID == "" || secretAccessKey == "" {
		panic("cloudfronttest: WithCredentials: the access key id and the secret key must not be empty; leave the option out for random ones")
	}
	creds := &aws.Credentials{AccessKeyID: accessKeyID, SecretAccessKey: secretAccessKey, SessionToken: sessionToken, Source: "cloudfronttest"}
	return func(c *config) { c.creds = creds }
}
