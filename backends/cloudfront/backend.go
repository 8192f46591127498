package cloudfront

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	cf "github.com/aws/aws-sdk-go-v2/service/cloudfront"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront/types"

	"github.com/gormpurge/gormpurge/backends"
)

// Backend invalidates paths of one CloudFront distribution. It implements
// backends.Backend, backends.Pacer (it waits for CloudFront's in-progress
// limits), backends.PurgeAller ("/*"), backends.TagPurger and
// backends.Closer; use it with a dispatcher, which batches and retries. It
// is safe for concurrent use.
type Backend struct {
	name         string
	distribution string
	client       *cf.Client
	httpClient   aws.HTTPClient
	ownClient    bool // httpClient was made by New, not given by the caller
	cacheTags    bool
	poll         time.Duration
	maxPaths     int
	maxWildcards int
	budget       *budget
	refPrefix    string
	refSeq       atomic.Uint64
	logger       *slog.Logger

	progMu   sync.Mutex
	progress []progress // requests some of whose invalidations were created, oldest first
}

var (
	_ backends.Backend    = (*Backend)(nil)
	_ backends.Pacer      = (*Backend)(nil)
	_ backends.PurgeAller = (*Backend)(nil)
	_ backends.AllPacer   = (*Backend)(nil)
	_ backends.TagPurger  = (*Backend)(nil)
	_ backends.Closer     = (*Backend)(nil)
)

// DefaultRegion is the region requests are signed for when the AWS
// configuration has none: CloudFront is a global service whose API is in
// us-east-1.
const DefaultRegion = "us-east-1"

// New returns a Backend for the distribution of [WithDistribution]
// (required), with credentials and region from [WithAWSConfig] or, without
// it, from the SDK's default configuration, which New loads with ctx (it
// reads the environment and the shared files; credentials are resolved at
// the first request). It fails with a [*ConfigError] naming each invalid
// option. It makes no API call.
func New(ctx context.Context, opts ...Option) (*Backend, error) {
	c := config{poll: DefaultWaitPoll, maxAge: DefaultMaxInvalidationAge, maxPaths: MaxPathsInProgress, maxWildcards: MaxWildcardsInProgress,
		logger: slog.Default(), name: "cloudfront"}
	for _, o := range opts {
		if o == nil {
			c.errs = append(c.errs, &ConfigError{Option: "New", Err: errNilOption})
			continue
		}
		o(&c)
	}
	if c.distribution == "" && !hasOption(c.errs, "WithDistribution") {
		c.fail("WithDistribution", "no distribution: pass cloudfront.WithDistribution(id)")
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	var awsCfg aws.Config
	if c.awsConfig != nil {
		awsCfg = c.awsConfig.Copy()
	} else {
		loaded, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, &ConfigError{Option: "WithAWSConfig", Err: fmt.Errorf("loading the default AWS configuration: %w", err)}
		}
		awsCfg = loaded
	}
	if awsCfg.Region == "" {
		awsCfg.Region = DefaultRegion
	}
	ownClient := false
	switch {
	case c.httpClient != nil:
		awsCfg.HTTPClient = c.httpClient
	case c.awsConfig == nil || awsCfg.HTTPClient == nil || isBuildable(awsCfg.HTTPClient):
		// The default configuration's client (or the SDK's, which
		// NewFromConfig would make) is the backend's own: Close closes its
		// idle connections. A client in the caller's aws.Config may be
		// shared with other AWS clients and is left alone.
		bc, ok := awsCfg.HTTPClient.(*awshttp.BuildableClient)
		if !ok {
			bc = awshttp.NewBuildableClient()
		}
		// A BuildableClient cannot close its connections: the same
		// transport settings in an http.Client that can.
		awsCfg.HTTPClient = &http.Client{Transport: bc.GetTransport(), Timeout: bc.GetTimeout(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		ownClient = true
	}
	awsCfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} } // the dispatcher retries
	// Never nil here. The SDK client sends through readBodyClient; Close
	// deals with the client itself.
	httpClient := awsCfg.HTTPClient
	awsCfg.HTTPClient = readBodyClient{next: httpClient}
	client := cf.NewFromConfig(awsCfg, func(o *cf.Options) {
		if c.endpoint != "" {
			o.BaseEndpoint = aws.String(c.endpoint)
		}
	})
	b := &Backend{
		name:         c.name,
		distribution: c.distribution,
		client:       client,
		httpClient:   httpClient,
		ownClient:    ownClient,
		cacheTags:    c.cacheTags,
		poll:         c.poll,
		maxPaths:     c.maxPaths,
		maxWildcards: c.maxWildcards,
		refPrefix:    "gormpurge-" + randomHex(8),
		logger:       c.logger.With(slog.String("backend", c.name)),
	}
	b.budget = newBudget(c.maxPaths, c.maxWildcards, c.poll, c.maxAge, b.completed, b.logger)
	return b, nil
}

