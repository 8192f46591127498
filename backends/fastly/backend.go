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
	"strings"
	"sync"
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

// job is one purge request: a URL or a batch of keys, and the objects of
// the Request it purges.
type job struct {
	cached string   // a URL purge's host, path and query
	keys   []string // a key purge's keys
	objs   []string // the Request's objects it stands for
}

// outcome is what became of a job.
type outcome struct {
	ids   map[string]string // purge IDs by cached URL or key
	err   error             // classified
	cause error             // err without its marks
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

// urlJobs returns one job per cached URL of urls, and the URLs that cannot
// be purged.
func (b *Backend) urlJobs(urls []string) ([]job, []Failure) {
	var (
		jobs   []job
		failed []Failure
		index  = make(map[string]int, len(urls))
	)
	add := func(cached, obj string) {
		if i, ok := index[cached]; ok {
			if last := jobs[i].objs; last[len(last)-1] != obj {
				jobs[i].objs = append(jobs[i].objs, obj)
			}
			return
		}
		index[cached] = len(jobs)
		jobs = append(jobs, job{cached: cached, objs: []string{obj}})
	}
	for _, u := range urls {
		c, err := backends.CanonicalURL(u)
		switch {
		case err != nil:
			cause := &backends.ObjectError{Kind: "url", Object: backends.RedactURL(u), Err: err}
			failed = append(failed, Failure{Object: u, Err: backends.Permanent(cause), cause: cause})
		case c[0] == '/':
			if len(b.hostnames) == 0 {
				cause := fmt.Errorf("%w (%q)", ErrNoHostname, c)
				failed = append(failed, Failure{Object: u, Err: backends.Permanent(cause), cause: cause})
				continue
			}
			for _, h := range b.hostnames {
				add(h+c, u)
			}
		default:
			// The scheme is not part of Fastly's cache key: the purge
			// names host, path and query.
			_, rest, _ := strings.Cut(c, "://")
			add(rest, u)
		}
	}
	return jobs, failed
}

// tagJobs returns the batch key purges of tags, and the tags that cannot be
// purged.
func tagJobs(tags []string) ([]job, []Failure) {
	var (
		keys   []string
		failed []Failure
		seen   = make(map[string]bool, len(tags))
	)
	for _, t := range tags {
		c, err := backends.CanonicalTag(t)
		if err != nil {
			cause := &backends.ObjectError{Kind: "tag", Object: t, Err: err}
			failed = append(failed, Failure{Object: t, Err: backends.Permanent(cause), cause: cause})
			continue
		}
		if !seen[c] {
			seen[c] = true
			keys = append(keys, c)
		}
	}
	var jobs []job
	for len(keys) > 0 {
		n := min(len(keys), MaxKeysPerRequest)
		jobs = append(jobs, job{keys: keys[:n:n], objs: keys[:n:n]})
		keys = keys[n:]
	}
	return jobs, failed
}

// run sends jobs, up to b.concurrency at once, and returns their outcomes
// in order. A 401 or 429 stops the jobs not started yet, which fail with
// it. It returns when every job has.
func (b *Backend) run(ctx context.Context, jobs []job) []outcome {
	out := make([]outcome, len(jobs))
	if len(jobs) == 0 {
		return out
	}
	var (
		mu   sync.Mutex
		next int
		stop outcome
		wg   sync.WaitGroup
	)
	take := func() (int, outcome) {
		mu.Lock()
		defer mu.Unlock()
		i := next
		next++
		return i, stop
	}
	for range min(b.concurrency, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i, stopped := take()
				if i >= len(jobs) {
					return
				}
				if stopped.err != nil {
					out[i] = stopped
					continue
				}
				o := b.send(ctx, jobs[i])
				out[i] = o
				if stopsOthers(o.err) {
					mu.Lock()
					if stop.err == nil {
						stop = outcome{err: o.err, cause: o.cause}
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// stopsOthers reports whether err means that the requests not sent yet
// would fail the same way: a refused token, a rate limit, an ended ctx.
func stopsOthers(err error) bool {
	if err == nil {
		return false
	}
	var e *Error
	if errors.As(err, &e) && (e.Status == http.StatusUnauthorized || e.Status == http.StatusTooManyRequests) {
		return true
	}
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// send sends one job and reads its answer.
func (b *Backend) send(ctx context.Context, j job) outcome {
	if j.keys == nil {
		return b.sendURL(ctx, j.cached)
	}
	return b.sendKeys(ctx, j.keys)
}

// observe gives the pacer what answer a says about the rate limits, and
// logs a 429 at Warn with the wait it asked for. hourly is whether the
// request counts against the hourly limit (purge_all).
func (b *Backend) observe(a *answer, op string, hourly bool) {
	now := time.Now()
	b.pacer.observe(a.header, a.status, hourly, now)
	if a.status == http.StatusTooManyRequests {
		b.logger.Warn("fastly: rate limited", slog.String("op", op), slog.Duration("wait", rateLimitWait(a.header, now)))
	}
}

func (b *Backend) sendURL(ctx context.Context, cached string) outcome {
	a, err := b.post(ctx, "/purge/"+cached, nil, b.soft)
	if err != nil {
		return failed(err)
	}
	b.observe(a, opURL, false)
	if a.status != http.StatusOK {
		return b.answerOutcome(a, opURL, backends.RedactURL(cached))
	}
	var ok okBody
	if err := json.Unmarshal(a.raw, &ok); err != nil || ok.Status != "ok" {
		return failed(fmt.Errorf("fastly: %s %s: 200 without {\"status\":\"ok\"}: %.100q", opURL, backends.RedactURL(cached), b.scrub(string(a.raw))))
	}
	b.logger.Debug("fastly: URL purged", slog.String("url", backends.RedactURL(cached)), slog.String("id", ok.ID), slog.Bool("soft", b.soft))
	return outcome{ids: map[string]string{cached: ok.ID}}
}

func (b *Backend) sendKeys(ctx context.Context, keys []string) outcome {
	body, _ := json.Marshal(struct {
		SurrogateKeys []string `json:"surrogate_keys"`
	}{keys})
	object := fmt.Sprintf("(%d keys)", len(keys))
	a, err := b.post(ctx, "/service/"+url.PathEscape(b.serviceID)+"/purge", body, b.soft)
	if err != nil {
		return failed(err)
	}
	b.observe(a, opKeys, false)
	if a.status != http.StatusOK {
		return b.answerOutcome(a, opKeys, object)
	}
	// A map of each key to its purge ID.
	ids := make(map[string]string, len(keys))
	if err := json.Unmarshal(a.raw, &ids); err != nil {
		return failed(fmt.Errorf("fastly: %s %s: 200 without a map of keys to purge IDs: %.100q", opKeys, object, b.scrub(string(a.raw))))
	}
	b.logger.Debug("fastly: surrogate keys purged", slog.Int("keys", len(keys)), slog.Bool("soft", b.soft))
	return outcome{ids: ids}
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
