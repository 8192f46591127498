package cloudflare

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gormpurge/gormpurge/backends"
)

// Backend purges from Cloudflare's cache with the purge_cache API. It
// implements backends.Backend, backends.Pacer, backends.PurgeAller,
// backends.TagPurger and backends.Closer; use it with a dispatcher, which
// paces, batches and retries. It is safe for concurrent use.
type Backend struct {
	name      string
	endpoint  string
	zone      string
	token     string
	hostnames []string
	maxItems  int
	plan      Plan
	rate      Rate
	client    *http.Client
	ownClient bool
	pacer     *pacer
	logger    *slog.Logger
}

var (
	_ backends.Backend    = (*Backend)(nil)
	_ backends.Pacer      = (*Backend)(nil)
	_ backends.PurgeAller = (*Backend)(nil)
	_ backends.TagPurger  = (*Backend)(nil)
	_ backends.Closer     = (*Backend)(nil)
)

// DefaultRequestTimeout bounds one HTTP request of the default client, for
// callers whose context has no deadline; the dispatcher's attempt timeout
// is usually shorter.
const DefaultRequestTimeout = time.Minute

// New returns a Backend configured by opts. The token and the zone come
// from [WithAPIToken] and [WithZone], else from the CLOUDFLARE_API_TOKEN
// and CLOUDFLARE_ZONE_ID environment variables; New fails with a
// [*ConfigError] naming the option and the variable when one is missing or
// malformed, or when another option is invalid. It makes no network call.
func New(opts ...Option) (*Backend, error) {
	c := config{endpoint: DefaultEndpoint, maxItems: MaxItemsPerRequest, plan: DefaultPlan, logger: slog.Default(), name: "cloudflare"}
	for _, o := range opts {
		if o == nil {
			c.errs = append(c.errs, &ConfigError{Option: "New", Err: errors.New("an Option is nil: remove it, or pass one made by a With... function")})
			continue
		}
		o(&c)
	}
	if c.tokenSource == "" && !hasOption(c.errs, "WithAPIToken") {
		switch v, ok := os.LookupEnv(EnvAPIToken); {
		case !ok || v == "":
			c.errs = append(c.errs, &ConfigError{Option: "WithAPIToken", Err: errors.New("no API token: pass cloudflare.WithAPIToken(token) or set " + EnvAPIToken)})
		default:
			if err := checkToken(v); err != nil {
				c.errs = append(c.errs, &ConfigError{Option: EnvAPIToken, Err: err})
			} else {
				c.token, c.tokenSource = v, EnvAPIToken
			}
		}
	}
	if c.zoneSource == "" && !hasOption(c.errs, "WithZone") {
		switch v, ok := os.LookupEnv(EnvZoneID); {
		case !ok || v == "":
			c.errs = append(c.errs, &ConfigError{Option: "WithZone", Err: errors.New("no zone: pass cloudflare.WithZone(id) or set " + EnvZoneID)})
		default:
			if err := checkZone(v); err != nil {
				c.errs = append(c.errs, &ConfigError{Option: EnvZoneID, Err: err})
			} else {
				c.zone, c.zoneSource = strings.ToLower(v), EnvZoneID
			}
		}
	}
	if c.maxItems > MaxItemsPerRequest && c.plan != Enterprise {
		c.errs = append(c.errs, &ConfigError{Option: "WithMaxItems",
			Err: fmt.Errorf("%d: more than %d URLs a request needs WithPlan(cloudflare.Enterprise)", c.maxItems, MaxItemsPerRequest)})
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	r := c.plan.Rate()
	if c.rate != nil {
		r.PerSecond, r.Burst = c.rate.PerSecond, c.rate.Burst
	}
	b := &Backend{
		name:      c.name,
		endpoint:  c.endpoint,
		zone:      c.zone,
		token:     c.token,
		hostnames: c.hostnames,
		maxItems:  c.maxItems,
		plan:      c.plan,
		rate:      r,
		client:    c.client,
		pacer:     newPacer(r, time.Now),
		logger:    c.logger.With(slog.String("backend", c.name)),
	}
	if b.client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 8
		b.client, b.ownClient = &http.Client{Transport: t, Timeout: DefaultRequestTimeout}, true
	}
	return b, nil
}

// hasOption reports whether errs holds a ConfigError of option.
func hasOption(errs []error, option string) bool {
	for _, err := range errs {
		var ce *ConfigError
		if errors.As(err, &ce) && ce.Option == option {
			return true
		}
	}
	return false
}

// String describes the backend without its token, so that printing or
// logging a Backend never shows it.
func (b *Backend) String() string {
	return fmt.Sprintf("cloudflare.Backend{name: %q, zone: %q, plan: %s}", b.name, b.zone, b.plan)
}

// GoString is String.
func (b *Backend) GoString() string { return b.String() }

