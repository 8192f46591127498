package cloudfronttest

import (
	"context"
	"crypto/rand"
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

// wait tells that r arrived and waits until h is released, or r is given
// up (then it returns false).
func (h *held) wait(r *http.Request) bool {
	h.arrive.Do(func() { close(h.arrived) })
	select {
	case <-h.release:
		return true
	case <-r.Context().Done():
		return false
	}
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
