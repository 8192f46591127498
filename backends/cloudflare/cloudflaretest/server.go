package cloudflaretest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
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
