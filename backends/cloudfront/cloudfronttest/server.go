package cloudfronttest

import (
	"context"
	"crypto/rand"
	"encoding/xml"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// APIVersion is the version of the CloudFront API the fake serves, the
// first segment of every path.
const APIVersion = "2020-05-31"

// Namespace is the XML namespace of CloudFront's request and answer
// bodies.
const Namespace = "http://cloudfront.amazonaws.com/doc/" + APIVersion + "/"

// SigningRegion is the region CloudFront requests are normally signed for,
// and the region of [Server.AWSConfig]; the fake accepts a signature for
// any region, as the SDK signs with the configured region when given an
// endpoint.
const SigningRegion = "us-east-1"

// DefaultDistribution is the id of the fake's distribution when
// [WithDistributions] is not given (AWS's documentation example id).
const DefaultDistribution = "EDFDVBD6EXAMPLE"

// Documented limits the fake enforces, as CloudFront does.
const (
	// maxPathsInProgress and maxWildcardsInProgress: "up to 3,000 files
	// per distribution in progress at one time" and "up to 15 invalidation
	// paths in progress" with the * wildcard.
	// https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/InvalidationLimits.html
	maxPathsInProgress     = 3000
	maxWildcardsInProgress = 15
	// maxPathLength: "The maximum length of a path is 4,000 characters."
	// https://github.com/awsdocs/amazon-cloudfront-developer-guide/blob/main/doc_source/Invalidation.md
	maxPathLength = 4000
	// maxTagLength: "The maximum length of a tag is 256 characters."
	// https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/invalidation-specifying-tags.html
	maxTagLength = 256
	// maxBody bounds the body the fake reads.
	maxBody = 4 << 20
)

// Invalidation is one invalidation the fake created.
type Invalidation struct {
	ID              string
	Distribution    string
	CallerReference string
	// Items are the invalidation items as sent: paths, and "#tag" items.
	Items []string
	// Created is when it was created; Completes when its status turns
	// from InProgress to Completed.
	Created, Completes time.Time
}

// Status returns "InProgress" or "Completed" at t.
func (i Invalidation) Status(t time.Time) string {
	if t.Before(i.Completes) {
		return "InProgress"
	}
	return "Completed"
}

// Server is a fake of the CloudFront API's invalidations on a local TLS
// port: CreateInvalidation and GetInvalidation. It verifies AWS Signature
// Version 4 with its credentials, checks bodies and CallerReferences as
// CloudFront documents them, enforces the in-progress limits, completes
// invalidations after a delay, and records what it accepted. Create it
// with [NewServer]; it is safe for concurrent use.
type Server struct {
	cfg   config
	ts    *httptest.Server
	creds aws.Credentials
	once  sync.Once

	mu            sync.Mutex
	invalidations []*Invalidation
	byRef         map[string]*Invalidation // distribution + "\x00" + reference
	ignored       []string
	faults        []fault
	held          *held
	calls         map[string]int
	maxPaths      int // high-water marks of the in-progress counts
	maxWild       int
}

type fault struct {
	op            string
	n             int
	status        int
	code, message string
}

// Operations the fake serves, for [Server.FailNextOn] and [Server.Calls].
const (
	OpCreateInvalidation = "CreateInvalidation"
	OpGetInvalidation    = "GetInvalidation"
)

type held struct {
	arrived chan struct{}
	release chan struct{}
	once    sync.Once // closes release
	arrive  sync.Once // closes arrived
}

// NewServer starts a fake CloudFront API at 127.0.0.1 with fresh random
// credentials (or those of [WithCredentials]). Stop it with
// [Server.Close], typically with t.Cleanup(srv.Close). Like its options,
// it panics on misuse, as httptest does: here, if an option is nil.
func NewServer(opts ...Option) *Server {
	cfg := config{distributions: []string{DefaultDistribution}, delay: DefaultCompletionDelay,
		maxPaths: maxPathsInProgress, maxWildcards: maxWildcardsInProgress}
	for _, o := range opts {
		if o == nil {
			panic("cloudfronttest: NewServer: an Option is nil: remove it, or pass one made by a With... function")
		}
		o(&cfg)
	}
	s := &Server{cfg: cfg, byRef: map[string]*Invalidation{}, calls: map[string]int{}}
	s.creds = aws.Credentials{AccessKeyID: "AKIA" + randomString(16), SecretAccessKey: randomString(40), Source: "cloudfronttest"}
	if cfg.creds != nil {
		s.creds = *cfg.creds
	}
	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	s.ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.ts.StartTLS()
	return s
}

const upperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = upperAlnum[int(b[i])%len(upperAlnum)]
	}
	return string(b)
}

