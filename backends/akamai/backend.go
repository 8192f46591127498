package akamai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
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

// DefaultRateLimitWait is how long the backend waits after a 429 whose
// answer says nothing about when the bucket refills.
const DefaultRateLimitWait = 5 * time.Second

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

func loadCredentials(sources []credentialSource) (Credentials, error) {
	if len(sources) == 0 {
		return Credentials{}, &ConfigError{Source: "New", Err: errors.New("no credentials: use WithEdgerc, WithEnv or WithCredentials")}
	}
	var tried []string
	for _, s := range sources {
		c, err := s.load()
		if errors.Is(err, errAbsent) {
			tried = append(tried, err.Error())
			continue
		}
		return c, err
	}
	return Credentials{}, &ConfigError{Source: "New", Err: fmt.Errorf("no credentials found: %s", strings.Join(tried, "; "))}
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

// size returns an upper bound of the body size of r's largest request,
// exact when r holds no duplicates across schemes. It stops counting once
// past the body limit.
func (b *Backend) size(r backends.Request) int {
	limit := b.maxBody + 1
	n := 0
	if len(r.URLs) > 0 {
		n = len(bodyOpen) + len(bodyClose) - 1
		for _, u := range r.URLs {
			if strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "//") {
				p, err := canonicalPath(u)
				if err != nil {
					continue
				}
				for _, h := range b.hostnames {
					n += 1 + jsonLen(p) + len("https://") + len(h)
				}
			} else if c, err := canonicalURL(u); err == nil {
				n += 1 + jsonLen(c)
			}
			if n > limit {
				return n
			}
		}
	}
	if len(r.Tags) > 0 {
		n = max(n, bodyLen(r.Tags, limit))
	}
	return n
}

// objects returns the objects of kind in r as they will be sent, and those
// that cannot be sent.
func (b *Backend) objects(kind Kind, r backends.Request) (ok []string, bad []Rejected) {
	if kind == KindURL {
		return canonicalURLs(r.URLs, b.hostnames)
	}
	for _, t := range r.Tags {
		if err := checkTag(t); err != nil {
			bad = append(bad, Rejected{Object: t, Reason: err.Error()})
			continue
		}
		ok = append(ok, t)
	}
	return ok, bad
}

// plan cuts objects into requests within the body limit and the bucket's
// size, greedily, keeping their order.
func (b *Backend) plan(kind Kind, objects []string) [][]string {
	burst := b.limits.ForKind(kind).Burst
	var out [][]string
	for len(objects) > 0 {
		n, size := 0, len(bodyOpen)+len(bodyClose)
		for n < len(objects) && n < burst {
			add := jsonLen(objects[n])
			if kind == KindCPCode {
				add = len(objects[n])
			}
			if n > 0 {
				add++
			}
			if size+add > b.maxBody && n > 0 {
				break
			}
			size += add
			n++
		}
		out = append(out, objects[:n:n])
		objects = objects[n:]
	}
	return out
}

