package akamaitest

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/akamai/AkamaiOPEN-edgegrid-golang/v8/pkg/edgegrid"

	"github.com/gormpurge/gormpurge/backends/akamai"
	"github.com/gormpurge/gormpurge/internal/nilcheck"
)

// Option configures a [Server]. Pass options to [NewServer]. An option given
// an invalid value panics, nil included where it expects a clock or a
// function: it is a mistake in the test, not in the code under test. Leave
// the option out for the default.
type Option func(*config)

type config struct {
	clock         akamai.Clock
	limits        akamai.RateLimits
	authorized    map[string]bool // nil: every host is authorised
	now           func() time.Time
	headersToSign []string // lower case, in signing order
	maxBody       int
	creds         *akamai.Credentials // fixed credentials, for this package's tests
	latency       func() (arrive, answer time.Duration)
}

func defaultConfig() config {
	return config{
		clock:   akamai.SystemClock{},
		limits:  akamai.PublishedRateLimits(),
		now:     time.Now,
		maxBody: edgegrid.MaxBodySize,
	}
}

// WithClock sets the clock the token buckets refill on and that stamps
// [Purge.At]. Give the same clock to the client under test, such as a
// [ScaledClock], so that its pacing and the fake's buckets agree. Defaults to
// the system clock. It panics if c is nil, or a nil pointer (or other nil
// value) of a type that implements akamai.Clock.
func WithClock(c akamai.Clock) Option {
	switch {
	case c == nil:
		panic("akamaitest: WithClock(nil): pass a clock such as akamaitest.NewScaledClock(100), or leave the option out for the system clock")
	case nilcheck.IsNil(c):
		panic(fmt.Sprintf("akamaitest: WithClock((%T)(nil)): the clock is a nil %T: pass a clock such as akamaitest.NewScaledClock(100), or leave the option out for the system clock", c, c))
	}
	return func(cfg *config) { cfg.clock = c }
}

// WithLatency delays every request on the [WithClock] clock, as the
// network between a client and Akamai does: a request reaches the fake
// arrive after the client sent it, and is checked, spends its tokens (the
// buckets refilled up to that moment) and is recorded ([Purge.At]) only
// then; its answer leaves answer later again. f is called once per request,
// from the server's goroutines, so it must be safe for concurrent use; it
// may return different delays each time, so that requests overtake one
// another. Defaults to no delay. It panics if f is nil.
func WithLatency(f func() (arrive, answer time.Duration)) Option {
	if f == nil {
		panic("akamaitest: WithLatency(nil): pass a function, or leave the option out for no delay")
	}
	return func(cfg *config) { cfg.latency = f }
}

// WithRateLimits sets the sizes and refill rates of the token buckets. A zero
// Bucket means Akamai's published one (see [akamai.PublishedRateLimits]);
// unlike the real API, any positive burst and rate are accepted, so that a
// test can use small buckets. Defaults to the published limits. It panics on
// a negative burst or a rate that is not a positive finite number.
func WithRateLimits(l akamai.RateLimits) Option {
	p := akamai.PublishedRateLimits()
	for _, b := range []struct {
		name string
		b    *akamai.Bucket
		def  akamai.Bucket
	}{
		{"Requests", &l.Requests, p.Requests},
		{"URLs", &l.URLs, p.URLs},
		{"Tags", &l.Tags, p.Tags},
		{"CPCodes", &l.CPCodes, p.CPCodes},
	} {
		if *b.b == (akamai.Bucket{}) {
			*b.b = b.def
			continue
		}
		if b.b.Burst <= 0 || !(b.b.PerSecond > 0) || math.IsInf(b.b.PerSecond, 0) {
			panic(fmt.Sprintf("akamaitest: WithRateLimits: bucket %s {Burst: %d, PerSecond: %g}: "+
				"burst and rate must both be positive (or both zero for Akamai's published limit)",
				b.name, b.b.Burst, b.b.PerSecond))
		}
	}
	return func(cfg *config) { cfg.limits = l }
}

// WithAuthorizedHosts lists the hosts the account may purge. A URL object
// whose host is not listed is answered with 403 "unauthorized arl" naming the
// URL in detail, as Akamai does for a property outside the API client's
// authorisation. Hosts match case-insensitively, with or without the URL's
// port. Calling it with no hosts authorises none. Defaults to every host.
func WithAuthorizedHosts(hosts ...string) Option {
	m := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		m[strings.ToLower(h)] = true
	}
	return func(cfg *config) { cfg.authorized = m }
}

// WithNow sets the wall clock that a request's EdgeGrid timestamp is checked
// against: more than 30 seconds off is answered with 400. It is separate from
// [WithClock] because tests run the buckets on a fast clock while the
// signing library stamps requests with real time. Defaults to time.Now. It
// panics if now is nil.
func WithNow(now func() time.Time) Option {
	if now == nil {
		panic("akamaitest: WithNow(nil): pass a function such as time.Now, or leave the option out")
	}
	return func(cfg *config) { cfg.now = now }
}

// WithHeadersToSign lists the request headers that the signature covers, in
// signing order, as in the headers_to_sign setting of an EdgeGrid client.
// Fast Purge signs none; this exists to test a client's header signing.
// Defaults to none.
func WithHeadersToSign(names ...string) Option {
	lower := make([]string, len(names))
	for i, n := range names {
		lower[i] = strings.ToLower(strings.TrimSpace(n))
	}
	return func(cfg *config) { cfg.headersToSign = lower }
}

// WithMaxBody sets how many leading bytes of a POST body the signature's
// content hash covers, as in the max_body setting of an EdgeGrid client.
// Defaults to 131072 (edgegrid.MaxBodySize); 0 means the default. It panics
// if n is negative.
func WithMaxBody(n int) Option {
	if n < 0 {
		panic(fmt.Sprintf("akamaitest: WithMaxBody(%d): the size must not be negative", n))
	}
	return func(cfg *config) {
		if n == 0 {
			n = edgegrid.MaxBodySize
		}
		cfg.maxBody = n
	}
}

// withCredentials fixes the tokens and the secret instead of generating
// them; the Host field is ignored. For this package's tests, which replay
// Akamai's signing vectors.
func withCredentials(c akamai.Credentials) Option {
	return func(cfg *config) { cfg.creds = &c }
}
