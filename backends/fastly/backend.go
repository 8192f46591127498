package fastly

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/gormpurge/gormpurge/backends"
)

// Backend purges from Fastly with its purge API. It implements
// backends.Backend, backends.Pacer, backends.PurgeAller,
// backends.TagPurger and backends.Closer; use it with a dispatcher, which
// paces, batches and retries. It is safe for concurrent use.
type Backend struct {
	name        string
	serviceID   string
	token       string
	soft        bool
	endpoint    string
	client      *http.Client
	ownClient   bool // client is the backend's own: Close closes its idle connections
	hostnames   []string
	concurrency int
	pacer       *pacer
	logger      *slog.Logger
}

var (
	_ backends.Backend    = (*Backend)(nil)
	_ backends.Pacer      = (*Backend)(nil)
	_ backends.PurgeAller = (*Backend)(nil)
	_ backends.TagPurger  = (*Backend)(nil)
	_ backends.Closer     = (*Backend)(nil)
)

// New returns a Backend configured by opts. The API token and service ID
// come from [WithAPIToken] and [WithServiceID], else from the
// FASTLY_API_TOKEN and FASTLY_SERVICE_ID environment variables. New fails
// with [*ConfigError]s naming each invalid or missing setting and how to
// fix it; it makes no network call.
func New(opts ...Option) (*Backend, error) {
	c := config{
		endpoint:    DefaultEndpoint,
		concurrency: DefaultConcurrency,
		hourlyLimit: DefaultHourlyLimit,
		logger:      slog.Default(),
		name:        "fastly",
	}
	for _, o := range opts {
		if o == nil {
			c.fail("New", errors.New("an Option is nil: remove it, or pass one made by a With... function"))
			continue
		}
		o(&c)
	}
	if c.token == nil {
		if v, ok := os.LookupEnv(EnvAPIToken); ok && v != "" {
			if err := checkToken(v); err != nil {
				c.fail(EnvAPIToken, err)
			}
			c.token = &v
		} else {
			c.fail("WithAPIToken", errors.New("no API token: pass fastly.WithAPIToken(token) or set "+EnvAPIToken))
		}
	}
	if c.serviceID == nil {
		if v := os.Getenv(EnvServiceID); v != "" {
			WithServiceID(v)(&c)
			if c.serviceID == nil {
				c.errs[len(c.errs)-1].(*ConfigError).Option = EnvServiceID
			}
		} else {
			c.fail("WithServiceID", errors.New("no service ID: pass fastly.WithServiceID(id) or set "+EnvServiceID))
		}
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	own := c.client == nil
	if own {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = max(c.concurrency, 2)
		c.client = &http.Client{Transport: t, Timeout: DefaultRequestTimeout}
	}
	return &Backend{
		name:        c.name,
		serviceID:   *c.serviceID,
		token:       *c.token,
		soft:        c.soft,
		endpoint:    c.endpoint,
		client:      c.client,
		ownClient:   own,
		hostnames:   c.hostnames,
		concurrency: c.concurrency,
		pacer:       newPacer(c.hourlyLimit),
		logger:      c.logger.With(slog.String("backend", c.name)),
	}, nil
}

// String describes the backend without its token, so that printing or
// logging a Backend never shows it.
func (b *Backend) String() string {
	mode := "hard"
	if b.soft {
		mode = "soft"
	}
	return fmt.Sprintf("fastly.Backend{name: %q, service: %q, endpoint: %q, %s}", b.name, b.serviceID, backends.RedactURL(b.endpoint), mode)
}

// GoString is String.
func (b *Backend) GoString() string { return b.String() }

// LogValue is what log/slog records of a Backend: its name, service,
// endpoint and mode, never its token.
func (b *Backend) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", b.name), slog.String("service", b.serviceID),
		slog.String("endpoint", backends.RedactURL(b.endpoint)), slog.Bool("soft", b.soft))
}

// Name returns the backend's name, "fastly" unless set by [WithName].
func (b *Backend) Name() string { return b.name }

// Limits tells the dispatcher to send URLs and tags in separate calls:
// tags at most [MaxKeysPerRequest] to a call (one batch request), URLs at
// most [MaxURLRequests] requests' worth (divided by the number of
// hostnames a path is purged on).
func (b *Backend) Limits() backends.Limits {
	return backends.Limits{
		OneKind: true,
		MaxURLs: max(1, MaxURLRequests/max(1, len(b.hostnames))),
		MaxTags: MaxKeysPerRequest,
	}
}

// CanPurgeTags returns nil: Fastly purges surrogate keys on every service.
func (b *Backend) CanPurgeTags() error { return nil }

// CanPurgeAll returns nil: purge_all needs only the service ID, which [New]
// requires.
func (b *Backend) CanPurgeAll() error { return nil }

// Close closes the idle keep-alive connections of the backend's own HTTP
// client, not of one given to [WithHTTPClient], which its owner may share
// with other code; it implements [backends.Closer], so
// (*dispatcher.Dispatcher).Close calls it after draining. The backend
// holds no goroutine between calls, so Close does not wait and returns
// nil; it may be called more than once. A later Purge opens new
// connections.
func (b *Backend) Close(context.Context) error {
	if b.ownClient && b.client != nil { // nil on the zero Backend
		b.client.CloseIdleConnections()
	}
	return nil
}

