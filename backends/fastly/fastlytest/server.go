package fastlytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gormpurge/gormpurge/backends/internal/fakeapi"
)

// Server is a fake of Fastly's purge API on a local TLS port: it checks the
// API token and the service ID, validates requests as Fastly does, keeps
// the hourly rate limit and records what it purged. Create it with
// [NewServer] and stop it with [Server.Close]. It is safe for concurrent
// use.
type Server struct {
	cfg  config
	ts   *httptest.Server
	once sync.Once

	mu          sync.Mutex
	purges      []Purge
	responses   map[int]int
	failures    fakeapi.Failures
	hook        func(Call) (int, bool)
	seq         int
	ids         int // purge IDs issued
	windowStart time.Time
	spent       int // requests counted in the current hourly window
	holder      fakeapi.Holder
}

// maxReadBody bounds the request body the fake reads: far more than 256
// keys need.
const maxReadBody = 1 << 20

// NewServer starts a fake Fastly API on an httptest TLS server at 127.0.0.1
// with a fresh random token and service ID unless set by options. Call
// [Server.Close] when done, typically with t.Cleanup(srv.Close). Like its
// options, it panics on misuse, as httptest does: here, if an option is
// nil.
func NewServer(opts ...Option) *Server {
	cfg := config{hourlyLimit: DefaultHourlyLimit, now: time.Now}
	for _, o := range opts {
		if o == nil {
			panic("fastlytest: NewServer: an Option is nil: remove it, or pass one made by a With... function")
		}
		o(&cfg)
	}
	if cfg.serviceID == "" {
		cfg.serviceID = randomString(22)
	}
	if cfg.token == "" {
		cfg.token = randomString(32)
	}
	s := &Server{cfg: cfg, responses: map[int]int{}, windowStart: cfg.now()}
	s.ts = fakeapi.NewUnstarted(s.serveHTTP)
	s.ts.StartTLS()
	return s
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alnum[int(b[i])%len(alnum)]
	}
	return string(b)
}

// Close shuts the server down and closes the idle connections of
// [Server.Client]. It releases held requests first. It may be called more
// than once.
func (s *Server) Close() {
	s.once.Do(func() {
		s.holder.ReleaseAll()
		s.ts.Close()
	})
}

// Hold makes the fake hold every later request, before any other check,
// without answering until release is called or the request's client goes
// away (then nothing is answered or recorded). arrived is closed when the
// first held request arrives. [Server.Close] releases held requests too.
func (s *Server) Hold() (arrived <-chan struct{}, release func()) {
	return s.holder.Hold()
}

// URL returns the API base, such as "https://127.0.0.1:41234", with no
// trailing slash: the fake's counterpart of https://api.fastly.com.
func (s *Server) URL() string { return s.ts.URL }

// Client returns an HTTP client that trusts the server's certificate.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// Token returns the API token the fake accepts in Fastly-Key.
func (s *Server) Token() string { return s.cfg.token }

// ServiceID returns the ID of the service the fake serves.
func (s *Server) ServiceID() string { return s.cfg.serviceID }

// HourlyLimit returns the number of requests per hour that purge_all
// counts against.
func (s *Server) HourlyLimit() int { return s.cfg.hourlyLimit }

// reply is a response about to be written.
type reply struct {
	status int
	header http.Header
	body   any
}

// errorBody is the shape of Fastly's API errors.
type errorBody struct {
	Msg    string `json:"msg"`
	Detail string `json:"detail,omitempty"`
}

// okBody answers a URL purge, a single-key purge and purge_all.
type okBody struct {
	Status string `json:"status"`
	ID     string `json:"id,omitempty"`
}

func errorReply(status int, msg, detail string) *reply {
	return &reply{status: status, body: errorBody{Msg: msg, Detail: detail}}
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxReadBody))
	if err != nil {
		abandon() // the client went away
	}
	if !s.holder.Wait(r.Context()) {
		abandon() // the client went away while held: no answer
	}
	rep := s.handle(r, body)
	if r.Context().Err() != nil {
		abandon() // abandoned while a hook held it: nothing to answer
	}
	s.mu.Lock()
	s.responses[rep.status]++
	s.mu.Unlock()
	for k, vs := range rep.header {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", "application/json")
	raw, _ := json.Marshal(rep.body)
	w.WriteHeader(rep.status)
	_, _ = w.Write(append(raw, '\n'))
}

// abandon ends a request whose client went away without answering it:
// the connection is closed. A handler that merely returned would have
// net/http answer an empty 200, which a client still reading (its
// cancellation under way) could take for a success.
func abandon() {
	panic(http.ErrAbortHandler)
}

// route is what a request's path names.
type route struct {
	kind      Kind
	serviceID string
	url       string // KindURL: host, path and query, as sent
	key       string // KindKey
}