// isBuildable reports whether hc is the SDK's default client, which is
// not shared: each AWS client built with it has its own connections.
func isBuildable(hc aws.HTTPClient) bool {
	_, ok := hc.(*awshttp.BuildableClient)
	return ok
}

func hasOption(errs []error, option string) bool {
	for _, err := range errs {
		var ce *ConfigError
		if errors.As(err, &ce) && ce.Option == option {
			return true
		}
	}
	return false
}

func randomHex(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf) // crypto/rand.Read never fails
	return hex.EncodeToString(buf)
}

// callerReference returns a CallerReference no other invalidation of this
// process or any other has: a random prefix drawn at New, and a counter.
// CloudFront answers a reused reference with the invalidation it names
// (the same paths: nothing new is invalidated, silently) or with
// InvalidationBatchAlreadyExists (other paths), so a reference is never
// derived from the time or the paths.
func (b *Backend) callerReference() string {
	return b.refPrefix + "-" + strconv.FormatUint(b.refSeq.Add(1), 10)
}

// String describes the backend without credentials.
func (b *Backend) String() string {
	return fmt.Sprintf("cloudfront.Backend{name: %q, distribution: %q}", b.name, b.distribution)
}

// GoString is String.
func (b *Backend) GoString() string { return b.String() }

// LogValue is what log/slog records of a Backend: its name and
// distribution, never credentials.
func (b *Backend) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", b.name), slog.String("distribution", b.distribution))
}

// Name returns the backend's name, "cloudfront" unless set by [WithName].
func (b *Backend) Name() string { return b.name }

// Distribution returns the id of the distribution the backend invalidates.
func (b *Backend) Distribution() string { return b.distribution }

// Limits says that one call holds at most the in-progress limit of paths
// ([MaxPathsInProgress], or [WithInProgressLimits]'s): a larger
// invalidation could never be created. Without [WithCacheTags], URLs and
// tags come in separate calls, so that refused tags never share a batch
// with URLs.
func (b *Backend) Limits() backends.Limits {
	return backends.Limits{MaxObjects: b.maxPaths, OneKind: !b.cacheTags}
}

// CanPurgeTags returns nil with [WithCacheTags], and an error naming it
// otherwise. dispatcher.New calls it for dispatcher.WithEscalation with
// Tags.
func (b *Backend) CanPurgeTags() error {
	if !b.cacheTags {
		return errors.New("cloudfront: tag invalidation needs a distribution with a CacheTagConfig and cloudfront.WithCacheTags()")
	}
	return nil
}

// CanPurgeAll returns nil: every distribution can invalidate "/*".
func (b *Backend) CanPurgeAll() error { return nil }

// Pace waits until r's next invalidation fits in the in-progress limits
// and takes its share, which the following Purge of r uses. While the
// backend's own invalidations fill the limits it asks CloudFront
// (GetInvalidation), every [WithWaitPoll], whether the oldest has
// completed, until ctx ends. A failed check (a 5xx, a network error,
// AccessDenied when the credentials lack cloudfront:GetInvalidation) is
// backends.RetryAfter the poll interval: the dispatcher waits and calls
// Pace again, without counting an attempt. An invalidation never seen
// completed stops counting after [WithMaxInvalidationAge]. For a request
// larger than the limits, the next invalidation is the first of r's not
// yet created (see [Backend.Purge]).
func (b *Backend) Pace(ctx context.Context, r backends.Request) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cloudfront: %w", context.Cause(ctx))
	}
	p := b.planRequest(r)
	parts := chunks(p.items, b.maxPaths, b.maxWildcards)
	done, _ := b.progressOf(r)
	if done >= len(parts) {
		return nil
	}
	paths, wild := count(parts[done])
	if err := b.budget.take(ctx, paths, wild); err != nil {
		return err
	}
	b.budget.reserve(fingerprint(parts[done]), paths, wild)
	return nil
}

