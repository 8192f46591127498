package cloudflaretest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gormpurge/gormpurge/backends/internal/fakeapi"
)

// CodeRefusedURL is the error code of a file (URL) the fake refuses, on its
// own or through [Server.RefuseURLs]. It is the fake's own, as is its
// message, "Invalid or refused URL: " followed by the URL: Cloudflare
// documents neither a code nor a message for a refused URL. Code under
// test should not rely on them to tell which URL was refused.
const CodeRefusedURL = 1099

// Server is a fake Cloudflare purge_cache API on a local TLS port: it
// checks the token, the zone and the body as Cloudflare does, spends the
// account's token bucket and records what it accepted. Create it with
// [NewServer] and stop it with [Server.Close]. It is safe for concurrent
// use.
type Server struct {
	cfg  config
	ts   *httptest.Server
	once sync.Once

	mu        sync.Mutex
	tokens    float64 // of the request bucket
	urlTokens float64 // of the URL rate
	last      time.Time
	purges    []Purge
	responses map[int]int
	failures  fakeapi.Failures
	hook      func(Call) (int, bool)
	refused   map[string]bool
	seq       int
	holder    fakeapi.Holder
}

// Purge is a request the fake accepted.
type Purge struct {
	// ID is the id of the answer's result.
	ID string
	// Exactly one of the following is set.
	Files      []string
	Tags       []string
	Hosts      []string
	Prefixes   []string
	Everything bool
	// At is when the request was accepted.
	At time.Time
}

// Call is a request as given to a [Server.Respond] hook, before any check.
type Call struct {
	// Seq numbers the requests from 1; [Server.Reset] restarts it.
	Seq    int
	Method string
	Path   string
	Header http.Header
	Body   []byte
	// Files and Tags are the body's, when it parses.
	Files []string
	Tags  []string
}

// maxReadBody bounds the body the fake reads.
const maxReadBody = 4 << 20

// NewServer starts a fake purge_cache API on an httptest TLS server at
// 127.0.0.1 with a fresh random zone ID and token. Call [Server.Close]
// when done, typically with t.Cleanup(srv.Close). Like its options, it
// panics on misuse, as httptest does: here, if an option is nil.
func NewServer(opts ...Option) *Server {
	cfg := config{
		zone:          randomHex(16),
		token:         randomToken(),
		perSecond:     DefaultPerSecond,
		burst:         DefaultBurst,
		urlsPerSecond: DefaultURLsPerSecond,
		maxItems:      DefaultMaxItems,
		now:           time.Now,
	}
	for _, o := range opts {
		if o == nil {
			panic("cloudflaretest: NewServer: an Option is nil: remove it, or pass one made by a With... function")
		}
		o(&cfg)
	}
	if cfg.maxFiles == 0 {
		cfg.maxFiles = cfg.maxItems
	}
	s := &Server{cfg: cfg, responses: map[int]int{}, refused: map[string]bool{}}
	s.tokens, s.urlTokens, s.last = float64(cfg.burst), cfg.urlsPerSecond, cfg.now()
	s.ts = fakeapi.NewUnstarted(s.serveHTTP)
	s.ts.StartTLS()
	return s
}

// Close shuts the server down and closes the connections of
// [Server.Client]. It releases held requests first. It may be called more
// than once.
func (s *Server) Close() {
	s.once.Do(func() {
		s.holder.ReleaseAll()
		s.ts.Close()
	})
}

// Endpoint returns the API base to give the code under test, such as
// "https://127.0.0.1:41234/client/v4", as https://api.cloudflare.com/client/v4:
// the value for cloudflare.WithEndpoint.
func (s *Server) Endpoint() string { return s.ts.URL + "/client/v4" }

// URL returns the server's base URL, such as "https://127.0.0.1:41234",
// with no path or trailing slash, as the other fakes' URL does: the
// counterpart of https://api.cloudflare.com. Code under test that takes
// the API base with its /client/v4 path wants [Server.Endpoint].
func (s *Server) URL() string { return s.ts.URL }

// Zone returns the zone ID the fake serves.
func (s *Server) Zone() string { return s.cfg.zone }

// Token returns the API token the fake accepts.
func (s *Server) Token() string { return s.cfg.token }

