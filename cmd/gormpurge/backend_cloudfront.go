package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/spf13/pflag"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/cloudfront"
)

// awsCredentialsWait bounds how long the command waits for the AWS
// default credential chain (an instance role, SSO or an assumed role may
// ask the network) before it says it found none.
const awsCredentialsWait = 20 * time.Second

func init() {
	registerBackend(backendEntry{
		name:       "CloudFront",
		chooseWith: "--cloudfront-distribution ID",
		summary:    "Amazon CloudFront invalidations (--cloudfront-distribution ID)",
		group:      "CloudFront",
		addFlags:   addCloudFrontFlags,
	})
}

// cloudFrontSettings are the CloudFront backend's flags.
type cloudFrontSettings struct {
	fs           *pflag.FlagSet
	distribution string
	cacheTags    bool
	endpoint     string
}

func addCloudFrontFlags(f *pflag.FlagSet) backendSettings {
	s := &cloudFrontSettings{fs: f}
	f.StringVar(&s.distribution, "cloudfront-distribution", "", "invalidate the CloudFront distribution with this `ID`, such as EDFDVBD6EXAMPLE, with the AWS default credentials and region (AWS_* variables, AWS_PROFILE, ~/.aws, SSO, the instance or container role)")
	f.BoolVar(&s.cacheTags, "cloudfront-cache-tags", false, "the distribution has a CacheTagConfig: --tags invalidates tags (items \"#tag\")")
	f.StringVar(&s.endpoint, "cloudfront-endpoint", "", "the CloudFront API's base `URL`, for a proxy or a test server (default: the SDK's, https://cloudfront.amazonaws.com)")
	return s
}

func (s *cloudFrontSettings) chosen() bool { return s.fs.Changed("cloudfront-distribution") }

// build returns the CloudFront backend the flags and the AWS default
// configuration describe. It resolves the credentials, so that a missing
// one is told before anything is read or sent, dry runs included.
func (s *cloudFrontSettings) build(a *app, kind purgeKind, _ []string) (*builtBackend, error) {
	if s.distribution == "" {
		return nil, usageErrorf("--cloudfront-distribution: name the distribution, such as EDFDVBD6EXAMPLE (the console's ID column, or aws cloudfront list-distributions)")
	}
	if kind == kindTags && !s.cacheTags {
		return nil, usageErrorf("--tags: CloudFront invalidates tags only on a distribution with a CacheTagConfig: pass --cloudfront-cache-tags if it has one, or purge URLs")
	}
	ctx, cancel := context.WithTimeout(context.Background(), awsCredentialsWait)
	defer cancel()
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, usageErrorf("the AWS configuration (AWS_PROFILE, AWS_CONFIG_FILE, ~/.aws/config): %v", err)
	}
	if err := checkAWSCredentials(ctx, cfg); err != nil {
		return nil, err
	}
	b, err := cloudfront.New(ctx, s.options(a, cfg)...)
	if err != nil {
		return nil, configErrors(err, optionOf(func(ce *cloudfront.ConfigError) (string, error) {
			return ce.Option, ce.Err
		}), map[string]string{
			"WithDistribution": "--cloudfront-distribution",
			"WithEndpoint":     "--cloudfront-endpoint",
			"WithAWSConfig":    "the AWS configuration",
		})
	}
	return cloudFrontBuilt(b), nil
}

// options returns the options of cloudfront.New the flags and cfg, the
// AWS configuration, describe.
func (s *cloudFrontSettings) options(a *app, cfg aws.Config) []cloudfront.Option {
	opts := []cloudfront.Option{
		cloudfront.WithDistribution(s.distribution),
		cloudfront.WithAWSConfig(cfg),
		cloudfront.WithLogger(a.logger),
	}
	if s.fs.Changed("cloudfront-endpoint") {
		opts = append(opts, cloudfront.WithEndpoint(s.endpoint))
	}
	if s.cacheTags {
		opts = append(opts, cloudfront.WithCacheTags())
	}
	if a.httpClient != nil {
		opts = append(opts, cloudfront.WithHTTPClient(a.httpClient))
	}
	return opts
}

// cloudFrontBuilt returns the purge command's view of b: what it says it
// does, what it sends and what it reports.
func cloudFrontBuilt(b *cloudfront.Backend) *builtBackend {
	rec := &cdnRecorder{cdnBackend: b}
	distribution := b.Distribution()
	return &builtBackend{
		Backend:           rec,
		description:       "invalidate on distribution " + distribution,
		pathsWithoutHosts: true,
		checkTag:          checkCloudFrontTag,
		estimate: func(kind purgeKind, objects []string) (int, bool) {
			return countInvalidations(b, kind, objects), false
		},
		sentAs: func(kind purgeKind, obj string) []string {
			if it := cloudFrontItem(kind, obj); it != obj {
				return []string{it}
			}
			return nil
		},
		attempts: rec.results,
		ids: &idReport{
			of: idsIn("invalidationId"),
			title: func(n int) string {
				return fmt.Sprintf("CloudFront created %s on distribution %s (each completes within minutes)",
					countOf(n, "invalidation", "invalidations"), distribution)
			},
			label: "invalidation",
		},
	}
}

// cloudFrontItem returns the item of an invalidation that purges obj: the
// path of a URL, or "#tag".
func cloudFrontItem(kind purgeKind, obj string) string {
	itemOf := cloudfront.InvalidationPath
	if kind == kindTags {
		itemOf = cloudfront.TagItem
	}
	p, err := itemOf(obj)
	if err != nil {
		return obj // refused when sent, and reported
	}
	return p
}

// checkAWSCredentials resolves cfg's credentials, and returns a usage
// error saying where the default chain looks when it finds none. It never
// shows a credential: the SDK's errors name sources, not keys.
func checkAWSCredentials(ctx context.Context, cfg aws.Config) error {
	if cfg.Credentials == nil {
		return usageErrorf("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run where an instance or container role applies")
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return usageErrorf("no AWS credentials (the default chain: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws, SSO, web identity, the container or instance role): %v", err)
	}
	return nil
}

// checkCloudFrontTag refuses a tag CloudFront cannot invalidate
// ([cloudfront.CheckTag]), saying why without the package's prefix.
func checkCloudFrontTag(tag string) error {
	if err := cloudfront.CheckTag(tag); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), cloudfront.ErrNotInvalidatable.Error()+": "))
	}
	return nil
}

// countInvalidations returns how many CreateInvalidation calls purging
// objects of kind with b takes: the dispatcher cuts them into batches of
// b's Limits, and b cuts each batch into invalidations
// ([cloudfront.Backend.Invalidations]).
func countInvalidations(b *cloudfront.Backend, kind purgeKind, objects []string) int {
	maxObjects := b.Limits().MaxObjects
	if maxObjects < 1 {
		maxObjects = cloudfront.MaxPathsInProgress
	}
	n := 0
	for batch := range slices.Chunk(objects, maxObjects) {
		r := backends.Request{URLs: batch}
		if kind == kindTags {
			r = backends.Request{Tags: batch}
		}
		n += b.Invalidations(r)
	}
	return n
}
