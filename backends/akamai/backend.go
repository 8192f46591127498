package akamai

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/akamai/AkamaiOPEN-edgegrid-golang/v8/pkg/edgegrid"

	"github.com/gormpurge/gormpurge/backends"
)

// Backend purges from Akamai with the Fast Purge API. It implements
// backends.Backend, backends.Pacer and backends.TagPurger, and
// backends.PurgeAller with the CP codes of [WithCPCodes]; use it with a
// dispatcher, which paces, batches and retries. It is safe for concurrent
// use.
type Backend struct {
	name      string
	host      string
	signer    edgegrid.Config
	network   Network
	action    Action
	hostnames []string
	cpCodes   []int
	client    *http.Client
	limits    RateLimits
	maxBody   int
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

// New returns a Backend configured by opts. Credentials must come from one
// of [WithEdgerc], [WithEnv] or [WithCredentials]; when several are given
// they are tried in order and the first source that exists is used. New
// fails with a [*ConfigError] naming the source and field when credentials
// are missing or malformed, or a setting is out of range; it makes no
// network call.
func New(opts ...Option) (*Backend, error) {
	c := config{
		network: Production,
		action:  Invalidate,
		maxBody: MaxBodyBytes,
		logger:  slog.Default(),
		clock:   SystemClock{},
	}
	for _, o := range opts {
		if o == nil {
			c.errs = append(c.errs, &ConfigError{Source: "New", Err: errors.New("an Option is nil: remove it, or pass one made by a With... function")})
			continue
		}
		o(&c)
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	creds, err := loadCredentials(c.sources)
	if err != nil {
		return nil, err
	}
	c.limits = c.limits.withDefaults()
	if err := c.limits.validate(); err != nil {
		return nil, &ConfigError{Source: "WithRateLimits", Err: err}
	}
	if c.client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 8
		c.client = &http.Client{Transport: t, Timeout: DefaultRequestTimeout}
	}
	if c.name == "" {
		c.name = "akamai"
		if c.network == Staging {
			c.name = "akamai-staging"
		}
	}
	return &Backend{
		name:      c.name,
		host:      creds.Host,
		signer:    creds.signer(),
		network:   c.network,
		action:    c.action,
		hostnames: c.hostnames,
		cpCodes:   c.cpCodes,
		client:    c.client,
		limits:    c.limits,
		maxBody:   c.maxBody,
		pacer:     newPacer(c.limits, c.clock),
		logger:    c.logger.With(slog.String("backend", c.name)),
	}, nil
}

// String describes the backend without its credentials, so that printing
// or logging a Backend never shows the secret.
func (b *Backend) String() string {
	return fmt.Sprintf("akamai.Backend{name: %q, host: %q, %s %s}", b.name, b.host, b.action, b.network)
}

// GoString is String.
func (b *Backend) GoString() string { return b.String() }

// LogValue is what log/slog records of a Backend: its name, API host,
// action and network, never its credentials.
func (b *Backend) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", b.name), slog.String("host", b.host),
		slog.String("action", string(b.action)), slog.String("network", string(b.network)))
}

// Close closes the idle keep-alive connections of the backend's HTTP
// client; it implements [backends.Closer], so (*dispatcher.Dispatcher).Close
// calls it after draining: close it yourself only when you use the backend
// without a dispatcher. The backend holds no goroutine, so Close does not
// wait and returns nil; it may be called more than once. A later Purge
// opens new connections.
func (b *Backend) Close(context.Context) error {
	if b.client != nil { // nil on the zero Backend
		b.client.CloseIdleConnections()
	}
	return nil
}

// Name returns the backend's name, "akamai" unless set by [WithName].
func (b *Backend) Name() string { return b.name }

// Limits tells the dispatcher to send URLs and tags in separate calls, each
// within the 50,000-byte body limit (counted exactly, on the JSON that will
// be sent) and the size of the matching rate-limit bucket.
func (b *Backend) Limits() backends.Limits {
	return backends.Limits{
		OneKind:  true,
		MaxURLs:  max(1, b.limits.URLs.Burst/max(1, len(b.hostnames))),
		MaxTags:  b.limits.Tags.Burst,
		MaxBytes: b.maxBody,
		Size:     b.size,
	}
}