// Client returns an HTTP client that trusts the server's certificate.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// FailNext makes the next times requests fail with status before any
// other check, with Cloudflare's envelope: a 429 carries "Retry-After: 1"
// and code 971, a 5xx code 10002 ("An unknown error has occurred"), a 403
// code 10000, another 4xx code 1012. Failed requests are not recorded and
// spend no token. Calls queue up. It panics unless status is between 400
// and 599; times of 0 or less does nothing.
func (s *Server) FailNext(status, times int) {
	if status < 400 || status > 599 {
		panic(fmt.Sprintf("cloudflaretest: FailNext(%d): the status must be between 400 and 599", status))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures.Add(status, times)
}

// Respond installs a hook that sees every request not taken by
// [Server.FailNext]. When it returns handled, the request is answered with
// status as FailNext would (a status below 400 is answered as success and
// not recorded) and goes no further. The hook runs on the request's
// goroutine without the server's lock: it must be safe for concurrent use.
// Respond(nil) removes it.
func (s *Server) Respond(hook func(Call) (status int, handled bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = hook
}

// Hold makes the fake hold every later request, before any other check,
// without answering until release is called or the request's client goes
// away (then nothing is answered or recorded). arrived is closed when the
// first held request arrives. [Server.Close] releases held requests too.
func (s *Server) Hold() (arrived <-chan struct{}, release func()) {
	return s.holder.Hold()
}

// RefuseURLs makes the fake refuse every later request naming one of urls
// in its files, as Cloudflare refuses a request with an object it will not
// purge: 400, code 1016 and one error of code [CodeRefusedURL] per refused
// URL, whose message ends with ": " and it. The codes and the messages
// are the fake's own (Cloudflare documents none for a refused URL).
// Nothing of the request is purged. URLs are matched as sent.
func (s *Server) RefuseURLs(urls ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range urls {
		s.refused[u] = true
	}
}

// Purges returns every accepted request, in the order accepted.
func (s *Server) Purges() []Purge {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fakeapi.Clone(s.purges, func(p Purge) Purge {
		p.Files, p.Tags = slices.Clone(p.Files), slices.Clone(p.Tags)
		p.Hosts, p.Prefixes = slices.Clone(p.Hosts), slices.Clone(p.Prefixes)
		return p
	})
}

// Files returns every accepted URL, in the order accepted.
func (s *Server) Files() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fakeapi.Flatten(s.purges, func(p Purge) []string { return p.Files })
}

// Tags returns every accepted tag, in the order accepted.
func (s *Server) Tags() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fakeapi.Flatten(s.purges, func(p Purge) []string { return p.Tags })
}

// Everything returns how many purges of everything were accepted.
func (s *Server) Everything() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fakeapi.Count(s.purges, func(p Purge) bool { return p.Everything })
}

// Responses returns how many responses the fake sent, by HTTP status.
func (s *Server) Responses() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.responses)
}

// Reset forgets the purges and response counts, cancels pending FailNext
// failures and RefuseURLs, removes the Respond hook, restarts Call.Seq and
// fills the request bucket and the URL rate.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purges, s.responses, s.hook, s.seq = nil, map[int]int{}, nil, 0
	s.failures.Reset()
	s.refused = map[string]bool{}
	s.tokens, s.urlTokens, s.last = float64(s.cfg.burst), s.cfg.urlsPerSecond, s.cfg.now()
}

// apiError is one entry of the envelope's errors.
type apiError struct {
	Code       int        `json:"code"`
	Message    string     `json:"message"`
	ErrorChain []apiError `json:"error_chain,omitempty"`
}

// envelope is every answer's body.
type envelope struct {
	Success  bool       `json:"success"`
	Errors   []apiError `json:"errors"`
	Messages []string   `json:"messages"`
	Result   any        `json:"result"`
}

type reply struct {
	status int
	header http.Header
	body   envelope
}

func failed(status int, errs ...apiError) *reply {
	return &reply{status: status, body: envelope{Errors: errs, Messages: []string{}}}
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxReadBody))
	if err != nil {
		return
	}
	var parsed purgeBody
	_ = json.Unmarshal(body, &parsed) // for the hook only; checked below
	call := Call{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body,
		Files: parsed.fileURLs(), Tags: parsed.Tags}
	if !s.holder.Wait(r.Context()) {
		panic(http.ErrAbortHandler) // the client went away while held: no answer
	}
	s.mu.Lock()
	s.seq++
	call.Seq = s.seq
	status, injected := s.failures.Next()
	hook := s.hook
	s.mu.Unlock()
	if !injected && hook != nil {
		status, injected = hook(call)
	}
	var rep *reply
	if injected {
		rep = injectedReply(status)
	} else {
		rep = s.handle(r, body)
	}
	s.write(w, rep)
}