// Purge sends r to Fastly: each URL as its own purge request, up to
// [WithConcurrency] at once (a path once per hostname, http and https
// spellings once); the tags in batch surrogate-key purges of up to
// [MaxKeysPerRequest]. It counts on [Backend.Pace] having been called, as
// the dispatcher does.
//
// Result.IDs maps each purged cached URL ("www.example.com/posts/1") and
// each tag to the purge ID Fastly answered: one entry per object, up to
// [MaxURLRequests] (500) or [MaxKeysPerRequest] (256) for a batch cut to
// [Backend.Limits]. It is not capped, because the purge ids are per object
// and the gormpurge command lists each with its object; the dispatcher
// logs the map whole (at Debug for a delivered batch, at Warn with each
// retry of a partly failed one), so keep batches small, or the log level
// above Warn, when log volume matters. When some objects were not
// purged the error is a [*FailedError] naming them, wrapped in
// backends.Partial when the rest was purged (backends.FailedObjects
// returns them as r held them) and classified: backends.RetryAfter if
// Fastly answered 429, else temporary if any failure was (a 5xx, no
// answer), else backends.Permanent. A 401 or 429 stops the requests not
// sent yet, which fail with it. When the whole request failed in one way,
// that error is returned as is.
func (b *Backend) Purge(ctx context.Context, r backends.Request) (backends.Result, error) {
	res := backends.Result{Backend: b.name, Objects: r.Len()}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("fastly: %w", err)
	}
	jobs, failed := b.urlJobs(r.URLs)
	tagJobs, badTags := tagJobs(r.Tags)
	jobs = append(jobs, tagJobs...)
	failed = append(failed, badTags...)
	refused := len(failed) > 0
	outcomes := b.run(ctx, jobs)

	accepted := 0
	for i, o := range outcomes {
		if o.err != nil {
			for _, obj := range jobs[i].objs {
				failed = append(failed, Failure{Object: obj, Err: o.err, cause: o.cause})
			}
			continue
		}
		accepted++
		if res.IDs == nil {
			res.IDs = make(map[string]string)
		}
		for k, id := range o.ids {
			res.IDs[k] = id
		}
	}
	mode := "hard"
	if b.soft {
		mode = "soft"
	}
	res.Detail = fmt.Sprintf("%d %s purge requests accepted", accepted, mode)
	if len(failed) == 0 {
		return res, nil
	}
	return res, b.failure(r, failed, accepted, refused)
}

// failure builds Purge's error from the objects that failed. refused says
// whether some were refused before sending.
func (b *Backend) failure(r backends.Request, failed []Failure, accepted int, refused bool) error {
	for _, f := range failed {
		b.logger.Warn("fastly: object not purged", slog.String("object", backends.RedactURL(f.Object)), slog.String("reason", f.Err.Error()))
	}
	fe := &FailedError{Failed: dedupe(failed), Purged: accepted}
	_, classified := fe.distinct()
	if accepted == 0 && !refused && len(classified) == 1 {
		return classified[0] // the whole request failed in one way
	}
	var (
		wait      time.Duration
		temporary bool
	)
	for _, e := range classified {
		if d, ok := backends.RetryDelay(e); ok {
			wait = max(wait, d)
		} else if !backends.IsPermanent(e) {
			temporary = true
		}
	}
	var err error = fe
	switch {
	case wait > 0:
		err = backends.RetryAfter(wait, err)
	case !temporary:
		err = backends.Permanent(err)
	}
	if accepted == 0 && !refused {
		return err
	}
	urls := make(map[string]bool, len(r.URLs))
	for _, u := range r.URLs {
		urls[u] = true
	}
	var objs backends.Request
	for _, f := range fe.Failed {
		if urls[f.Object] {
			objs.URLs = append(objs.URLs, f.Object)
		} else {
			objs.Tags = append(objs.Tags, f.Object)
		}
	}
	return backends.Partial(backends.NewRequest(objs.URLs, objs.Tags), err)
}

// dedupe keeps the first failure of each object (a path purged on several
// hostnames may fail on more than one).
func dedupe(failed []Failure) []Failure {
	seen := make(map[string]bool, len(failed))
	out := failed[:0:0]
	for _, f := range failed {
		if !seen[f.Object] {
			seen[f.Object] = true
			out = append(out, f)
		}
	}
	return out
}

// PurgeAll purges everything the service caches with purge_all, which is
// always hard. purge_all counts against Fastly's hourly limit of API
// requests, so PurgeAll paces itself: it waits for the window to reset when
// Fastly said no requests remain, and spaces purge_alls evenly over the
// hourly budget ([WithHourlyLimit]). When ctx's deadline comes first it
// returns at once an error with backends.RetryAfter. The dispatcher calls
// it for a handoff escalated to a purge of everything, and retries it as it
// retries Purge; failures are classified as Purge's are.
func (b *Backend) PurgeAll(ctx context.Context) (backends.Result, error) {
	res := backends.Result{Backend: b.name}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("fastly: %w", err)
	}
	if err := b.pacer.wait(ctx, true); err != nil {
		return res, err
	}
	a, err := b.post(ctx, "/service/"+url.PathEscape(b.serviceID)+"/purge_all", nil, false)
	if err != nil {
		return res, failed(err).err
	}
	b.observe(a, opAll, true)
	if a.status != http.StatusOK {
		return res, b.classify(a, opAll, "")
	}
	var ok okBody
	if err := json.Unmarshal(a.raw, &ok); err != nil || ok.Status != "ok" {
		return res, fmt.Errorf("fastly: %s: 200 without {\"status\":\"ok\"}: %.100q", opAll, b.scrub(string(a.raw)))
	}
	res.Detail = "purge_all accepted: everything of service " + b.serviceID + " purged"
	b.logger.Info("fastly: everything purged", slog.String("service", b.serviceID))
	return res, nil
}