// parseRoute reads the route from the request URI as sent, so that a URL
// purge keeps its exact percent-encoding.
func parseRoute(requestURI string) (route, bool) {
	if rest, ok := strings.CutPrefix(requestURI, "/purge/"); ok {
		if rest == "" || rest[0] == '/' {
			return route{}, false
		}
		return route{kind: KindURL, url: rest}, true
	}
	path, _, _ := strings.Cut(requestURI, "?")
	rest, ok := strings.CutPrefix(path, "/service/")
	if !ok {
		return route{}, false
	}
	id, op, ok := strings.Cut(rest, "/")
	if !ok || id == "" {
		return route{}, false
	}
	switch {
	case op == "purge_all":
		return route{kind: KindAll, serviceID: id}, true
	case op == "purge":
		return route{kind: KindKeys, serviceID: id}, true
	case strings.HasPrefix(op, "purge/") && len(op) > len("purge/") && !strings.Contains(op[len("purge/"):], "/"):
		return route{kind: KindKey, serviceID: id, key: op[len("purge/"):]}, true
	}
	return route{}, false
}

// handle answers a request, in Fastly's order: injected failures, the
// token, the route, the method, the service, the body, the rate limit.
func (s *Server) handle(r *http.Request, body []byte) *reply {
	rt, routed := parseRoute(r.RequestURI)
	_, soft := r.Header[http.CanonicalHeaderKey("Fastly-Soft-Purge")]
	call := Call{
		Context:   r.Context(),
		Method:    r.Method,
		Path:      r.RequestURI,
		Kind:      rt.kind,
		ServiceID: rt.serviceID,
		URL:       rt.url,
		Soft:      soft && rt.kind != KindAll,
		Header:    r.Header.Clone(),
		Body:      body,
	}
	keys, bad := s.keys(rt, r, body)
	if bad == nil {
		call.Keys = keys
	}

	s.mu.Lock()
	s.seq++
	call.Seq = s.seq
	status, injected := s.failures.Next()
	hook := s.hook
	s.mu.Unlock()
	if !injected && hook != nil {
		status, injected = hook(call)
		if r.Context().Err() != nil {
			abandon() // the client went away while the hook held it: nothing recorded or answered
		}
	}
	if injected {
		return s.injected(call, status)
	}

	if r.Header.Get("Fastly-Key") != s.cfg.token {
		return errorReply(http.StatusUnauthorized, "Provided credentials are missing or invalid", "")
	}
	var rep *reply
	switch {
	case !routed:
		rep = errorReply(http.StatusNotFound, "Record not found", "No purge endpoint at "+r.URL.Path)
	case r.Method != http.MethodPost:
		rep = errorReply(http.StatusMethodNotAllowed, "Method not allowed", r.Method+" is not allowed; use POST")
		rep.header = http.Header{"Allow": {http.MethodPost}}
	case rt.kind != KindURL && rt.serviceID != s.cfg.serviceID:
		rep = errorReply(http.StatusNotFound, "Record not found", fmt.Sprintf("Cannot find service '%s'", rt.serviceID))
	case bad != nil:
		rep = bad
	default:
		return s.accept(call)
	}
	return s.withRateHeaders(rep)
}

