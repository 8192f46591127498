package cloudfronttest

import (
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Option configures a [Server] at [NewServer]. A nil Option, or an option
// given an invalid value, is an error from NewServer.
type Option func(*config) error

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
// answered 404 NoSuchDistribution.
func WithDistributions(ids ...string) Option {
	return func(c *config) error {
		if len(ids) == 0 {
			return errors.New("WithDistributions: no id given")
		}
		for _, id := range ids {
			if id == "" {
				return errors.New("WithDistributions: an empty id")
			}
		}
		c.distributions = append([]string(nil), ids...)
		return nil
	}
}

// WithCompletionDelay sets how long each invalidation stays InProgress
// after it is created, counting against the in-progress limits, before it
// is Completed. 0 completes it at once. The default is
// [DefaultCompletionDelay].
func WithCompletionDelay(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("WithCompletionDelay(%v): the delay must not be negative", d)
		}
		c.delay = d
		return nil
	}
}

// WithInProgressLimits sets the distribution's in-progress limits: the
// individual paths and the wildcard paths of the invalidations in progress.
// The defaults are CloudFront's, 3,000 and 15.
func WithInProgressLimits(paths, wildcards int) Option {
	return func(c *config) error {
		if paths < 1 || wildcards < 1 {
			return fmt.Errorf("WithInProgressLimits(%d, %d): both limits must be at least 1", paths, wildcards)
		}
		c.maxPaths, c.maxWildcards = paths, wildcards
		return nil
	}
}

// WithCacheTags gives the distributions a CacheTagConfig: invalidation
// items "#tag" are accepted and recorded as tags. Without it they are
// answered 400 InvalidArgument, like any item that does not begin with
// "/". (Whether CloudFront refuses or ignores tag items on a distribution
// without a CacheTagConfig is not documented; the fake refuses them, so
// that a misconfigured test fails.)
func WithCacheTags() Option {
	return func(c *config) error {
		c.cacheTags = true
		return nil
	}
}

// WithCredentials fixes the access key id, secret key and optional session
// token that requests must be signed with, instead of fresh random ones.
func WithCredentials(accessKeyID, secretAccessKey, sessionToken string) Option {
	return func(c *config) error {
		if accessKeyID == "" || secretAccessKey == "" {
			return errors.New("WithCredentials: the access key id and the secret key must not be empty")
		}
		c.creds = &aws.Credentials{AccessKeyID: accessKeyID, SecretAccessKey: secretAccessKey, SessionToken: sessionToken, Source: "cloudfronttest"}
		return nil
	}
}