func injectedReply(status int) *reply {
	switch {
	case status < 400:
		return &reply{status: http.StatusOK, body: envelope{Success: true, Errors: []apiError{}, Messages: []string{},
			Result: map[string]string{"id": randomHex(16)}}}
	case status == http.StatusTooManyRequests:
		rep := failed(status, apiError{Code: 971, Message: "Please wait and consider throttling your request speed"})
		rep.header = http.Header{"Retry-After": {"1"}}
		return rep
	case status >= 500:
		return failed(status, apiError{Code: 10002, Message: "An unknown error has occurred"})
	case status == http.StatusForbidden || status == http.StatusUnauthorized:
		return failed(status, apiError{Code: 10000, Message: "Authentication error"})
	}
	return failed(status, apiError{Code: 1012, Message: "Request is invalid"})
}

// handle answers a request in Cloudflare's order: route, token, zone,
// body, objects, bucket.
func (s *Server) handle(r *http.Request, body []byte) *reply {
	zone, ok := route(r.URL.Path)
	if !ok {
		return failed(http.StatusNotFound, apiError{Code: 7000, Message: "No route for that URI"})
	}
	if r.Method != http.MethodPost {
		rep := failed(http.StatusMethodNotAllowed, apiError{Code: 10405, Message: "Method " + r.Method + " not allowed for this path"})
		rep.header = http.Header{"Allow": {http.MethodPost}}
		return rep
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" || strings.ContainsAny(token, " \t") {
		return failed(http.StatusBadRequest, apiError{Code: 6003, Message: "Invalid request headers",
			ErrorChain: []apiError{{Code: 6111, Message: "Invalid format for Authorization header"}}})
	}
	if token != s.cfg.token {
		return failed(http.StatusForbidden, apiError{Code: 10000, Message: "Authentication error"})
	}
	if zone != s.cfg.zone {
		status := http.StatusNotFound
		if !zoneID.MatchString(zone) {
			status = http.StatusBadRequest
		}
		return failed(status, apiError{Code: 7003, Message: "Could not route to " + r.URL.Path + ", perhaps your object identifier is invalid?"})
	}
	p, rep := s.parse(body)
	if rep != nil {
		return rep
	}
	if rep := s.checkObjects(p); rep != nil {
		return rep
	}
	return s.accept(p)
}

// route returns the zone of a purge_cache path.
func route(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/client/v4/zones/")
	if !ok {
		return "", false
	}
	zone, ok := strings.CutSuffix(rest, "/purge_cache")
	if !ok || zone == "" || strings.Contains(zone, "/") {
		return "", false
	}
	return zone, true
}

// purgeBody is the request body, each variant's field.
type purgeBody struct {
	Files           []json.RawMessage `json:"files"`
	Tags            []string          `json:"tags"`
	Hosts           []string          `json:"hosts"`
	Prefixes        []string          `json:"prefixes"`
	PurgeEverything *bool             `json:"purge_everything"`

	files []string // the URLs of Files
}

// fileURLs returns the URLs of Files, string or {"url":...} objects.
func (p *purgeBody) fileURLs() []string {
	var out []string
	for _, raw := range p.Files {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			out = append(out, s)
			continue
		}
		var o struct {
			URL string `json:"url"`
		}
		if json.Unmarshal(raw, &o) == nil {
			out = append(out, o.URL)
		}
	}
	return out
}

const oneOf = `Request must contain exactly one of "purge_everything", "files", "tags", "hosts" or "prefixes"`

// parse checks the body's shape.
func (s *Server) parse(body []byte) (purgeBody, *reply) {
	var p purgeBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, failed(http.StatusBadRequest, apiError{Code: 1012, Message: "Request body is not valid: " + err.Error()})
	}
	if dec.More() {
		return p, failed(http.StatusBadRequest, apiError{Code: 1012, Message: "Request body is not valid: data after the JSON object"})
	}
	kinds := 0
	for _, n := range []bool{p.Files != nil, p.Tags != nil, p.Hosts != nil, p.Prefixes != nil, p.PurgeEverything != nil} {
		if n {
			kinds++
		}
	}
	if kinds != 1 {
		return p, failed(http.StatusBadRequest, apiError{Code: 1012, Message: oneOf})
	}
	if p.PurgeEverything != nil && !*p.PurgeEverything {
		return p, failed(http.StatusBadRequest, apiError{Code: 1012, Message: `"purge_everything" must be true`})
	}
	for _, f := range p.Files {
		var o struct {
			URL     string            `json:"url"`
			Headers map[string]string `json:"headers"`
		}
		var str string
		if json.Unmarshal(f, &str) != nil {
			d := json.NewDecoder(bytes.NewReader(f))
			d.DisallowUnknownFields()
			if d.Decode(&o) != nil || o.URL == "" {
				return p, failed(http.StatusBadRequest, apiError{Code: 1012, Message: `"files" holds URLs, or objects with "url" and "headers"`})
			}
		}
	}
	p.files = p.fileURLs()
	max, n := s.cfg.maxItems, len(p.Tags)+len(p.Hosts)+len(p.Prefixes)
	if p.Files != nil {
		max, n = s.cfg.maxFiles, len(p.files)
	}
	if p.PurgeEverything == nil && n == 0 {
		return p, failed(http.StatusBadRequest, apiError{Code: 1012, Message: oneOf + ", not empty"})
	}
	if n > max {
		return p, failed(http.StatusBadRequest, apiError{Code: 1013, Message: fmt.Sprintf("Too many items in one purge request: %d, at most %d", n, max)})
	}
	if s.cfg.noTags && (p.Tags != nil || p.Hosts != nil || p.Prefixes != nil) {
		return p, failed(http.StatusBadRequest, apiError{Code: 1107, Message: "Only enterprise zones can purge by tag."})
	}
	return p, nil
}