// Pace waits until the client-side token buckets hold the tokens r needs:
// one request token per request it will take and one object token per URL
// or tag. The dispatcher calls it before each call to Purge. When ctx ends
// first, Pace returns its error. When ctx's deadline would come before the
// tokens, Pace returns at once an error matching [ErrRateLimited] that
// backends.RetryDelay reads the wait from. Either way, the tokens of the
// request it could not wait for are not taken. Call Purge with r at once:
// until its requests are sent, the pacer counts them as on their way.
func (b *Backend) Pace(ctx context.Context, r backends.Request) error {
	for _, kind := range []Kind{KindURL, KindTag} {
		objs, _ := b.objects(kind, r)
		for _, chunk := range b.plan(kind, objs) {
			if err := b.wait(ctx, kind, len(chunk)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *Backend) wait(ctx context.Context, kind Kind, n int) error {
	err := b.pacer.wait(ctx, kind, n)
	var pe *pacedError
	if errors.As(err, &pe) {
		return backends.RetryAfter(pe.wait, err)
	}
	return err
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

// failedObjects returns the objects of r, as r holds them, that rejected
// names in the form they were sent, or that could not be sent at all. A
// URL fails when any of its canonical forms (one per hostname for a path)
// was refused.
func (b *Backend) failedObjects(r backends.Request, rejected []Rejected) backends.Request {
	// Sent URLs always hold "://" and tags never hold "/": one set serves
	// both kinds.
	refused := make(map[string]bool, len(rejected))
	for _, x := range rejected {
		refused[x.Object] = true
	}
	var failed backends.Request
	for _, u := range r.URLs {
		forms, bad := canonicalURLs([]string{u}, b.hostnames)
		if len(bad) > 0 || slices.ContainsFunc(forms, func(f string) bool { return refused[f] }) {
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

// finish turns what a call did into its Result and error.
func (b *Backend) finish(t *tally, objects int, rejected []Rejected) (backends.Result, error) {
	rejected = append(rejected, t.rejected...)
	res := t.result(b.name, objects)
	if len(rejected) == 0 {
		return res, nil
	}
	for _, r := range rejected {
		b.logger.Warn("akamai: object not purged", slog.String("object", r.Object), slog.String("reason", r.Reason))
	}
	return res, backends.Permanent(&RejectedError{Rejected: rejected, Purged: t.accepted})
}

// tally collects what the requests of one call achieved.
type tally struct {
	purgeIDs, supportIDs []string
	estimated            float64
	accepted             int
	rejected             []Rejected
	resends              int // requests left for resending what a 400 or 403 did not refuse
}

// resendBudget is how many times one call may resend the rest of a request
// after a 400 or 403 refused some of its objects.
const resendBudget = 16

func newTally() *tally { return &tally{resends: resendBudget} }

func (t *tally) result(name string, objects int) backends.Result {
	res := backends.Result{Backend: name, Objects: objects}
	if len(t.purgeIDs) == 0 {
		return res
	}
	res.IDs = map[string]string{
		"purgeId":          strings.Join(t.purgeIDs, ","),
		"supportId":        strings.Join(t.supportIDs, ","),
		"estimatedSeconds": strconv.FormatFloat(t.estimated, 'f', -1, 64),
	}
	res.Detail = fmt.Sprintf("Request accepted: %d objects in %d requests, done in about %ss",
		t.accepted, len(t.purgeIDs), res.IDs["estimatedSeconds"])
	return res
}

// send posts one request of objects, for which a request token and
// reserved object tokens were taken (by Pace, by the caller, or kept from
// a refused request), and deals with its answer: it records a 201 in t,
// splits on 413, drops the objects a 400 or 403 names and resends the rest,
// and returns the classified error of any other failure.
func (b *Backend) send(ctx context.Context, kind Kind, objects []string, reserved int, t *tally) error {
	body := encode(kind, objects)
	if len(body) > b.maxBody && len(objects) > 1 {
		// The halves take request tokens of their own and keep the
		// object tokens.
		b.pacer.unsend(kind, 1, 0)
		return b.split(ctx, kind, objects, t)
	}
	ans, err := b.post(ctx, kind, body, len(objects), reserved)
	if err != nil {
		return err
	}
	// Akamai spent nothing on a refused request: the object tokens of
	// what is resent are kept for it.
	keep := 0
	switch {
	case ans.status == http.StatusRequestEntityTooLarge && len(objects) > 1:
		keep = len(objects)
	case ans.status == http.StatusBadRequest || ans.status == http.StatusForbidden:
		if refused, rest := refusedObjects(kind, objects, ans); len(refused) > 0 && t.resends > 0 {
			keep = len(rest)
		}
	}
	b.pacer.answered(kind, reserved, keep, ans.status,
		headerFloat(ans.header, "X-Ratelimit-Remaining"), headerFloat(ans.header, "X-Ratelimit-Remaining-Objects"))
	switch {
	case ans.status == http.StatusCreated:
		t.purgeIDs = append(t.purgeIDs, ans.body.PurgeID)
		t.supportIDs = append(t.supportIDs, ans.body.SupportID)
		t.estimated = max(t.estimated, ans.body.EstimatedSeconds)
		t.accepted += len(objects)
		b.logger.Debug("akamai: purge accepted",
			slog.String("kind", string(kind)), slog.String("action", string(b.action)), slog.String("network", string(b.network)),
			slog.Int("objects", len(objects)), slog.Int("bytes", len(body)),
			slog.String("purgeId", ans.body.PurgeID), slog.String("supportId", ans.body.SupportID),
			slog.Float64("estimatedSeconds", ans.body.EstimatedSeconds))
		return nil
	case ans.status == http.StatusRequestEntityTooLarge:
		b.logger.Warn("akamai: request too large, splitting", slog.String("kind", string(kind)),
			slog.Int("objects", len(objects)), slog.Int("bytes", len(body)))
		if len(objects) == 1 {
			t.rejected = append(t.rejected, Rejected{Object: objects[0], Reason: "413: larger than Akamai's body limit on its own"})
			return nil
		}
		return b.split(ctx, kind, objects, t)
	case ans.status == http.StatusBadRequest || ans.status == http.StatusForbidden:
		apiErr := b.apiError(ans, kind, len(objects))
		refused, rest := refusedObjects(kind, objects, ans)
		if len(refused) == 0 {
			// About the request as a whole (a gateway's "Invalid
			// timestamp", an API client without the grant): retrying
			// or halving cannot help.
			return backends.Permanent(apiErr)
		}
		for _, o := range refused {
			t.rejected = append(t.rejected, Rejected{Object: o, Reason: apiErr.Error()})
		}
		if len(rest) == 0 {
			return nil
		}
		if t.resends == 0 {
			for _, o := range rest {
				t.rejected = append(t.rejected, Rejected{Object: o, Reason: "not sent: too many refused objects in one batch"})
			}
			return nil
		}
		t.resends--
		b.logger.Warn("akamai: objects refused, resending the rest", slog.String("kind", string(kind)),
			slog.Int("refused", len(refused)), slog.Int("rest", len(rest)), slog.String("supportId", ans.body.SupportID))
		return b.resend(ctx, kind, rest, t)
	case ans.status == http.StatusTooManyRequests:
		wait := b.rateLimitWait(ans, kind, len(objects))
		apiErr := b.apiError(ans, kind, len(objects))
		b.logger.Warn("akamai: rate limited", slog.String("kind", string(kind)), slog.Int("objects", len(objects)),
			slog.Duration("wait", wait), slog.String("supportId", ans.body.SupportID))
		return backends.RetryAfter(wait, fmt.Errorf("%w: %w", ErrRateLimited, apiErr))
	case ans.status >= 500 || ans.status == http.StatusRequestTimeout:
		return b.apiError(ans, kind, len(objects))
	default: // 401, 404, 405, 415 and other refusals of the whole request
		return backends.Permanent(b.apiError(ans, kind, len(objects)))
	}
}

// split sends objects, whose object tokens are reserved, as two halves in
// turn.
func (b *Backend) split(ctx context.Context, kind Kind, objects []string, t *tally) error {
	h := len(objects) / 2
	if err := b.resend(ctx, kind, objects[:h:h], t); err != nil {
		b.pacer.unsend(kind, 0, len(objects)-h)
		return err
	}
	return b.resend(ctx, kind, objects[h:], t)
}

// resend sends objects again after Akamai refused the request they were
// part of. A refused request spends no object tokens at Akamai, and send
// kept those of objects reserved: only a request token is taken.
func (b *Backend) resend(ctx context.Context, kind Kind, objects []string, t *tally) error {
	if err := b.wait(ctx, kind, 0); err != nil {
		b.pacer.unsend(kind, 0, len(objects))
		return err
	}
	return b.send(ctx, kind, objects, len(objects), t)
}

// refusedObjects splits objects into those a 400 or 403 answer refuses and
// the rest. Akamai's detail names the refused object (for a 403, a URL or
// ARL the API client may not purge, and then every URL on the same host is
// refused too). When the detail names none of them, refused is empty: the
// answer is about the request as a whole.
func refusedObjects(kind Kind, objects []string, a *answer) (refused, rest []string) {
	i := indexNamed(objects, a.body.Detail)
	if i < 0 {
		return nil, objects
	}
	sameHost := func(o string) bool { return o == objects[i] }
	if kind == KindURL && a.status == http.StatusForbidden {
		if h := hostOf(objects[i]); h != "" {
			sameHost = func(o string) bool { return hostOf(o) == h }
		}
	}
	for _, o := range objects {
		if sameHost(o) {
			refused = append(refused, o)
		} else {
			rest = append(rest, o)
		}
	}
	return refused, rest
}

// hostOf returns the host of an absolute URL as canonicalURLs writes it.
func hostOf(u string) string {
	rest := stripScheme(u)
	if rest == u {
		return ""
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return rest[:i]
	}
	return rest
}

// indexNamed returns the index of the object that detail names, or -1. A
// URL is matched without its scheme: Akamai may name http://host/path for
// the https://host/path that was sent.
func indexNamed(objects []string, detail string) int {
	detail = strings.TrimSpace(detail)
	if detail == "" {
		return -1
	}
	for _, word := range strings.Fields(detail) {
		word = stripScheme(strings.Trim(word, `"'.,;()<>`))
		if word == "" {
			continue
		}
		for i, o := range objects {
			if stripScheme(o) == word {
				return i
			}
		}
	}
	return -1
}

func stripScheme(s string) string {
	if rest, ok := strings.CutPrefix(s, "https://"); ok {
		return rest
	}
	if rest, ok := strings.CutPrefix(s, "http://"); ok {
		return rest
	}
	return s
}

func encode(kind Kind, objects []string) []byte {
	if kind == KindCPCode {
		var buf bytes.Buffer
		buf.WriteString(bodyOpen)
		buf.WriteString(strings.Join(objects, ","))
		buf.WriteString(bodyClose)
		return buf.Bytes()
	}
	return encodeStrings(objects)
}

// answer is an HTTP answer from Fast Purge.
type answer struct {
	status int
	header http.Header
	body   apiBody
}

// apiBody holds the fields of Fast Purge's answers, success or problem.
type apiBody struct {
	HTTPStatus                  int      `json:"httpStatus"`
	EstimatedSeconds            float64  `json:"estimatedSeconds"`
	PurgeID                     string   `json:"purgeId"`
	SupportID                   string   `json:"supportId"`
	Detail                      string   `json:"detail"`
	Title                       string   `json:"title"`
	DescribedBy                 string   `json:"describedBy"`
	RateLimit                   *float64 `json:"rateLimit"`
	RateLimitCurrentRequestSize *float64 `json:"rateLimitCurrentRequestSize"`
	RateLimitRemaining          *float64 `json:"rateLimitRemaining"`
}

// maxAnswer bounds how much of an answer is read.
const maxAnswer = 1 << 20

// post signs and sends one request of n objects, for which a request token
// and reserved object tokens were taken. It returns an error only when
// there is no HTTP answer (then it has settled the tokens); otherwise the
// caller reports the answer to the pacer.
func (b *Backend) post(ctx context.Context, kind Kind, body []byte, n, reserved int) (*answer, error) {
	url := "https://" + b.host + Path(b.action, kind, b.network)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		b.pacer.unsend(kind, 1, reserved)
		return nil, backends.Permanent(fmt.Errorf("akamai: building request to %s: %w", url, err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	b.signer.SignRequest(req)
	b.pacer.sending(kind, reserved)
	resp, err := b.client.Do(req)
	if err != nil {
		b.pacer.lost(kind, reserved)
		return nil, fmt.Errorf("akamai: %s %s (%d objects): %w", b.action, kind, n, err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
		_ = resp.Body.Close()
	}()
	ans := &answer{status: resp.StatusCode, header: resp.Header}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		b.pacer.answered(kind, reserved, 0, ans.status,
			headerFloat(resp.Header, "X-Ratelimit-Remaining"), headerFloat(resp.Header, "X-Ratelimit-Remaining-Objects"))
		return nil, fmt.Errorf("akamai: reading the answer to %s %s (%d objects, status %d): %w", b.action, kind, n, resp.StatusCode, err)
	}
	if len(raw) > 0 && json.Unmarshal(raw, &ans.body) != nil {
		// Not Fast Purge's JSON (a proxy's error page, say): keep the start
		// of it as the detail.
		ans.body = apiBody{Detail: strings.TrimSpace(string(raw[:min(len(raw), 200)]))}
	}
	return ans, nil
}

func (b *Backend) apiError(a *answer, kind Kind, n int) *Error {
	title := a.body.Title
	if title == "" {
		title = http.StatusText(a.status)
	}
	return &Error{
		Status: a.status, Title: title, Detail: a.body.Detail, SupportID: a.body.SupportID,
		DescribedBy: a.body.DescribedBy, Kind: kind, Action: b.action, Network: b.network, Objects: n,
	}
}

// rateLimitWait returns how long to wait after a 429 before the request of
// n objects fits in Akamai's buckets. It reads the X-Ratelimit-* headers of
// the bucket the answer is about (the request bucket for "Rate Limit
// exceeded", the object bucket for "URL/TAG/CPCODE Rate Limit exceeded"),
// else the answer's rateLimitRemaining for that bucket, and waits
// DefaultRateLimitWait when it cannot tell.
func (b *Backend) rateLimitWait(a *answer, kind Kind, n int) time.Duration {
	h := a.header
	perSecond := func(name string, dflt float64) float64 {
		if v := headerFloat(h, name); v > 0 {
			return v
		}
		return dflt
	}
	objectBucket := a.body.Title != "" && !strings.EqualFold(a.body.Title, "Rate Limit exceeded")
	remaining := func(header string, body bool) float64 {
		if v := headerFloat(h, header); v >= 0 {
			return v
		}
		if body && a.body.RateLimitRemaining != nil && *a.body.RateLimitRemaining >= 0 {
			return *a.body.RateLimitRemaining
		}
		return -1
	}
	var wait float64
	if rem := remaining("X-Ratelimit-Remaining", !objectBucket); rem >= 0 && rem < 1 {
		wait = max(wait, (1-rem)/perSecond("X-Ratelimit-Limit-Per-Second", b.limits.Requests.PerSecond))
	}
	if rem := remaining("X-Ratelimit-Remaining-Objects", objectBucket); rem >= 0 && rem < float64(n) {
		wait = max(wait, (float64(n)-rem)/perSecond("X-Ratelimit-Limit-Per-Second-Objects", b.limits.ForKind(kind).PerSecond))
	}
	if wait <= 0 || math.IsNaN(wait) || wait > 3600 {
		return DefaultRateLimitWait
	}
	// A little over the exact refill, so as not to arrive a hair early.
	return time.Duration(wait*1.05*float64(time.Second)) + 10*time.Millisecond
}

// headerFloat returns the header's value as a number, or -1.
func headerFloat(h http.Header, name string) float64 {
	v, err := strconv.ParseFloat(strings.TrimSpace(h.Get(name)), 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return -1
	}
	return v
}
