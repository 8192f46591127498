package akamaitest

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/gormpurge/gormpurge/backends/akamai"
	"github.com/gormpurge/gormpurge/backends/internal/fakeapi"
)

// Purge is a request the fake accepted with 201.
type Purge struct {
	Action  akamai.Action
	Network akamai.Network
	Kind    akamai.Kind
	// Hostname is the request's "hostname", for a URL request that names
	// paths under one host; Objects are then those paths.
	Hostname string
	// Objects are the request's objects, as sent: URLs, ARLs or paths,
	// tags, or CP codes in decimal.
	Objects []string
	// PurgeID and SupportID are the IDs of the 201 body; like Akamai's,
	// they are equal.
	PurgeID   string
	SupportID string
	// BodyBytes is the size of the request body.
	BodyBytes int
	// At is when the request was accepted, on the [WithClock] clock.
	At time.Time
}

// Call is a correctly signed request, as given to a [Server.Respond] hook.
type Call struct {
	// Seq numbers the correctly signed requests from 1; [Server.Reset]
	// restarts it.
	Seq    int
	Method string
	Path   string
	// Action, Network and Kind are those of the path, or empty when the
	// path is not a Fast Purge endpoint.
	Action  akamai.Action
	Network akamai.Network
	Kind    akamai.Kind
	// Objects are the body's objects, or nil when the body is not a valid
	// request for Kind.
	Objects []string
	Header  http.Header
	Body    []byte
}

// FailNext makes the next times correctly signed requests fail with status
// (such as 500, 503, 504, 507, 429, 403 or 400) and a realistic body, before
// any other check: they are not recorded as purges and spend no tokens. A 429
// also carries rate-limit headers saying that the request bucket is empty and
// refills within one token's time. Calls queue up: FailNext(500, 1) then
// FailNext(429, 2) fails one request with 500, then two with 429. It panics
// if status is not between 200 and 599; times of 0 or less does nothing.
func (s *Server) FailNext(status, times int) {
	checkStatus("FailNext", status)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures.Add(status, times)
}

// Respond installs a hook that sees every correctly signed request not taken
// by [Server.FailNext]. When it returns handled, the request is answered with
// status and a realistic body, as FailNext would, and goes no further;
// otherwise the fake handles it as usual. The hook runs on the request's
// goroutine, without the server's lock held: it must be safe for concurrent
// use. Respond(nil) removes the hook.
func (s *Server) Respond(hook func(Call) (status int, handled bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = hook
}

func checkStatus(name string, status int) {
	if status < 200 || status > 599 {
		panic(fmt.Sprintf("akamaitest: %s(%d): the status must be between 200 and 599", name, status))
	}
}

// Purges returns every accepted request, in the order accepted.
func (s *Server) Purges() []Purge {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fakeapi.Clone(s.purges, func(p Purge) Purge {
		p.Objects = slices.Clone(p.Objects)
		return p
	})
}

// Objects returns every accepted object of kind, in the order accepted,
// whatever the action and network.
func (s *Server) Objects(kind akamai.Kind) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fakeapi.Flatten(s.purges, func(p Purge) []string {
		if p.Kind != kind {
			return nil
		}
		return p.Objects
	})
}

// Responses returns how many responses the fake sent, by HTTP status,
// including errors such as 401, 413 and 429.
func (s *Server) Responses() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.responses)
}

// Reset forgets the purges and response counts, cancels pending FailNext
// failures, removes the Respond hook, restarts Call.Seq and fills every
// token bucket. The credentials, the options and the record of used nonces
// stay.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purges = nil
	s.responses = map[int]int{}
	s.failures.Reset()
	s.hook = nil
	s.seq = 0
	s.resetBucketsLocked()
}

// Limits returns the token buckets in force: the published limits with any
// set by [WithRateLimits].
func (s *Server) Limits() akamai.RateLimits { return s.cfg.limits }
