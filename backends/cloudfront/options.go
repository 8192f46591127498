package cloudfront

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/gormpurge/gormpurge/internal/nilcheck"
)

// Option configures a [Backend] at [New]. Every option is a With…
// function; a nil Option, or an option given a nil or out-of-range value,
// is a [*ConfigError] from New naming the option and how to fix it.
type Option func(*config)

type config struct {
	distribution string
	awsConfig    *aws.Config
	endpoint     string
	httpClient   *http.Client
	poll         time.Duration
	maxAge       time.Duration
	maxPaths     int
	maxWildcards int
	cacheTags    bool
	logger       *slog.Logger
	name         string
	errs         []error
}

// ConfigError reports an invalid setting at [New]: the option at fault and
// what to do about it. It never quotes a credential.
type ConfigError struct {
	// Option names the option, such as "WithDistribution".
	Option string
	// Err is the problem.
	Err error
}

func (e *ConfigError) Error() string { return "cloudfront: " + e.Option + ": " + e.Err.Error() }

// Unwrap returns the problem.
func (e *ConfigError) Unwrap() error { return e.Err }

func (c *config) fail(option string, format string, args ...any) {
	c.errs = append(c.errs, &ConfigError{Option: option, Err: fmt.Errorf(format, args...)})
}

// WithDistribution sets the id of the CloudFront distribution whose edge
// caches the backend invalidates, such as "EDFDVBD6EXAMPLE" (the console's
// "ID" column, or `aws cloudfront list-distributions`). It is required.
func WithDistribution(id string) Option {
	return func(c *config) {
		id = strings.TrimSpace(id)
		if id == "" || len(id) > 128 || strings.IndexFunc(id, func(r rune) bool {
			return !('A' <= r && r <= 'Z' || '0' <= r && r <= '9')
		}) >= 0 {
			c.fail("WithDistribution", "%q is not a distribution id: want upper-case letters and digits, such as EDFDVBD6EXAMPLE", id)
			return
		}
		c.distribution = id
	}
}

// WithAWSConfig sets the AWS configuration the client is made from: its
// credentials, region, HTTP client and retryer. Without it, [New] loads the
// SDK's default configuration (config.LoadDefaultConfig): credentials from
// the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN), the shared config and credentials files
// (AWS_PROFILE), web identity, SSO, or the container or instance role, as
// the AWS CLI reads them. CloudFront is a global service signed for
// us-east-1: an empty region means us-east-1. The backend turns off the
// SDK's own retries (the dispatcher retries, with the backend's
// classification); credentials are resolved at the first request.
func WithAWSConfig(cfg aws.Config) Option {
	return func(c *config) { c.awsConfig = &cfg }
}

// WithEndpoint sets the base URL of the CloudFront API, such as a
// cloudfronttest.Server's URL. The default is the SDK's endpoint,
// https://cloudfront.amazonaws.com. Use it for tests and for a proxy.
func WithEndpoint(endpoint string) Option {
	return func(c *config) {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			c.fail("WithEndpoint", "want an http(s) base URL such as https://cloudfront.amazonaws.com, without user information, query or fragment")
			return
		}
		c.endpoint = strings.TrimSuffix(endpoint, "/")
	}
}

// WithHTTPClient sets the HTTP client that sends the API requests, for a
// proxy, custom TLS or a test server; it replaces the HTTP client of the AWS
// configuration. nil is an error: leave the option out for the SDK's
// client.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) {
		if hc == nil {
			c.fail("WithHTTPClient", "nil client: pass an *http.Client, or leave the option out for the SDK's")
			return
		}
		c.httpClient = hc
	}
}

// WithWaitPoll sets how often the backend asks CloudFront (GetInvalidation)
// whether one of its invalidations has completed, while a purge waits for
// the in-progress limits. The default is [DefaultWaitPoll]; it must be at
// least a millisecond.
func WithWaitPoll(d time.Duration) Option {
	return func(c *config) {
		if d < time.Millisecond {
			c.fail("WithWaitPoll", "%v: want at least 1ms (the default is %v)", d, DefaultWaitPoll)
			return
		}
		c.poll = d
	}
}

// DefaultMaxInvalidationAge is how long, by default, the backend counts
// one of its invalidations as in progress when CloudFront never says it
// completed (GetInvalidation keeps failing, or is refused for want of
// cloudfront:GetInvalidation). CloudFront completes invalidations within
// minutes, so after this long the invalidation's paths are counted free
// again instead of blocking every later purge.
const DefaultMaxInvalidationAge = 30 * time.Minute

// WithMaxInvalidationAge sets how long the backend counts one of its
// invalidations as in progress at most, when CloudFront does not say it
// completed; the default is [DefaultMaxInvalidationAge]. It must be at
// least a millisecond. Too short a value lets the backend exceed the
// in-progress limits, which CloudFront answers with
// TooManyInvalidationsInProgress (retried).
func WithMaxInvalidationAge(d time.Duration) Option {
	return func(c *config) {
		if d < time.Millisecond {
			c.fail("WithMaxInvalidationAge", "%v: want at least 1ms (the default is %v)", d, DefaultMaxInvalidationAge)
			return
		}
		c.maxAge = d
	}
}

// WithInProgressLimits lowers the number of individual paths and of
// wildcard paths the backend keeps in progress at once, which default to
// CloudFront's quotas ([MaxPathsInProgress], [MaxWildcardsInProgress]).
// Lower them when other tools invalidate the same distribution, so that
// the backend leaves them room. Values above the quotas are errors.
func WithInProgressLimits(paths, wildcards int) Option {
	return func(c *config) {
		if paths < 1 || paths > MaxPathsInProgress {
			c.fail("WithInProgressLimits", "paths %d: want from 1 to %d", paths, MaxPathsInProgress)
			return
		}
		if wildcards < 1 || wildcards > MaxWildcardsInProgress {
			c.fail("WithInProgressLimits", "wildcards %d: want from 1 to %d", wildcards, MaxWildcardsInProgress)
			return
		}
		c.maxPaths, c.maxWildcards = paths, wildcards
	}
}

// WithCacheTags makes the backend invalidate cache tags, as items "#tag"
// of an invalidation, which CloudFront supports on a distribution with a
// CacheTagConfig (the response header your origin lists its tags in). Tags
// are case-insensitive at CloudFront, and must be ASCII from "!" to "~"
// without a comma, at most [MaxTagLength] characters; others are refused.
// Without it, tags are refused: a distribution without CacheTagConfig
// ignores them, and a purge that does nothing must not look done.
func WithCacheTags() Option {
	return func(c *config) { c.cacheTags = true }
}

// WithLogger sets where the backend logs: created invalidations at Debug,
// waits for the in-progress limits and refusals at Warn. The default is
// slog.Default(); pass slog.New(slog.DiscardHandler) to silence it. nil is
// an error. Credentials are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if nilcheck.IsNil(l) {
			c.fail("WithLogger", "nil logger: pass slog.New(slog.DiscardHandler) to silence the backend, or leave the option out")
			return
		}
		c.logger = l
	}
}

// WithName sets the backend's name in logs, metrics, results and
// dispatcher options such as dispatcher.WithEscalation. The default is
// "cloudfront".
func WithName(name string) Option {
	return func(c *config) {
		if strings.TrimSpace(name) == "" {
			c.fail("WithName", "empty name: leave the option out for \"cloudfront\"")
			return
		}
		c.name = name
	}
}

var errNilOption = errors.New("an Option is nil: remove it, or pass one made by a With... function")