// LogValue is what log/slog records of a Backend: its name, zone and plan,
// never its token.
func (b *Backend) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", b.name), slog.String("zone", b.zone), slog.String("plan", b.plan.String()))
}

// Name returns the backend's name, "cloudflare" unless set by [WithName].
func (b *Backend) Name() string { return b.name }

// Limits tells the dispatcher to send URLs and tags in separate calls, as
// Cloudflare takes them: at most [WithMaxItems] URLs (divided among the
// hostnames a path becomes a URL on) or [MaxItemsPerRequest] tags.
func (b *Backend) Limits() backends.Limits {
	return backends.Limits{
		OneKind:    true,
		MaxObjects: b.maxItems,
		MaxURLs:    max(1, b.maxItems/max(1, len(b.hostnames))),
		MaxTags:    b.maxTags(),
	}
}

func (b *Backend) maxTags() int { return min(b.maxItems, MaxItemsPerRequest) }

// Close closes the idle keep-alive connections of the backend's own HTTP
// client, not of one given to [WithHTTPClient]; it implements
// backends.Closer, so (*dispatcher.Dispatcher).Close calls it after
// draining. The backend holds no goroutine: Close returns nil at once and
// may be called more than once. A later Purge opens new connections.
func (b *Backend) Close(context.Context) error {
	if b.ownClient && b.client != nil {
		b.client.CloseIdleConnections()
	}
	return nil
}

// CanPurgeTags returns nil: Cloudflare purges cache tags on every plan
// (https://developers.cloudflare.com/cache/how-to/purge-cache/). A zone
// that cannot answers with code 1107, a permanent [*Error].
func (b *Backend) CanPurgeTags() error { return nil }

// CanPurgeAll returns nil: every zone can purge everything.
func (b *Backend) CanPurgeAll() error { return nil }

// kind of a purge request.
const (
	kindFiles      = "files"
	kindTags       = "tags"
	kindEverything = "everything"
)

// objects returns r's URLs as Cloudflare will be sent them (canonical,
// absolute, a path on every hostname, duplicates removed) and r's tags,
// with those that cannot be sent.
func (b *Backend) objects(r backends.Request) (files, tags []string, bad []Rejected) {
	seen := make(map[string]bool, len(r.URLs))
	add := func(u string) {
		if !seen[u] {
			seen[u] = true
			files = append(files, u)
		}
	}
	for _, raw := range r.URLs {
		c, err := backends.CanonicalURL(raw)
		switch {
		case err != nil:
			bad = append(bad, Rejected{Object: backends.RedactURL(raw), Reason: err.Error()})
		case c[0] == '/' && len(b.hostnames) == 0:
			bad = append(bad, Rejected{Object: c, Reason: "a site-relative path needs cloudflare.WithHostnames to become the zone's absolute URLs"})
		case c[0] == '/':
			for _, h := range b.hostnames {
				add("https://" + h + c)
			}
		default:
			add(c)
		}
	}
	for _, t := range r.Tags {
		if err := CheckTag(t); err != nil {
			bad = append(bad, Rejected{Object: t, Reason: err.Error()})
			continue
		}
		tags = append(tags, t)
	}
	return files, tags, bad
}

// CheckTag reports why Cloudflare would refuse tag in a purge request, if
// it would: the canonical rule of backends.CanonicalTag, and Cloudflare's
// own (https://developers.cloudflare.com/cache/how-to/purge-cache/purge-by-tags/):
// at most [MaxTagLength] characters, printable ASCII only, no spaces.
// Cloudflare compares tags without regard to case.
func CheckTag(tag string) error {
	if _, err := backends.CanonicalTag(tag); err != nil {
		return err
	}
	if len(tag) > MaxTagLength {
		return fmt.Errorf("%w: %d characters, more than Cloudflare's %d", backends.ErrInvalidTag, len(tag), MaxTagLength)
	}
	if i := strings.IndexFunc(tag, func(r rune) bool { return r <= ' ' || r > '~' }); i >= 0 {
		return fmt.Errorf("%w: Cloudflare takes printable ASCII only (byte %d)", backends.ErrInvalidTag, i)
	}
	return nil
}

// chunks cuts objects into requests of at most n.
func chunks(objects []string, n int) [][]string {
	var out [][]string
	for len(objects) > 0 {
		k := min(n, len(objects))
		out = append(out, objects[:k:k])
		objects = objects[k:]
	}
	return out
}

// requests returns the requests r becomes, files first.
func (b *Backend) requests(r backends.Request) (reqs []request, bad []Rejected) {
	files, tags, bad := b.objects(r)
	for _, c := range chunks(files, b.maxItems) {
		reqs = append(reqs, request{kind: kindFiles, objects: c})
	}
	for _, c := range chunks(tags, b.maxTags()) {
		reqs = append(reqs, request{kind: kindTags, objects: c})
	}
	return reqs, bad
}

