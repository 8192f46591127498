package akamaitest

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gormpurge/gormpurge/backends/akamai"
)

// tokenEpsilon absorbs floating-point error in refills, so that a client
// that waits exactly the time the headers imply is not refused by a
// billionth of a token.
const tokenEpsilon = 1e-9

// bucket is a token bucket refilled continuously on the server's clock.
// Its methods need Server.mu held.
type bucket struct {
	limit  akamai.Bucket
	tokens float64
	last   time.Time
}

func newBucket(l akamai.Bucket, now time.Time) *bucket {
	return &bucket{limit: l, tokens: float64(l.Burst), last: now}
}

// refill adds the tokens earned since the last refill, up to the burst.
func (b *bucket) refill(now time.Time) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = math.Min(float64(b.limit.Burst), b.tokens+d.Seconds()*b.limit.PerSecond)
		b.last = now
	}
}

// has reports whether the bucket holds n tokens.
func (b *bucket) has(n int) bool { return b.tokens+tokenEpsilon >= float64(n) }

// take removes n tokens; the caller checked has(n).
func (b *bucket) take(n int) { b.tokens = math.Max(0, b.tokens-float64(n)) }

// remaining is the whole number of tokens left, rounded down.
func (b *bucket) remaining() int { return int(math.Floor(b.tokens + tokenEpsilon)) }

// secondsToRefresh is the time until the bucket is full again.
func (b *bucket) secondsToRefresh() string {
	return secondsFor(float64(b.limit.Burst)-b.tokens, b.limit.PerSecond)
}

// secondsFor formats the time that rate takes to earn tokens, rounded up to
// the microsecond, as "0.020000".
func secondsFor(tokens, rate float64) string {
	if tokens <= tokenEpsilon {
		return "0.000000"
	}
	ns := math.Ceil(tokens/rate*1e9 - 1e-3)
	us := int64(math.Ceil(ns / 1e3))
	return fmt.Sprintf("%d.%06d", us/1_000_000, us%1_000_000)
}

// perSecond formats a refill rate rounded down to the millionth, with at
// least two decimals ("50.00", "8.333333"): a client that divides by it
// never waits too little.
func perSecond(rate float64) string {
	micro := int64(math.Floor(rate*1e6 + 1e-6))
	s := strings.TrimRight(fmt.Sprintf("%d.%06d", micro/1_000_000, micro%1_000_000), "0")
	if i := strings.IndexByte(s, '.'); len(s)-i-1 < 2 {
		s += strings.Repeat("0", 2-(len(s)-i-1))
	}
	return s
}

// setHeaders writes the X-Ratelimit-* headers of b; suffix is "" for the
// request bucket and "-Objects" for an object bucket.
func (b *bucket) setHeaders(h http.Header, suffix string) {
	h.Set("X-Ratelimit-Limit"+suffix, strconv.Itoa(b.limit.Burst))
	h.Set("X-Ratelimit-Limit-Per-Second"+suffix, perSecond(b.limit.PerSecond))
	h.Set("X-Ratelimit-Remaining"+suffix, strconv.Itoa(b.remaining()))
	h.Set("X-Ratelimit-Seconds-To-Refresh-Limit"+suffix, b.secondsToRefresh())
}

// rateTitles are the titles of a 429 by bucket.
var rateTitles = map[akamai.Kind]string{
	"":                "Rate Limit exceeded",
	akamai.KindURL:    "URL Rate Limit exceeded",
	akamai.KindTag:    "TAG Rate Limit exceeded",
	akamai.KindCPCode: "CPCODE Rate Limit exceeded",
}

// resetBucketsLocked fills every bucket. s.mu held.
func (s *Server) resetBucketsLocked() {
	now := s.cfg.clock.Now()
	l := s.cfg.limits
	s.requests = newBucket(l.Requests, now)
	s.objects = map[akamai.Kind]*bucket{
		akamai.KindURL:    newBucket(l.URLs, now),
		akamai.KindTag:    newBucket(l.Tags, now),
		akamai.KindCPCode: newBucket(l.CPCodes, now),
	}
}

// rateHeadersLocked refills the request bucket and kind's bucket (if kind is
// known) and returns their headers. s.mu held.
func (s *Server) rateHeadersLocked(kind akamai.Kind) http.Header {
	now := s.cfg.clock.Now()
	h := http.Header{}
	s.requests.refill(now)
	s.requests.setHeaders(h, "")
	if b := s.objects[kind]; b != nil {
		b.refill(now)
		b.setHeaders(h, "-Objects")
	}
	return h
}

// rateHeaders is rateHeadersLocked taking the lock.
func (s *Server) rateHeaders(kind akamai.Kind) http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rateHeadersLocked(kind)
}

// tooMany returns the 429 for bucket b (the request bucket when kind is
// ""), asked for size tokens, with headers h. b's owner's lock held.
func tooMany(b *bucket, kind, pathKind akamai.Kind, size int, h http.Header) *reply {
	p := problemReply(http.StatusTooManyRequests, pathKind, rateTitles[kind], "")
	body := p.body.(*problem)
	limit, remaining := b.limit.Burst, b.remaining()
	body.RateLimit, body.RateLimitCurrentRequestSize, body.RateLimitRemaining = &limit, &size, &remaining
	p.header = h
	return p
}
