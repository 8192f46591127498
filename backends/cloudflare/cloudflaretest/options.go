package cloudflaretest

import (
	"fmt"
	"math"
	"regexp"
	"time"
)

// Option configures a [Server]. Pass options to [NewServer]. An option
// given an invalid value panics: it is a mistake in the test, not in the
// code under test. Leave the option out for the default.
type Option func(*config)

type config struct {
	zone      string
	token     string
	perSecond float64
	burst     int
	// urlsPerSecond is the URL rate of single-file purges, and its
	// bucket: one second's worth.
	urlsPerSecond float64
	maxItems      int
	maxFiles      int
	noTags        bool
	now           func() time.Time
}

// Published limits the fake defaults to, from
// https://developers.cloudflare.com/cache/how-to/purge-cache/ ("Purge
// limits"): the Pro plan's request bucket, which purges by tag, hostname,
// prefix and of everything spend; its URL rate, which single-file purges
// spend instead; and 100 operations per request (500 URLs on Enterprise).
const (
	DefaultPerSecond     = 5
	DefaultBurst         = 25
	DefaultURLsPerSecond = 1500
	DefaultMaxItems      = 100
)

var zoneID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// WithZone sets the zone ID the fake serves: 32 lower-case hex digits, as
// Cloudflare's are. Defaults to a random one. It panics on another form.
func WithZone(id string) Option {
	if !zoneID.MatchString(id) {
		panic(fmt.Sprintf("cloudflaretest: WithZone(%q): a zone ID is 32 lower-case hex digits", id))
	}
	return func(c *config) { c.zone = id }
}

// WithToken sets the API token the fake accepts. Defaults to a random
// 40-character token. It panics on an empty token.
func WithToken(token string) Option {
	if token == "" {
		panic("cloudflaretest: WithToken(\"\"): pass a token, or leave the option out for a random one")
	}
	return func(c *config) { c.token = token }
}

// WithBucket sets the account's purge token bucket, which purges by tag,
// hostname, prefix and of everything spend (single-file purges spend the
// URL rate of [WithURLRate] instead): burst requests at once, refilled at
// perSecond. Cloudflare's plans: Free 5 a minute
// (5.0/60) and 25, Pro 5 and 25 (the default), Business 10 and 50,
// Enterprise 50 and 500. Tests use a small bucket to see pacing quickly. It
// panics unless both are positive and finite.
func WithBucket(perSecond float64, burst int) Option {
	if !(perSecond > 0) || math.IsInf(perSecond, 0) || burst <= 0 {
		panic(fmt.Sprintf("cloudflaretest: WithBucket(%g, %d): the rate and the burst must be positive", perSecond, burst))
	}
	return func(c *config) { c.perSecond, c.burst = perSecond, burst }
}

// WithURLRate sets the account's limit on single-file purges (requests of
// "files"), in URLs a second: each URL of a request spends one token, and
// up to one second's worth may be spent at once (Cloudflare computes the
// rate as a moving average; the fake models it as a token bucket of that
// size). Cloudflare's plans: Free 800, Pro and Business 1,500 (the
// default), Enterprise 3,000. It panics unless perSecond is positive and
// finite.
func WithURLRate(perSecond float64) Option {
	if !(perSecond > 0) || math.IsInf(perSecond, 0) {
		panic(fmt.Sprintf("cloudflaretest: WithURLRate(%g): the rate must be positive", perSecond))
	}
	return func(c *config) { c.urlsPerSecond = perSecond }
}

// WithMaxItems sets the most tags, hosts or prefixes, and files unless
// [WithMaxFiles] says otherwise, in one request. Defaults to 100. It
// panics unless n is positive.
func WithMaxItems(n int) Option {
	if n <= 0 {
		panic(fmt.Sprintf("cloudflaretest: WithMaxItems(%d): the limit must be positive", n))
	}
	return func(c *config) { c.maxItems = n }
}

// WithMaxFiles sets the most files (URLs) in one request: 500 on the
// Enterprise plan. Defaults to the [WithMaxItems] limit. It panics unless n
// is positive.
func WithMaxFiles(n int) Option {
	if n <= 0 {
		panic(fmt.Sprintf("cloudflaretest: WithMaxFiles(%d): the limit must be positive", n))
	}
	return func(c *config) { c.maxFiles = n }
}

// WithoutTags makes the zone one that is not on the Enterprise plan, as
// before 2025: purges by tag, host or prefix are answered with code 1107.
func WithoutTags() Option {
	return func(c *config) { c.noTags = true }
}

// WithNow sets the clock the token bucket refills on. Defaults to
// time.Now. It panics if now is nil.
func WithNow(now func() time.Time) Option {
	if now == nil {
		panic("cloudflaretest: WithNow(nil): pass a function such as time.Now, or leave the option out")
	}
	return func(c *config) { c.now = now }
}