// Close shuts the server down and closes the connections of
// [Server.Client]. It releases held requests first. It may be called more
// than once.
func (s *Server) Close() {
	s.once.Do(func() {
		s.mu.Lock()
		if s.held != nil {
			s.held.once.Do(func() { close(s.held.release) })
			s.held = nil
		}
		s.mu.Unlock()
		s.ts.Close()
	})
}

// URL returns the base URL, such as "https://127.0.0.1:41234", to give to
// cloudfront.WithEndpoint.
func (s *Server) URL() string { return s.ts.URL }

// Client returns an HTTP client that trusts the server's certificate.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// Credentials returns the credentials requests must be signed with.
func (s *Server) Credentials() aws.Credentials { return s.creds }

// Distribution returns the id of the first distribution.
func (s *Server) Distribution() string { return s.cfg.distributions[0] }

// AWSConfig returns an AWS configuration for the fake: its credentials,
// region us-east-1 and HTTP client. Give it to cloudfront.WithAWSConfig
// with cloudfront.WithEndpoint(s.URL()).
func (s *Server) AWSConfig() aws.Config {
	creds := s.creds
	return aws.Config{
		Region:      SigningRegion,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
		HTTPClient:  s.Client(),
	}
}

// FailNext makes the next times CreateInvalidation requests that pass the
// signature check and name a known distribution fail with status and
// CloudFront's error XML, before the body is checked: they create nothing
// and are counted only in [Server.Calls]. It is [Server.FailNextOn] for
// [OpCreateInvalidation]. The error code is the one CloudFront answers
// with that status: 400 InvalidArgument, 403 AccessDenied, 404
// NoSuchDistribution, 429 Throttling, 500 InternalError, another 5xx
// ServiceUnavailable, another 4xx InvalidArgument; use
// [Server.FailNextCode] for another code, such as Throttling or
// TooManyInvalidationsInProgress (both 400 at CloudFront). Calls queue up:
// FailNext(500, 1) then FailNext(503, 2) fails one request with 500, then
// two with 503. It panics unless status is between 400 and 599; times of
// 0 or less does nothing.
func (s *Server) FailNext(status, times int) {
	if status < 400 || status > 599 {
		panic(fmt.Sprintf("cloudfronttest: FailNext(%d, %d): the status must be between 400 and 599", status, times))
	}
	s.FailNextOn(OpCreateInvalidation, status, times)
}

// FailNextCode is [Server.FailNext] with CloudFront's error code and
// message chosen by the test, such as (400, 1, "Throttling", "Rate
// exceeded") or (400, 1, "TooManyInvalidationsInProgress", "..."). It
// panics unless status is between 400 and 599 and code is not empty.
func (s *Server) FailNextCode(status, times int, code, message string) {
	if status < 400 || status > 599 || code == "" {
		panic(fmt.Sprintf("cloudfronttest: FailNextCode(%d, %d, %q, ...): want a status between 400 and 599 and an error code", status, times, code))
	}
	s.FailNextCodeOn(OpCreateInvalidation, status, times, code, message)
}

// FailNextOn is [Server.FailNext] for operation op, [OpCreateInvalidation]
// or [OpGetInvalidation]: FailNextOn(OpGetInvalidation, 503, 1) makes the
// next status check fail, as when a purge waits for the in-progress
// limits. A 404 of GetInvalidation is NoSuchInvalidation. Each operation
// has its own queue. It panics on an unknown op or a status outside 400 to
// 599.
func (s *Server) FailNextOn(op string, status, times int) {
	if status < 400 || status > 599 {
		panic(fmt.Sprintf("cloudfronttest: FailNextOn(%q, %d, %d): the status must be between 400 and 599", op, status, times))
	}
	code, message := defaultFault(status)
	if op == OpGetInvalidation && status == http.StatusNotFound {
		code, message = "NoSuchInvalidation", "The specified invalidation does not exist."
	}
	s.failNext(op, status, times, code, message)
}

// FailNextCodeOn is [Server.FailNextCode] for operation op, such as
// (OpGetInvalidation, 403, 1, "AccessDenied", "...") for credentials
// without cloudfront:GetInvalidation. It panics on an unknown op, a status
// outside 400 to 599 or an empty code.
func (s *Server) FailNextCodeOn(op string, status, times int, code, message string) {
	if status < 400 || status > 599 || code == "" {
		panic(fmt.Sprintf("cloudfronttest: FailNextCodeOn(%q, %d, %d, %q, ...): want a status between 400 and 599 and an error code", op, status, times, code))
	}
	s.failNext(op, status, times, code, message)
}

