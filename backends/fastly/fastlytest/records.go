package fastlytest

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/gormpurge/gormpurge/backends/internal/fakeapi"
)

// Purge is a request the fake accepted with 200.
type Purge struct {
	Kind Kind
	// ServiceID is the service of a key purge or purge_all; empty for a
	// URL purge, which Fastly does not scope to a service.
	ServiceID string
	// URL is a URL purge's cached URL as sent: host, path and query, with
	// no scheme, such as "www.example.com/posts/1".
	URL string
	// Keys are the surrogate keys of a key purge, in the order sent.
	Keys []string
	// Soft is whether the purge was soft (Fastly-Soft-Purge); always false
	// for purge_all, which Fastly cannot do softly.
	Soft bool
	// IDs are the purge IDs answered: one for a URL or single-key purge,
	// one per key (in Keys' order) for a batch, none for purge_all.
	IDs []string
	// At is when the purge was accepted, on the [WithNow] clock.
	At time.Time
}

// FailNext makes the next times requests fail with status (such as 500,
// 503, 429, 401, 403 or 404) and a body in Fastly's shape, before any
// other check: they are not recorded as purges and spend nothing. A 429
// also carries Retry-After: 1. Calls queue up: FailNext(500, 1) then
// FailNext(429, 2) fails one request with 500, then two with 429. It
// panics if status is not between 200 and 599; times of 0 or less does
// nothing.
func (s *Server) FailNext(status, times int) {
	if status < 200 || status > 599 {
		panic(fmt.Sprintf("fastlytest: FailNext(%d, %d): the status must be between 200 and 599", status, times))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures.Add(status, times)
}

// Respond installs a hook that sees every request not taken by
// [Server.FailNext]. When it returns handled, the request is answered with
// status and a body in Fastly's shape, as FailNext would, and goes no
// further; otherwise the fake handles it as usual. The hook runs on the
// request's goroutine, without the server's lock held: it must be safe for
// concurrent use. To hold a request in flight it may block until
// Call.Context ends: a request whose client has gone away by the time the
// hook returns is neither recorded nor answered (the fake closes its
// connection). Respond(nil) removes the hook.
func (s *Server) Respond(hook func(Call) (status int, handled bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = hook
}

// Purges returns every accepted purge, in the order accepted.
func (s *Server) Purges() []Purge {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fakeapi.Clone(s.purges, func(p Purge) Purge {
		p.Keys, p.IDs = slices.Clone(p.Keys), slices.Clone(p.IDs)
		return p
	})
}

// URLs returns the cached URL of every accepted URL purge, in the order
// accepted, soft or hard.
func (s *Server) URLs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fakeapi.Flatten(s.purges, func(p Purge) []string {
		if p.Kind != KindURL {
			return nil
		}
		return []string{p.URL}
	})
}

// Keys returns every surrogate key of an accepted key purge, batch or
// single, in the order accepted, soft or hard.
func (s *Server) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fakeapi.Flatten(s.purges, func(p Purge) []string { return p.Keys })
}

// PurgeAlls returns how many purge_all requests were accepted.
func (s *Server) PurgeAlls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fakeapi.Count(s.purges, func(p Purge) bool { return p.Kind == KindAll })
}

// Responses returns how many responses the fake sent, by HTTP status,
// errors included.
func (s *Server) Responses() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.responses)
}

// Reset forgets the purges and response counts, cancels pending FailNext
// failures, removes the Respond hook, restarts Call.Seq and starts a new
// hourly window with the whole limit. The token, service ID and options
// stay.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purges = nil
	s.responses = map[int]int{}
	s.failures.Reset()
	s.hook = nil
	s.seq = 0
	s.spent = 0
	s.windowStart = s.cfg.now()
}