// Purge invalidates r's URLs and tags: each URL as its [InvalidationPath]
// (URLs that share a path are invalidated once), each tag as "#tag" with
// [WithCacheTags]. The items go in one CreateInvalidation with a fresh
// CallerReference, or in several when they exceed the in-progress limits
// (3,000 paths, 15 wildcard paths). Purge never waits for the limits: it
// creates the invalidations whose share it has (taken by Pace, or free
// now), and when the next does not fit it returns
// backends.RetryAfter the poll interval wrapping [ErrInProgressLimits],
// marked backends.Partial with the objects not yet invalidated when some
// were. The backend remembers which invalidations of r it created: called
// again with the same Request (the dispatcher's retry sends the batch's
// Request again), Purge creates only the rest, so no path is paid for
// twice. Purge returns when CloudFront has accepted the invalidations (it
// completes them within minutes); their ids are in Result.IDs
// ("invalidationId", comma-separated).
//
// Failures are classified for the dispatcher: AccessDenied,
// NoSuchDistribution, InvalidArgument and refused signatures are
// backends.Permanent; throttling is backends.RetryAfter ([ThrottleWait],
// or the answer's Retry-After), and so is TooManyInvalidationsInProgress
// (invalidations created by others fill the limits; the wait is the poll
// interval); 5xx and network errors are bare, retried with backoff. Every
// error is an [*Error] (or ctx's, or ErrInProgressLimits). URLs and tags
// that cannot be invalidated (see [ErrNotInvalidatable]; every tag without
// WithCacheTags) are reported in a [*RefusedError], marked Permanent and
// Partial, and the rest is invalidated.
func (b *Backend) Purge(ctx context.Context, r backends.Request) (backends.Result, error) {
	res := backends.Result{Backend: b.name, Objects: r.Len()}
	p := b.planRequest(r)
	parts := chunks(p.items, b.maxPaths, b.maxWildcards)
	done, ids := b.progressOf(r)
	if err := ctx.Err(); err != nil {
		if done < len(parts) && b.budget.claim(fingerprint(parts[done])) {
			b.budget.free(count(parts[done]))
		}
		return b.result(res, ids), fmt.Errorf("cloudfront: %w", context.Cause(ctx))
	}
	for i := done; i < len(parts); i++ {
		items := parts[i]
		paths, wild := count(items)
		if !(i == done && b.budget.claim(fingerprint(items))) && !b.budget.tryTake(paths, wild) {
			b.budget.refresh(ctx)
			if !b.budget.tryTake(paths, wild) {
				b.setProgress(r, i, ids)
				err := backends.RetryAfter(b.poll, fmt.Errorf("%w: %d of %d invalidations created, the next (%d paths, %d wildcard paths) waits",
					ErrInProgressLimits, i, len(parts), paths, wild))
				return b.result(res, ids), b.partial(p, parts[i:], i > 0, err)
			}
		}
		inv, err := b.create(ctx, items)
		var ce *Error
		if errors.As(err, &ce) && ce.Code == "TooManyInvalidationsInProgress" {
			wait := b.budget.saturate()
			b.logger.Warn("cloudfront: other invalidations fill the distribution's in-progress limits: no invalidation is tried before the wait",
				slog.Duration("wait", wait))
		} else if err == nil {
			b.budget.unsaturate()
		}
		if err != nil {
			b.budget.free(paths, wild)
			b.setProgress(r, i, ids)
			return b.result(res, ids), b.partial(p, parts[i:], i > 0, err)
		}
		ids = append(ids, aws.ToString(inv.Id))
		if aws.ToString(inv.Status) == "Completed" {
			b.budget.free(paths, wild)
		} else {
			b.budget.track(aws.ToString(inv.Id), paths, wild)
		}
	}
	b.setProgress(r, 0, nil)
	res = b.result(res, ids)
	if len(p.refused) == 0 {
		return res, nil
	}
	refused := make([]Refused, len(p.refused))
	var failed backends.Request
	for i, x := range p.refused {
		obj := x.value
		if x.tag {
			failed.Tags = append(failed.Tags, x.value)
		} else {
			failed.URLs = append(failed.URLs, x.value)
			obj = backends.RedactURL(x.value)
		}
		refused[i] = Refused{Tag: x.tag, Object: obj, Err: x.err}
		b.logger.Warn("cloudfront: object not invalidated", slog.Bool("tag", x.tag), slog.String("object", obj), slog.String("reason", x.err.Error()))
	}
	err := &RefusedError{Refused: refused, Invalidated: r.Len() - len(refused)}
	return res, backends.Permanent(backends.Partial(failed, err))
}