func (s *Server) failNext(op string, status, times int, code, message string) {
	if op != OpCreateInvalidation && op != OpGetInvalidation {
		panic(fmt.Sprintf("cloudfronttest: %q is not an operation of the fake: want cloudfronttest.OpCreateInvalidation or OpGetInvalidation", op))
	}
	if times <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{op: op, n: times, status: status, code: code, message: message})
}

// nextFaultLocked takes the next fault queued for op, if any.
func (s *Server) nextFaultLocked(op string) (fault, bool) {
	for i := range s.faults {
		f := &s.faults[i]
		if f.op != op {
			continue
		}
		out := *f
		f.n--
		if f.n <= 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		return out, true
	}
	return fault{}, false
}

// defaultFault returns the error code and message CloudFront answers with
// status.
func defaultFault(status int) (code, message string) {
	switch {
	case status == http.StatusForbidden:
		return "AccessDenied", "Access denied"
	case status == http.StatusNotFound:
		return "NoSuchDistribution", "The specified distribution does not exist."
	case status == http.StatusTooManyRequests:
		return "Throttling", "Rate exceeded"
	case status == http.StatusInternalServerError:
		return "InternalError", "We encountered an internal error. Please try again."
	case status >= 500:
		return "ServiceUnavailable", "CloudFront is unavailable."
	default:
		return "InvalidArgument", "The argument is invalid."
	}
}

// Hold makes the server hold every later CreateInvalidation, after its
// signature check, without answering, until release is called or the
// client gives the request up. arrived is closed when the first held
// request arrives. It matches backendtest.Harness.Hold.
func (s *Server) Hold() (arrived <-chan struct{}, release func()) {
	h := &held{arrived: make(chan struct{}), release: make(chan struct{})}
	s.mu.Lock()
	s.held = h
	s.mu.Unlock()
	return h.arrived, func() {
		h.once.Do(func() { close(h.release) })
		s.mu.Lock()
		if s.held == h {
			s.held = nil
		}
		s.mu.Unlock()
	}
}

// Invalidations returns every invalidation the server created, in order.
func (s *Server) Invalidations() []Invalidation {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Invalidation, len(s.invalidations))
	for i, inv := range s.invalidations {
		out[i] = *inv
		out[i].Items = slices.Clone(inv.Items)
	}
	return out
}

// Paths returns the paths of every invalidation created, in order,
// duplicates kept; tag items are in [Server.Tags].
func (s *Server) Paths() []string {
	var out []string
	for _, inv := range s.Invalidations() {
		for _, it := range inv.Items {
			if strings.HasPrefix(it, "/") {
				out = append(out, it)
			}
		}
	}
	return out
}

// Tags returns the tags (without "#") of every invalidation created.
func (s *Server) Tags() []string {
	var out []string
	for _, inv := range s.Invalidations() {
		for _, it := range inv.Items {
			if t, ok := strings.CutPrefix(it, "#"); ok {
				out = append(out, t)
			}
		}
	}
	return out
}

// Ignored returns the CallerReferences that were sent again with the same
// paths: CloudFront answers them with the earlier invalidation and
// invalidates nothing, which loses a purge when the earlier one has
// completed.
func (s *Server) Ignored() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ignored)
}

// Calls returns how many requests of operation op ("CreateInvalidation",
// "GetInvalidation") passed the signature check.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// MaxInProgress returns the most individual and wildcard paths that were
// in progress at once on one distribution.
func (s *Server) MaxInProgress() (paths, wildcards int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxPaths, s.maxWild
}

// Reset forgets every invalidation, record and fault (the in-progress
// limits are free again), and releases a Hold.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalidations, s.byRef, s.ignored, s.faults = nil, map[string]*Invalidation{}, nil, nil
	s.calls, s.maxPaths, s.maxWild = map[string]int{}, 0, 0
	if s.held != nil {
		s.held.once.Do(func() { close(s.held.release) })
		s.held = nil
	}
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return
	}
	if e := s.verifySigV4(r, body, time.Now()); e != nil {
		writeError(w, e.status, e.code, e.message)
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch {
	case r.Method == http.MethodPost && len(parts) == 4 && parts[0] == APIVersion && parts[1] == "distribution" && parts[3] == "invalidation":
		s.create(w, r, parts[2], body)
	case r.Method == http.MethodGet && len(parts) == 5 && parts[0] == APIVersion && parts[1] == "distribution" && parts[3] == "invalidation":
		s.get(w, parts[2], parts[4])
	default:
		writeError(w, http.StatusNotFound, "InvalidAction", "The action or operation requested is not supported by the fake.")
	}
}