// Purge sends r to Fast Purge: URLs to the url endpoint, tags to the tag
// endpoint, with the configured action and network. It counts on
// [Backend.Pace] having taken the tokens of r, as the dispatcher does
// before each call; code calling Purge directly should call Pace first. Only
// the extra requests of a split (below) wait for a request token here.
//
// A 413 splits the request in halves, sent in turn. A 400 or 403 about some
// objects (Akamai's detail names one; a 403 refuses every URL of its host)
// drops them and resends the rest, so that one refused object does not lose
// the others; the refused ones, and those that could never be sent, are
// reported in a [*RejectedError], marked backends.Permanent and
// backends.Partial. backends.FailedObjects returns them in the form r holds
// them: a path purged on several hostnames counts as failed when any of its
// URLs was refused. A 400 or 403 about the whole request (no object named),
// 401 and 415 are permanent [*Error]s. A 429 is marked backends.RetryAfter
// with the time Akamai's bucket needs to refill; 5xx, 507 and network errors
// are returned bare, to be retried with backoff.
func (b *Backend) Purge(ctx context.Context, r backends.Request) (backends.Result, error) {
	t := newTally()
	var rejected []Rejected
	for _, kind := range []Kind{KindURL, KindTag} {
		objs, bad := b.objects(kind, r)
		rejected = append(rejected, bad...)
		chunks := b.plan(kind, objs)
		for i, chunk := range chunks {
			if err := b.send(ctx, kind, chunk, len(chunk), t); err != nil {
				for _, c := range chunks[i+1:] {
					b.pacer.unsend(kind, 1, len(c)) // taken by Pace, never sent
				}
				return t.result(b.name, r.Len()), err
			}
		}
	}
	res, err := b.finish(t, r.Len(), rejected)
	var rej *RejectedError
	if errors.As(err, &rej) {
		err = backends.Partial(b.failedObjects(r, rej.Rejected), err)
	}
	return res, err
}

// PurgeCPCodes purges every object served under the given CP codes, with
// the configured action and network. Unlike Purge it paces itself, waiting
// for the CP code bucket (300 codes, refilled at 30 a minute) while ctx
// allows. It does not go through a dispatcher and does not retry: it is
// meant for an operator's command, which reports the error, classified as
// Purge's are.
func (b *Backend) PurgeCPCodes(ctx context.Context, codes ...int) (backends.Result, error) {
	t := newTally()
	var rejected []Rejected
	objs := make([]string, 0, len(codes))
	seen := make(map[int]bool, len(codes))
	for _, c := range codes {
		switch {
		case c <= 0:
			rejected = append(rejected, Rejected{Object: strconv.Itoa(c), Reason: "a CP code is a positive integer"})
		case !seen[c]:
			seen[c] = true
			objs = append(objs, strconv.Itoa(c))
		}
	}
	for _, chunk := range b.plan(KindCPCode, objs) {
		if err := b.wait(ctx, KindCPCode, len(chunk)); err != nil {
			return t.result(b.name, len(codes)), err
		}
		if err := b.send(ctx, KindCPCode, chunk, len(chunk), t); err != nil {
			return t.result(b.name, len(codes)), err
		}
	}
	return b.finish(t, len(codes), rejected)
}

// CanPurgeTags returns nil: Fast Purge purges cache tags on every
// network, whatever the backend's settings. dispatcher.New calls it for
// dispatcher.WithEscalation with Tags.
func (b *Backend) CanPurgeTags() error { return nil }

// errNoCPCodes is CanPurgeAll's error for a Backend without CP codes.
var errNoCPCodes = errors.New("akamai: purging everything needs CP codes: pass akamai.WithCPCodes(...)")

// CanPurgeAll returns nil when the backend was given CP codes with
// [WithCPCodes], which [Backend.PurgeAll] purges, and an error saying so
// otherwise. dispatcher.New calls it for dispatcher.WithEscalation with
// All.
func (b *Backend) CanPurgeAll() error {
	if len(b.cpCodes) == 0 {
		return errNoCPCodes
	}
	return nil
}

// PurgeAll purges everything the site caches at Akamai: every object served
// under the CP codes of [WithCPCodes], as [Backend.PurgeCPCodes] does,
// pacing itself on the CP code bucket. The dispatcher calls it for a
// handoff escalated to a purge of everything, and retries it as it retries
// Purge. Without CP codes it returns CanPurgeAll's error, marked
// backends.Permanent.
func (b *Backend) PurgeAll(ctx context.Context) (backends.Result, error) {
	if err := b.CanPurgeAll(); err != nil {
		return backends.Result{Backend: b.name}, backends.Permanent(err)
	}
	return b.PurgeCPCodes(ctx, b.cpCodes...)
}