// partial marks err, the failure of the invalidations of parts, with the
// request's objects they (and the refused ones) hold when earlier
// invalidations were created.
func (b *Backend) partial(p plan, parts [][]string, some bool, err error) error {
	if !some {
		return err
	}
	var failed backends.Request
	for _, items := range parts {
		for _, it := range items {
			for _, o := range p.objects[it] {
				if o.tag {
					failed.Tags = append(failed.Tags, o.value)
				} else {
					failed.URLs = append(failed.URLs, o.value)
				}
			}
		}
	}
	for _, x := range p.refused {
		if x.tag {
			failed.Tags = append(failed.Tags, x.value)
		} else {
			failed.URLs = append(failed.URLs, x.value)
		}
	}
	return backends.Partial(failed, err)
}

func (b *Backend) result(res backends.Result, ids []string) backends.Result {
	if len(ids) == 0 {
		return res
	}
	res.IDs = map[string]string{"invalidationId": strings.Join(ids, ","), "distribution": b.distribution}
	res.Detail = fmt.Sprintf("%d invalidations created", len(ids))
	return res
}

// PaceAll waits, as Pace does for a batch, until the wildcard in-progress
// limit has room for "/*", and takes its share: the dispatcher calls it
// before PurgeAll, so that waiting for room is never counted as one of the
// batch's attempts ([backends.AllPacer]).
func (b *Backend) PaceAll(ctx context.Context) error {
	return b.Pace(ctx, backends.Request{URLs: []string{AllPath}})
}

// PurgeAll invalidates everything the distribution caches: the path "/*",
// one wildcard path (billed as one path). Like Purge it never waits: when
// the wildcard in-progress limit is full, it asks CloudFront once whether
// the backend's invalidations completed, and otherwise returns
// backends.RetryAfter the poll interval wrapping [ErrInProgressLimits]. The
// dispatcher calls it for a handoff escalated with
// dispatcher.WithEscalation and All, after [Backend.PaceAll].
func (b *Backend) PurgeAll(ctx context.Context) (backends.Result, error) {
	return b.Purge(ctx, backends.Request{URLs: []string{AllPath}})
}

// create sends one CreateInvalidation of items.
func (b *Backend) create(ctx context.Context, items []string) (*types.Invalidation, error) {
	ref := b.callerReference()
	out, err := b.client.CreateInvalidation(ctx, &cf.CreateInvalidationInput{
		DistributionId: aws.String(b.distribution),
		InvalidationBatch: &types.InvalidationBatch{
			CallerReference: aws.String(ref),
			Paths:           &types.Paths{Quantity: aws.Int32(int32(len(items))), Items: items},
		},
	})
	if err != nil {
		return nil, b.classify(ctx, "CreateInvalidation", len(items), err)
	}
	if out.Invalidation == nil || out.Invalidation.Id == nil {
		if ctx.Err() != nil { // the answer was cut short by ctx
			return nil, fmt.Errorf("cloudfront: CreateInvalidation on distribution %s: %w", b.distribution, context.Cause(ctx))
		}
		return nil, &Error{Op: "CreateInvalidation", Distribution: b.distribution, Paths: len(items), Message: "the answer names no invalidation"}
	}
	b.logger.Debug("cloudfront: invalidation created", slog.String("id", aws.ToString(out.Invalidation.Id)),
		slog.String("callerReference", ref), slog.Int("paths", len(items)), slog.String("status", aws.ToString(out.Invalidation.Status)))
	return out.Invalidation, nil
}

// completed asks CloudFront whether invalidation id has completed.
func (b *Backend) completed(ctx context.Context, id string) (bool, error) {
	out, err := b.client.GetInvalidation(ctx, &cf.GetInvalidationInput{DistributionId: aws.String(b.distribution), Id: aws.String(id)})
	if err != nil {
		return false, b.classify(ctx, "GetInvalidation", 0, err)
	}
	return out.Invalidation != nil && aws.ToString(out.Invalidation.Status) == "Completed", nil
}

// InProgress returns the paths and wildcard paths the backend counts as in
// progress at CloudFront: its invalidations not yet seen completed, and
// those about to be created.
func (b *Backend) InProgress() (paths, wildcards int) { return b.budget.inProgress() }

// Close closes the idle connections of the HTTP client the backend made
// (the SDK's default one); a client given with [WithHTTPClient] or in
// [WithAWSConfig]'s configuration belongs to the caller, who may share it
// with other AWS clients, and is left alone. Close implements
// [backends.Closer], so (*dispatcher.Dispatcher).Close calls it after
// draining. The backend holds no goroutine: Close does not wait, and
// returns nil; it may be called more than once.
func (b *Backend) Close(context.Context) error {
	if !b.ownClient {
		return nil
	}
	if c, ok := b.httpClient.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
	return nil
}