func (s *Server) hasDistribution(id string) bool { return slices.Contains(s.cfg.distributions, id) }

// invalidationBatch is CreateInvalidation's request body.
type invalidationBatch struct {
	XMLName         xml.Name
	CallerReference *string `xml:"CallerReference"`
	Paths           *struct {
		Quantity *int `xml:"Quantity"`
		Items    *struct {
			Path []string `xml:"Path"`
		} `xml:"Items"`
	} `xml:"Paths"`
}

const invalidPaths = "Your request contains one or more invalid invalidation paths."

func (s *Server) create(w http.ResponseWriter, r *http.Request, dist string, body []byte) {
	s.mu.Lock()
	s.calls["CreateInvalidation"]++
	h := s.held
	s.mu.Unlock()
	if h != nil {
		h.arrive.Do(func() { close(h.arrived) })
		select {
		case <-h.release:
		case <-r.Context().Done():
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.hasDistribution(dist) {
		writeError(w, http.StatusNotFound, "NoSuchDistribution", "The specified distribution does not exist.")
		return
	}
	if f, ok := s.nextFaultLocked(OpCreateInvalidation); ok {
		writeError(w, f.status, f.code, f.message)
		return
	}
	if len(body) == 0 {
		writeError(w, http.StatusBadRequest, "MissingBody", "This operation requires a body. Ensure that the body is present and the Content-Type header is set.")
		return
	}
	var b invalidationBatch
	if err := xml.Unmarshal(body, &b); err != nil || b.XMLName.Local != "InvalidationBatch" || b.XMLName.Space != Namespace {
		writeError(w, http.StatusBadRequest, "MalformedInput", "Could not parse the request body as an InvalidationBatch in namespace "+Namespace+".")
		return
	}
	if b.CallerReference == nil || *b.CallerReference == "" || b.Paths == nil || b.Paths.Quantity == nil {
		writeError(w, http.StatusBadRequest, "InvalidArgument", "CallerReference, Paths and Paths/Quantity are required.")
		return
	}
	var items []string
	if b.Paths.Items != nil {
		items = b.Paths.Items.Path
	}
	if *b.Paths.Quantity != len(items) {
		writeError(w, http.StatusBadRequest, "InconsistentQuantities", "The value of Quantity and the size of Items don't match.")
		return
	}
	if len(items) == 0 {
		writeError(w, http.StatusBadRequest, "InvalidArgument", invalidPaths)
		return
	}
	paths, wild := 0, 0
	for _, it := range items {
		if msg := s.checkItem(it); msg != "" {
			writeError(w, http.StatusBadRequest, "InvalidArgument", msg)
			return
		}
		if isWildcard(it) {
			wild++
		} else {
			paths++
		}
	}
	if paths > s.cfg.maxPaths || wild > s.cfg.maxWildcards {
		writeError(w, http.StatusRequestEntityTooLarge, "BatchTooLarge", "Invalidation batch specified is too large.")
		return
	}
	ref := dist + "\x00" + *b.CallerReference
	if prev, ok := s.byRef[ref]; ok {
		if !slices.Equal(sortedCopy(prev.Items), sortedCopy(items)) {
			writeError(w, http.StatusConflict, "InvalidationBatchAlreadyExists", "The CallerReference was sent before with other paths.")
			return
		}
		s.ignored = append(s.ignored, *b.CallerReference)
		writeInvalidation(w, http.StatusCreated, s.location(dist, prev.ID), prev, time.Now())
		return
	}
	now := time.Now()
	inPaths, inWild := s.inProgressLocked(dist, now)
	if inPaths+paths > s.cfg.maxPaths {
		writeError(w, http.StatusBadRequest, "TooManyInvalidationsInProgress", "Processing your request will cause you to exceed the maximum number of in-progress individual path invalidations.")
		return
	}
	if inWild+wild > s.cfg.maxWildcards {
		writeError(w, http.StatusBadRequest, "TooManyInvalidationsInProgress", "Processing your request will cause you to exceed the maximum number of in-progress wildcard invalidations.")
		return
	}
	inv := &Invalidation{ID: "I" + randomString(13), Distribution: dist, CallerReference: *b.CallerReference,
		Items: slices.Clone(items), Created: now, Completes: now.Add(s.cfg.delay)}
	s.invalidations = append(s.invalidations, inv)
	s.byRef[ref] = inv
	if s.cfg.delay > 0 {
		s.maxPaths, s.maxWild = max(s.maxPaths, inPaths+paths), max(s.maxWild, inWild+wild)
	}
	writeInvalidation(w, http.StatusCreated, s.location(dist, inv.ID), inv, now)
}

// checkItem returns why CloudFront refuses an invalidation item, or "".
func (s *Server) checkItem(it string) string {
	if t, ok := strings.CutPrefix(it, "#"); ok && s.cfg.cacheTags {
		if t == "" || len(t) > maxTagLength || strings.IndexFunc(t, func(r rune) bool { return r < '!' || r > '~' || r == ',' }) >= 0 {
			return "Your request contains one or more invalid cache tags."
		}
		return ""
	}
	if !strings.HasPrefix(it, "/") || len(it) > maxPathLength {
		return invalidPaths
	}
	if i := strings.IndexByte(it, '*'); i >= 0 && i != len(it)-1 {
		return invalidPaths
	}
	for i := 0; i < len(it); i++ {
		if it[i] <= ' ' || it[i] >= 0x7f {
			return invalidPaths // unsafe and non-ASCII characters must be URL-encoded
		}
	}
	return ""
}

// isWildcard reports whether an item counts against the wildcard limit: a
// path ending in "*". Cache tags ("#tag") have no wildcard.
func isWildcard(item string) bool {
	return strings.HasPrefix(item, "/") && strings.HasSuffix(item, "*")
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// inProgressLocked counts the individual and wildcard paths of dist's
// invalidations in progress at now.
func (s *Server) inProgressLocked(dist string, now time.Time) (paths, wild int) {
	for _, inv := range s.invalidations {
		if inv.Distribution != dist || inv.Status(now) != "InProgress" {
			continue
		}
		for _, it := range inv.Items {
			if isWildcard(it) {
				wild++
			} else {
				paths++
			}
		}
	}
	return paths, wild
}

func (s *Server) location(dist, id string) string {
	return s.ts.URL + "/" + APIVersion + "/distribution/" + dist + "/invalidation/" + id
}

func (s *Server) get(w http.ResponseWriter, dist, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["GetInvalidation"]++
	if !s.hasDistribution(dist) {
		writeError(w, http.StatusNotFound, "NoSuchDistribution", "The specified distribution does not exist.")
		return
	}
	if f, ok := s.nextFaultLocked(OpGetInvalidation); ok {
		writeError(w, f.status, f.code, f.message)
		return
	}
	for _, inv := range s.invalidations {
		if inv.ID == id && inv.Distribution == dist {
			writeInvalidation(w, http.StatusOK, "", inv, time.Now())
			return
		}
	}
	writeError(w, http.StatusNotFound, "NoSuchInvalidation", "The specified invalidation does not exist.")
}

type invalidationXML struct {
	XMLName           xml.Name `xml:"Invalidation"`
	Xmlns             string   `xml:"xmlns,attr"`
	ID                string   `xml:"Id"`
	Status            string   `xml:"Status"`
	CreateTime        string   `xml:"CreateTime"`
	InvalidationBatch struct {
		CallerReference string `xml:"CallerReference"`
		Paths           struct {
			Quantity int      `xml:"Quantity"`
			Items    []string `xml:"Items>Path"`
		} `xml:"Paths"`
	} `xml:"InvalidationBatch"`
}

func writeInvalidation(w http.ResponseWriter, status int, location string, inv *Invalidation, now time.Time) {
	var x invalidationXML
	x.Xmlns, x.ID, x.Status = Namespace, inv.ID, inv.Status(now)
	x.CreateTime = inv.Created.UTC().Format("2006-01-02T15:04:05.000Z")
	x.InvalidationBatch.CallerReference = inv.CallerReference
	x.InvalidationBatch.Paths.Quantity = len(inv.Items)
	x.InvalidationBatch.Paths.Items = inv.Items
	out, _ := xml.Marshal(x)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amz-Request-Id", randomString(8)+"-"+randomString(4))
	if location != "" {
		w.Header().Set("Location", location)
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, xml.Header)
	_, _ = w.Write(out)
}

// writeError answers with CloudFront's error XML.
func writeError(w http.ResponseWriter, status int, code, message string) {
	typ := "Sender"
	if status >= 500 {
		typ = "Receiver"
	}
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(message))
	id := randomString(8) + "-" + randomString(4)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amz-Request-Id", id)
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0"?>`+"\n"+`<ErrorResponse xmlns="%s"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`,
		Namespace, typ, code, b.String(), id)
}