// request is one purge request about to be sent.
type request struct {
	kind    string
	objects []string
}

// urlTokens returns the URL tokens of each request: its URLs for files, 0
// for tags, which take a request token instead.
func urlTokens(reqs []request) []int {
	out := make([]int, len(reqs))
	for i, r := range reqs {
		if r.kind == kindFiles {
			out[i] = len(r.objects)
		}
	}
	return out
}

// Pace waits until the client-side copy of the account's purge limits
// allows the requests r becomes: a token of the request bucket for each
// request of tags, and the plan's URL rate for the URLs of each request of
// files, which take no request token. The dispatcher calls it before each call to Purge.
// When ctx ends first, Pace returns its error; when ctx's deadline would
// come before the tokens, it returns at once an error matching
// [ErrRateLimited] that backends.RetryDelay reads the wait from. Either
// way the tokens are not taken. Call Purge with r at once.
func (b *Backend) Pace(ctx context.Context, r backends.Request) error {
	reqs, _ := b.requests(r)
	return b.pacer.wait(ctx, urlTokens(reqs))
}

// Purge sends r to Cloudflare: URLs as "files", tags as "tags", in as few
// requests as [Backend.Limits] allow. It counts on [Backend.Pace] having
// taken their tokens, as the dispatcher does; code calling Purge directly
// calls Pace first. Tokens of requests Purge does not send (ctx has ended,
// an earlier request failed) are given back.
//
// Objects that cannot be sent, and objects Cloudflare refuses by name (its
// other objects are then sent again, once paced), are reported in a
// [*RejectedError] marked backends.Permanent and backends.Partial, while
// the rest is purged. Cloudflare does not document per-object errors: a
// refusal is taken as naming objects only when every error of it after
// the first ends with ": " and an object of the request; any other
// refusal fails the whole request, a permanent [*Error], rather than
// guessing which objects it meant. A 429 is marked backends.RetryAfter with the answer's
// Retry-After; 5xx, 408 and network errors are returned bare, to be retried
// with backoff; other refusals are permanent [*Error]s. The result's
// IDs["purgeId"] lists the id of each accepted request.
func (b *Backend) Purge(ctx context.Context, r backends.Request) (backends.Result, error) {
	reqs, bad := b.requests(r)
	if err := ctx.Err(); err != nil {
		b.pacer.unsend(tokensOf(urlTokens(reqs))) // paced, never sent
		return backends.Result{Backend: b.name, Objects: r.Len()}, fmt.Errorf("cloudflare: purge: %w", context.Cause(ctx))
	}
	t := &tally{resends: resendBudget}
	for i, q := range reqs {
		if err := b.send(ctx, q, t); err != nil {
			b.pacer.unsend(tokensOf(urlTokens(reqs[i+1:]))) // paced, never sent
			return t.result(b.name, r.Len()), err
		}
	}
	bad = append(bad, t.rejected...)
	res := t.result(b.name, r.Len())
	if len(bad) == 0 {
		return res, nil
	}
	for _, x := range bad {
		b.logger.Warn("cloudflare: object not purged", slog.String("object", x.Object), slog.String("reason", x.Reason))
	}
	err := &RejectedError{Backend: "cloudflare", Rejected: bad, Purged: t.accepted}
	return res, backends.Permanent(backends.Partial(b.failedObjects(r, bad), err))
}

// PurgeAll purges everything the zone caches ("purge_everything"). It paces
// itself on the request bucket while ctx allows, and classifies failures
// as Purge does. The dispatcher calls it for a handoff escalated to a purge
// of everything; an operator's command may call it too.
func (b *Backend) PurgeAll(ctx context.Context) (backends.Result, error) {
	if err := b.pacer.wait(ctx, []int{0}); err != nil {
		return backends.Result{Backend: b.name}, err
	}
	t := &tally{everything: true}
	if err := b.send(ctx, request{kind: kindEverything}, t); err != nil {
		return t.result(b.name, 0), err
	}
	return t.result(b.name, 0), nil
}

// failedObjects returns the objects of r, as r holds them, that rejected
// names as sent or that could not be sent at all. A path fails when any
// of its URLs was refused.
func (b *Backend) failedObjects(r backends.Request, rejected []Rejected) backends.Request {
	refused := make(map[string]bool, len(rejected))
	for _, x := range rejected {
		refused[x.Object] = true
	}
	var failed backends.Request
	for _, u := range r.URLs {
		files, _, bad := b.objects(backends.Request{URLs: []string{u}})
		hit := len(bad) > 0
		for _, f := range files {
			hit = hit || refused[f]
		}
		if hit {
			failed.URLs = append(failed.URLs, u)
		}
	}
	for _, tag := range r.Tags {
		if refused[tag] {
			failed.Tags = append(failed.Tags, tag)
		}
	}
	return failed
}
