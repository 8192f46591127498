package akamaitest

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gormpurge/gormpurge/backends/akamai"
	"github.com/gormpurge/gormpurge/backends/internal/fakeapi"
)

// Server is a fake Fast Purge v3 API on a local TLS port: it checks EdgeGrid
// signatures, validates requests as Akamai does, spends the account's token
// buckets and records what it accepted. Create it with [NewServer] and stop
// it with [Server.Close]. It is safe for concurrent use.
type Server struct {
	cfg   config
	ts    *httptest.Server
	creds akamai.Credentials
	once  sync.Once

	mu         sync.Mutex
	requests   *bucket
	objects    map[akamai.Kind]*bucket
	purges     []Purge
	responses  map[int]int
	failures   fakeapi.Failures
	hook       func(Call) (int, bool)
	seq        int
	nonces     map[string]time.Time // nonce -> when it may be forgotten (WithNow clock)
	noncePrune int                  // len(nonces) at which expired ones are dropped
}

// maxReadBody is the most of a request body the fake reads. A larger body
// is answered with 413 all the same; only the signature's max_body bytes
// matter for the content hash.
const maxReadBody = 4 << 20

// NewServer starts a fake Fast Purge API on an httptest TLS server at
// 127.0.0.1 with fresh random credentials. Call [Server.Close] when done,
// typically with t.Cleanup(srv.Close). Like its options, it panics on
// misuse, as httptest does: here, if an option is nil.
func NewServer(opts ...Option) *Server {
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			panic("akamaitest: NewServer: an Option is nil: remove it, or pass one made by a With... function")
		}
		o(&cfg)
	}
	s := &Server{
		cfg:        cfg,
		responses:  map[int]int{},
		nonces:     map[string]time.Time{},
		noncePrune: minNoncePrune,
	}
	s.resetBucketsLocked() // nobody else sees s yet
	s.ts = fakeapi.NewUnstarted(s.serveHTTP)
	s.creds = akamai.Credentials{
		Host:         s.ts.Listener.Addr().String(),
		ClientToken:  "akab-" + randomString(lowerAlnum, 16) + "-" + randomString(lowerAlnum, 16),
		ClientSecret: randomSecret(),
		AccessToken:  "akab-" + randomString(lowerAlnum, 16) + "-" + randomString(lowerAlnum, 16),
	}
	if c := cfg.creds; c != nil {
		s.creds.ClientToken, s.creds.ClientSecret, s.creds.AccessToken = c.ClientToken, c.ClientSecret, c.AccessToken
	}
	s.ts.StartTLS()
	return s
}

const lowerAlnum = "abcdefghijklmnopqrstuvwxyz0123456789"

func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// Close shuts the server down and closes the connections of [Server.Client].
// It may be called more than once.
func (s *Server) Close() { s.once.Do(s.ts.Close) }

// URL returns the base URL, such as "https://127.0.0.1:41234", with no
// trailing slash: append [akamai.Path].
func (s *Server) URL() string { return s.ts.URL }

// Credentials returns the API client's values: Host is "127.0.0.1:PORT"
// and the tokens and secret are random, fresh for each server.
func (s *Server) Credentials() akamai.Credentials { return s.creds }

