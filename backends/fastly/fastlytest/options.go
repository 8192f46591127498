package fastlytest

import (
	"fmt"
	"strings"
	"time"
)

// Option configures a [Server]. Pass options to [NewServer]. An option
// given an invalid value panics, as httptest does on misuse: it is a
// mistake in the test, not in the code under test. Leave the option out
// for the default.
type Option func(*config)

type config struct {
	serviceID   string
	token       string
	hourlyLimit int
	now         func() time.Time
}

// MaxKeys is the most surrogate keys one batch purge may name: "Up to 256
// surrogate keys can be purged in one batch request"
// (https://www.fastly.com/documentation/reference/api/purging/#bulk-purge-tag).
const MaxKeys = 256

// DefaultHourlyLimit is the number of non-read API requests a Fastly user
// may make per hour, which purge_all counts against: "You can make up to
// 1,000 non-read requests per hour" (https://docs.fastly.com/api/, "Rate
// limiting").
const DefaultHourlyLimit = 1000

// WithServiceID sets the ID of the one service the fake serves. The default
// is a fresh random 22-character ID, as Fastly's look. It panics on an
// empty ID, or one holding a character other than a letter, a digit, '-'
// or '_'.
func WithServiceID(id string) Option {
	if id == "" || strings.IndexFunc(id, func(r rune) bool { return !isIDChar(r) }) >= 0 {
		panic(fmt.Sprintf("fastlytest: WithServiceID(%q): want letters, digits, '-' or '_', such as \"SU1Z0isxPaozGVKXdv0eY\"", id))
	}
	return func(c *config) { c.serviceID = id }
}

// WithAPIToken sets the API token the fake accepts in Fastly-Key. The
// default is a fresh random 32-character token. It panics (with a message
// that does not show the token) on an empty token, or one holding a
// character that cannot travel in an HTTP header.
func WithAPIToken(token string) Option {
	if token == "" || strings.IndexFunc(token, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
		panic("fastlytest: WithAPIToken: want a non-empty token of printable ASCII without spaces, or leave the option out for a random one")
	}
	return func(c *config) { c.token = token }
}

// WithHourlyLimit sets how many requests that count against the hourly
// rate limit (purge_all) the fake accepts per hour. The default is
// [DefaultHourlyLimit]; a test uses a small one to reach the limit. It
// panics unless n is positive.
func WithHourlyLimit(n int) Option {
	if n <= 0 {
		panic(fmt.Sprintf("fastlytest: WithHourlyLimit(%d): want a positive number of requests per hour", n))
	}
	return func(c *config) { c.hourlyLimit = n }
}

// WithNow sets the clock of the hourly window and of [Purge.At]. The
// default is time.Now. It panics if now is nil.
func WithNow(now func() time.Time) Option {
	if now == nil {
		panic("fastlytest: WithNow(nil): pass a function such as time.Now, or leave the option out")
	}
	return func(c *config) { c.now = now }
}

func isIDChar(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_'
}