// checkObjects refuses a request with an object Cloudflare would refuse.
func (s *Server) checkObjects(p purgeBody) *reply {
	var errs []apiError
	s.mu.Lock()
	for _, u := range p.files {
		if s.refused[u] || !absolute(u) {
			errs = append(errs, apiError{Code: CodeRefusedURL, Message: "Invalid or refused URL: " + u})
		}
	}
	s.mu.Unlock()
	for _, t := range p.Tags {
		switch {
		case t == "" || len(t) > 1024:
			errs = append(errs, apiError{Code: 1100, Message: "Tag exceeds maximum length of 1024 characters: " + t})
		case strings.IndexFunc(t, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
			errs = append(errs, apiError{Code: 1315, Message: "Non-printable characters are forbidden in tags: " + t})
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return failed(http.StatusBadRequest, append([]apiError{{Code: 1016, Message: "One or more cache purge errors"}}, errs...)...)
}

// absolute reports whether u is an absolute http or https URL with a host.
func absolute(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != "" && p.User == nil
}

// accept spends the request's tokens and records the purge, or answers
// 429: a request of files spends one URL token per URL, and no token of
// the request bucket, as Cloudflare's limits for single-file purges are in
// URLs a second; any other request spends one token of the request bucket.
func (s *Server) accept(p purgeBody) *reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.now()
	if d := now.Sub(s.last); d > 0 {
		s.tokens = math.Min(float64(s.cfg.burst), s.tokens+d.Seconds()*s.cfg.perSecond)
		s.urlTokens = math.Min(s.cfg.urlsPerSecond, s.urlTokens+d.Seconds()*s.cfg.urlsPerSecond)
		s.last = now
	}
	tokens, need, perSecond := &s.tokens, 1.0, s.cfg.perSecond
	if p.Files != nil {
		tokens, need, perSecond = &s.urlTokens, float64(len(p.files)), s.cfg.urlsPerSecond
	}
	if *tokens+1e-9 < need {
		wait := (need - *tokens) / perSecond
		rep := failed(http.StatusTooManyRequests, apiError{Code: 971, Message: "Please wait and consider throttling your request speed"})
		rep.header = http.Header{"Retry-After": {strconv.Itoa(int(math.Ceil(wait)))}}
		return rep
	}
	*tokens = math.Max(0, *tokens-need)
	id := randomHex(16)
	s.purges = append(s.purges, Purge{ID: id, Files: p.files, Tags: p.Tags, Hosts: p.Hosts, Prefixes: p.Prefixes,
		Everything: p.PurgeEverything != nil, At: now})
	return &reply{status: http.StatusOK, body: envelope{Success: true, Errors: []apiError{}, Messages: []string{},
		Result: map[string]string{"id": id}}}
}

// write sends rep and counts it.
func (s *Server) write(w http.ResponseWriter, rep *reply) {
	if rep.body.Errors == nil {
		rep.body.Errors = []apiError{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rep.body); err != nil {
		panic("cloudflaretest: encoding a response: " + err.Error())
	}
	for k, vs := range rep.header {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", "application/json")
	s.mu.Lock()
	s.responses[rep.status]++
	s.mu.Unlock()
	w.WriteHeader(rep.status)
	_, _ = w.Write(buf.Bytes())
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// randomToken returns a 40-character token like Cloudflare's.
func randomToken() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
	b := make([]byte, 40)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