// Client returns an HTTP client that trusts the server's certificate.
// [Server.Close] closes its idle connections.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// WriteEdgerc writes an .edgerc file at path with one section (named
// section, or "default" if empty) holding the server's host, client_token,
// client_secret and access_token, plus max_body and any headers_to_sign, so
// that edgegrid.WithFile and WithSection load the server's credentials. The
// file is created or truncated, with mode 0600.
func (s *Server) WriteEdgerc(path, section string) error {
	if section == "" {
		section = "default"
	}
	if strings.ContainsAny(section, "[]\r\n") {
		return fmt.Errorf("akamaitest: WriteEdgerc: section name %q must not contain brackets or line breaks", section)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[%s]\n", section)
	fmt.Fprintf(&b, "host = %s\n", s.creds.Host)
	fmt.Fprintf(&b, "client_token = %s\n", s.creds.ClientToken)
	fmt.Fprintf(&b, "client_secret = %s\n", s.creds.ClientSecret)
	fmt.Fprintf(&b, "access_token = %s\n", s.creds.AccessToken)
	fmt.Fprintf(&b, "max_body = %d\n", s.cfg.maxBody)
	if len(s.cfg.headersToSign) > 0 {
		names := make([]string, len(s.cfg.headersToSign))
		for i, n := range s.cfg.headersToSign {
			names[i] = textproto.CanonicalMIMEHeaderKey(n)
		}
		fmt.Fprintf(&b, "headers_to_sign = %s\n", strings.Join(names, ","))
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("akamaitest: WriteEdgerc: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return fmt.Errorf("akamaitest: WriteEdgerc: %w", err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		_ = f.Close()
		return fmt.Errorf("akamaitest: WriteEdgerc: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("akamaitest: WriteEdgerc: %w", err)
	}
	return nil
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(max(maxReadBody, s.cfg.maxBody+1))))
	if err != nil {
		return // the client went away
	}
	var answer time.Duration
	if f := s.cfg.latency; f != nil {
		var arrive time.Duration
		arrive, answer = f()
		if s.cfg.clock.Sleep(r.Context(), arrive) != nil {
			return // the client went away before the request arrived
		}
	}
	rep := s.authenticate(r, body)
	if rep == nil {
		rep = s.handle(r, body)
	}
	if s.cfg.clock.Sleep(r.Context(), answer) != nil {
		return
	}
	s.write(w, rep)
}

// handle answers a correctly signed request, in Akamai's order: injected
// failures, 404 unknown path, 405 not POST, 415 not JSON, 413 too large, 400
// invalid body, 403 unauthorised host, 429 empty bucket, 201.
func (s *Server) handle(r *http.Request, body []byte) *reply {
	rt, routed := parseRoute(r.URL.Path)
	var (
		pb  purgeBody
		bad *badRequest
	)
	if routed {
		pb, bad = parseBody(rt.kind, body)
	}
	call := Call{
		Method:  r.Method,
		Path:    r.URL.Path,
		Action:  rt.action,
		Network: rt.network,
		Kind:    rt.kind,
		Header:  r.Header.Clone(),
		Body:    body,
	}
	if routed && bad == nil {
		call.Objects = pb.objects
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
	if injected {
		return s.injected(r, call, status)
	}

	var rep *reply
	switch {
	case !routed:
		rep = problemReply(http.StatusNotFound, "", "not found",
			"No Fast Purge endpoint at "+r.URL.Path+"; use /ccu/v3/{invalidate|delete}/{url|tag|cpcode}[/{staging|production}]")
	case r.Method != http.MethodPost:
		rep = problemReply(http.StatusMethodNotAllowed, rt.kind, "method not allowed", r.Method+" is not allowed; use POST")
		rep.header = http.Header{"Allow": {http.MethodPost}}
	case !isJSON(r.Header.Get("Content-Type")):
		rep = problemReply(http.StatusUnsupportedMediaType, rt.kind, "unsupported media type",
			fmt.Sprintf("Content-Type %q is not supported; use application/json", r.Header.Get("Content-Type")))
	case len(body) > akamai.MaxBodyBytes:
		rep = problemReply(http.StatusRequestEntityTooLarge, rt.kind, "request entity too large",
			fmt.Sprintf("The request body is over the limit of %d bytes", akamai.MaxBodyBytes))
	case bad != nil:
		rep = problemReply(http.StatusBadRequest, rt.kind, bad.title, bad.detail)
	default:
		if shown, ok := s.cfg.unauthorized(rt.kind, pb); ok {
			rep = problemReply(http.StatusForbidden, rt.kind, "unauthorized arl", shown)
		} else {
			return s.accept(rt, pb, len(body))
		}
	}
	return s.withRateHeaders(rep, rt.kind)
}

// withRateHeaders adds the X-Ratelimit-* headers of the request bucket and
// kind's bucket to rep.
func (s *Server) withRateHeaders(rep *reply, kind akamai.Kind) *reply {
	h := s.rateHeaders(kind)
	for k, vs := range rep.header {
		h[k] = vs
	}
	rep.header = h
	return rep
}

// accept spends one request token and one token per object, all or nothing,
// and records the purge; or answers 429 and spends nothing.
func (s *Server) accept(rt route, pb purgeBody, size int) *reply {
	n := len(pb.objects)
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.rateHeadersLocked(rt.kind) // refills both buckets
	obj := s.objects[rt.kind]
	if !s.requests.has(1) {
		return tooMany(s.requests, "", rt.kind, 1, h)
	}
	if !obj.has(n) {
		return tooMany(obj, rt.kind, rt.kind, n, h)
	}
	s.requests.take(1)
	obj.take(n)
	id := newID(rt.kind)
	s.purges = append(s.purges, Purge{
		Action:    rt.action,
		Network:   rt.network,
		Kind:      rt.kind,
		Hostname:  pb.hostname,
		Objects:   pb.objects,
		PurgeID:   id,
		SupportID: id,
		BodyBytes: size,
		At:        s.cfg.clock.Now(),
	})
	return &reply{
		status: http.StatusCreated,
		header: s.rateHeadersLocked(rt.kind),
		body: &acceptedBody{
			HTTPStatus:       http.StatusCreated,
			EstimatedSeconds: 5,
			PurgeID:          id,
			SupportID:        id,
			Detail:           "Request accepted",
		},
	}
}

// injectedTexts are the title and detail of an injected failure by status.
var injectedTexts = map[int][2]string{
	http.StatusBadRequest:            {"bad request", "The request could not be processed"},
	http.StatusNotFound:              {"not found", "The requested resource was not found"},
	http.StatusRequestEntityTooLarge: {"request entity too large", fmt.Sprintf("The request body is over the limit of %d bytes", akamai.MaxBodyBytes)},
	http.StatusUnsupportedMediaType:  {"unsupported media type", "Use application/json"},
	http.StatusInternalServerError:   {"internal error", "If problem persists over multiple requests, please contact Customer Care"},
	http.StatusBadGateway:            {"bad gateway", "Please retry the request"},
	http.StatusServiceUnavailable:    {"service unavailable", "The service is temporarily unavailable; please retry the request"},
	http.StatusGatewayTimeout:        {"gateway timeout", "The request timed out; please retry the request"},
	http.StatusInsufficientStorage:   {"insufficient storage", "The purge queue is full; please retry the request later"},
}

// injected answers call with status, as FailNext or a Respond hook asked.
func (s *Server) injected(r *http.Request, call Call, status int) *reply {
	if status < 200 || status > 599 {
		status = http.StatusInternalServerError // a hook's mistake
	}
	kind := call.Kind
	switch {
	case status < 400:
		id := newID(kind)
		return s.withRateHeaders(&reply{status: status, body: &acceptedBody{
			HTTPStatus: status, EstimatedSeconds: 5, PurgeID: id, SupportID: id, Detail: "Request accepted",
		}}, kind)
	case status == http.StatusUnauthorized:
		return s.gatewayReply(r, status, "The signature does not match")
	case status == http.StatusTooManyRequests:
		// The request bucket is said to be empty, and back within one
		// token's time.
		s.mu.Lock()
		h := s.rateHeadersLocked(kind)
		empty := *s.requests
		s.mu.Unlock()
		empty.tokens = 0
		h.Set("X-Ratelimit-Remaining", "0")
		h.Set("X-Ratelimit-Seconds-To-Refresh-Limit", secondsFor(1, empty.limit.PerSecond))
		return tooMany(&empty, "", kind, 1, h)
	case status == http.StatusForbidden:
		detail := ""
		if call.Kind == akamai.KindURL && len(call.Objects) > 0 {
			detail = call.Objects[0]
		}
		return s.withRateHeaders(problemReply(status, kind, "unauthorized arl", detail), kind)
	}
	texts, ok := injectedTexts[status]
	if !ok {
		texts = [2]string{strings.ToLower(http.StatusText(status)), ""}
	}
	return s.withRateHeaders(problemReply(status, kind, texts[0], texts[1]), kind)
}