// keys returns the surrogate keys of a key purge, or a 400 reply.
func (s *Server) keys(rt route, r *http.Request, body []byte) ([]string, *reply) {
	switch rt.kind {
	case KindKey:
		return []string{rt.key}, nil
	case KindKeys:
	default:
		return nil, nil
	}
	header := strings.Fields(r.Header.Get("Surrogate-Key"))
	var keys []string
	if len(bytes.TrimSpace(body)) > 0 {
		if len(header) > 0 {
			return nil, errorReply(http.StatusBadRequest, "Bad request", "Give the keys in the JSON body or in the Surrogate-Key header, not both")
		}
		var pb struct {
			SurrogateKeys []string `json:"surrogate_keys"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&pb); err != nil {
			return nil, errorReply(http.StatusBadRequest, "Bad request", "The body is not {\"surrogate_keys\":[...]}: "+err.Error())
		}
		keys = pb.SurrogateKeys
	} else {
		keys = header
	}
	if len(keys) == 0 {
		return nil, errorReply(http.StatusBadRequest, "Bad request", "No surrogate keys given")
	}
	if len(keys) > MaxKeys {
		return nil, errorReply(http.StatusBadRequest, "Bad request", fmt.Sprintf("Too many surrogate keys: %d, at most %d in one request", len(keys), MaxKeys))
	}
	for _, k := range keys {
		if k == "" || strings.IndexFunc(k, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
			return nil, errorReply(http.StatusBadRequest, "Bad request", fmt.Sprintf("Invalid surrogate key %q", k))
		}
	}
	return keys, nil
}

// accept records a valid purge and answers it, or answers 429 for a
// purge_all past the hourly limit.
func (s *Server) accept(c Call) *reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rollWindowLocked()
	if c.Kind == KindAll {
		if s.spent >= s.cfg.hourlyLimit {
			return &reply{status: http.StatusTooManyRequests, header: s.rateHeadersLocked(),
				body: errorBody{Msg: "Rate limit exceeded", Detail: fmt.Sprintf("You have made more than %d requests this hour", s.cfg.hourlyLimit)}}
		}
		s.spent++
	}
	p := Purge{Kind: c.Kind, ServiceID: c.ServiceID, URL: c.URL, Keys: c.Keys, Soft: c.Soft, At: s.cfg.now()}
	var body any
	switch c.Kind {
	case KindKeys:
		ids := make(map[string]string, len(c.Keys))
		p.IDs = make([]string, len(c.Keys))
		for i, k := range c.Keys {
			p.IDs[i] = s.newIDLocked()
			ids[k] = p.IDs[i]
		}
		body = ids
	case KindAll:
		body = okBody{Status: "ok"}
	default:
		p.IDs = []string{s.newIDLocked()}
		body = okBody{Status: "ok", ID: p.IDs[0]}
	}
	s.purges = append(s.purges, p)
	return &reply{status: http.StatusOK, header: s.rateHeadersLocked(), body: body}
}

// newIDLocked returns a purge ID in the shape of Fastly's, such as
// "108112-1502804542-1". s.mu held.
func (s *Server) newIDLocked() string {
	s.ids++
	return fmt.Sprintf("%d-%d-%d", 108112, s.cfg.now().Unix(), s.ids)
}

// rollWindowLocked starts a new hourly window when the current one has
// ended. s.mu held.
func (s *Server) rollWindowLocked() {
	now := s.cfg.now()
	if d := now.Sub(s.windowStart); d >= time.Hour {
		s.windowStart = s.windowStart.Add(d.Truncate(time.Hour))
		s.spent = 0
	}
}

// rateHeadersLocked returns the Fastly-RateLimit-* headers. s.mu held.
func (s *Server) rateHeadersLocked() http.Header {
	s.rollWindowLocked()
	reset := s.windowStart.Add(time.Hour)
	return http.Header{
		"Fastly-Ratelimit-Remaining": {strconv.Itoa(max(0, s.cfg.hourlyLimit-s.spent))},
		"Fastly-Ratelimit-Reset":     {strconv.FormatInt(ceilUnix(reset), 10)},
	}
}

// ceilUnix is t in epoch seconds, rounded up so that a client waiting until
// then is never early.
func ceilUnix(t time.Time) int64 {
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	return sec
}

func (s *Server) withRateHeaders(rep *reply) *reply {
	s.mu.Lock()
	h := s.rateHeadersLocked()
	s.mu.Unlock()
	for k, vs := range rep.header {
		h[k] = vs
	}
	rep.header = h
	return rep
}

// injectedTexts are the messages of an injected failure by status.
var injectedTexts = map[int]errorBody{
	http.StatusBadRequest:          {Msg: "Bad request"},
	http.StatusUnauthorized:        {Msg: "Provided credentials are missing or invalid"},
	http.StatusForbidden:           {Msg: "Forbidden", Detail: "The token may not purge this service or URL"},
	http.StatusNotFound:            {Msg: "Record not found"},
	http.StatusTooManyRequests:     {Msg: "Too many requests"},
	http.StatusInternalServerError: {Msg: "Internal Server Error"},
	http.StatusBadGateway:          {Msg: "Bad Gateway"},
	http.StatusServiceUnavailable:  {Msg: "Service Unavailable"},
	http.StatusGatewayTimeout:      {Msg: "Gateway Timeout"},
}

// injected answers c with status, as FailNext or a Respond hook asked.
// Nothing is recorded or spent.
func (s *Server) injected(c Call, status int) *reply {
	if status < 200 || status > 599 {
		status = http.StatusInternalServerError // a hook's mistake
	}
	if status < 400 {
		return s.withRateHeaders(&reply{status: status, body: okBody{Status: "ok"}})
	}
	b, ok := injectedTexts[status]
	if !ok {
		b = errorBody{Msg: http.StatusText(status)}
	}
	if status == http.StatusNotFound && c.Kind != KindURL {
		b.Detail = fmt.Sprintf("Cannot find service '%s'", c.ServiceID)
	}
	rep := s.withRateHeaders(&reply{status: status, body: b})
	if status == http.StatusTooManyRequests {
		rep.header.Set("Retry-After", "1")
	}
	return rep
}

// Kind is what a request purges.
type Kind string

// The kinds of purge, by endpoint.
const (
	KindURL  Kind = "url"       // POST /purge/{cached_url}
	KindKeys Kind = "keys"      // POST /service/{id}/purge (batch)
	KindKey  Kind = "key"       // POST /service/{id}/purge/{key}
	KindAll  Kind = "purge_all" // POST /service/{id}/purge_all
)

// Call is a request as given to a [Server.Respond] hook, before any check.
type Call struct {
	// Context ends when the client abandons the request: a hook that holds
	// the request waits on it.
	Context context.Context
	// Seq numbers the requests from 1; [Server.Reset] restarts it.
	Seq    int
	Method string
	// Path is the request URI as sent.
	Path string
	// Kind, ServiceID, URL and Keys are read from the path and body, or
	// empty when they do not name a purge.
	Kind      Kind
	ServiceID string
	URL       string
	Keys      []string
	// Soft is whether the request asked for a soft purge.
	Soft   bool
	Header http.Header
	Body   []byte
}
