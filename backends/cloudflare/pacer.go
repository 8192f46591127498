package cloudflare

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gormpurge/gormpurge/backends"
)

// refillMargin is the share of the published refill rates the pacer leaves
// unused, for the jitter between reserving a token here and the request
// reaching Cloudflare: 2%.
const refillMargin = 0.02

// DefaultRateLimitWait is how long the backend waits after a 429 that
// carries no Retry-After.
const DefaultRateLimitWait = 5 * time.Second

// ErrRateLimited is matched by the error of a purge that did not fit in the
// rate limit: on the client's own pacing, or on a 429 from Cloudflare.
var ErrRateLimited = errors.New("cloudflare: rate limit reached")

// tokenEpsilon absorbs floating-point error in refills.
const tokenEpsilon = 1e-9

// pacer is the client-side copy of the account's two purge limits, as
// Cloudflare publishes them: a token bucket of requests for purges by tag,
// hostname, prefix and of everything, and a rate of URLs for single-file
// purges (requests of "files"), which take no request token. Reservations
// queue in order, so concurrent callers are served first come, first
// served.
//
// A request's token is taken here when it is reserved, and at Cloudflare
// when it arrives, later. While Cloudflare's bucket is full, the tokens it
// would have earned in between are lost; the copy must lose them too or it
// runs ahead and draws 429s (the first requests of a burst wait for a TLS
// handshake). So the request bucket counts the requests on their way and
// stops refilling while its tokens and those together reach the burst.
type pacer struct {
	now func() time.Time

	mu       sync.Mutex
	requests bucket
	urls     *bucket   // nil: no URL limit
	blocked  time.Time // no request before this, after a 429
}

// bucket is a token bucket. Tokens are counted cumulatively so that
// reservations queue: earned is every token the bucket has held, taken
// every token reserved; a reservation at position pos is due once earned
// reaches it. unsent and inFlight are used by the request bucket only.
type bucket struct {
	burst, rate      float64
	earned, taken    float64
	unsent, inFlight float64 // reserved and not sent; sent and not answered
	last             time.Time
}

func newBucket(burst, rate float64, now time.Time) *bucket {
	return &bucket{burst: burst, rate: rate, earned: burst, last: now}
}

func (b *bucket) advance(now time.Time) {
	if !now.After(b.last) {
		return
	}
	dt := now.Sub(b.last).Seconds()
	b.last = now
	level := b.earned - b.taken + b.inFlight
	if b.inFlight > 0 {
		level += b.unsent
	}
	if room := b.burst - level; room > 0 {
		b.earned += min(room, dt*b.rate)
	}
}

func (b *bucket) delay(pos float64) time.Duration {
	short := pos - b.earned
	if short <= tokenEpsilon {
		return 0
	}
	return time.Duration(short / b.rate * float64(time.Second))
}

func newPacer(r Rate, now func() time.Time) *pacer {
	t := now()
	p := &pacer{now: now, requests: *newBucket(float64(r.Burst), r.PerSecond*(1-refillMargin), t)}
	if r.URLsPerSecond > 0 {
		// Cloudflare computes the URL rate as a moving average: the
		// copy allows one second's worth at once.
		p.urls = newBucket(r.URLsPerSecond, r.URLsPerSecond*(1-refillMargin), t)
	}
	return p
}

// tokens is what some requests take: request tokens (one per request of
// tags or of everything) and URL tokens (one per URL of a request of
// files).
type tokens struct {
	requests, urls int
}

// tokensOf returns the tokens of requests of urls[i] URLs each (0 for a
// request of tags or of everything).
func tokensOf(urls []int) tokens {
	var t tokens
	for _, n := range urls {
		if n > 0 {
			t.urls += n
		} else {
			t.requests++
		}
	}
	return t
}

// reservation is the tokens of some requests, reserved at once.
type reservation struct {
	tokens
	pos    float64 // the position of the last request token
	urlPos float64 // the position of the last URL token
}

// reserve takes the tokens of requests of urls[i] URLs each (0 for a
// request of tags or of everything) at now, and returns how long until
// they are all there.
func (p *pacer) reserve(now time.Time, urls []int) (reservation, time.Duration, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests.advance(now)
	if p.urls != nil {
		p.urls.advance(now)
		for _, n := range urls {
			if float64(n) > p.urls.burst {
				return reservation{}, 0, fmt.Errorf("%w: %d URLs in one request, more than the %g a second the plan allows", ErrRateLimited, n, p.urls.burst)
			}
		}
	}
	res := reservation{tokens: tokensOf(urls)}
	delay := p.blocked.Sub(now)
	if res.requests > 0 {
		p.requests.taken += float64(res.requests)
		p.requests.unsent += float64(res.requests)
		delay = max(delay, p.requests.delay(p.requests.taken))
	}
	res.pos = p.requests.taken
	if p.urls != nil && res.urls > 0 {
		p.urls.taken += float64(res.urls)
		delay = max(delay, p.urls.delay(p.urls.taken))
		res.urlPos = p.urls.taken
	}
	return res, max(0, delay), nil
}

// delayLocked is how long until res's tokens are all there. p.mu held.
func (p *pacer) delayLocked(now time.Time, res reservation) time.Duration {
	p.requests.advance(now)
	d := p.blocked.Sub(now)
	if res.requests > 0 {
		d = max(d, p.requests.delay(res.pos))
	}
	if p.urls != nil && res.urls > 0 {
		p.urls.advance(now)
		d = max(d, p.urls.delay(res.urlPos))
	}
	return d
}

// unsend gives back the tokens t of requests reserved and never sent. A
// bucket never holds more than its burst, whatever is given back.
func (p *pacer) unsend(t tokens) {
	if t.requests <= 0 && t.urls <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.requests.advance(now)
	if t.requests > 0 {
		p.requests.unsent = max(0, p.requests.unsent-float64(t.requests))
		p.requests.earned = min(p.requests.earned+float64(t.requests), p.requests.taken+p.requests.burst)
	}
	if p.urls != nil && t.urls > 0 {
		p.urls.advance(now)
		p.urls.earned = min(p.urls.earned+float64(t.urls), p.urls.taken+p.urls.burst)
	}
}

// sending records that a request whose tokens were reserved is on its
// way. A request of files takes no request token: it is not counted.
func (p *pacer) sending(kind string) {
	if kind == kindFiles {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests.advance(p.now())
	p.requests.unsent = max(0, p.requests.unsent-1)
	p.requests.inFlight++
}

// done records the end of a request sent: refund when Cloudflare spent no
// token on it (a 429).
func (p *pacer) done(kind string, refund bool) {
	if kind == kindFiles {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests.advance(p.now())
	p.requests.inFlight = max(0, p.requests.inFlight-1)
	if refund {
		p.requests.earned++
	}
}

// wait takes the tokens of requests of urls[i] URLs each, waiting until
// they are there. When ctx's deadline comes first it takes nothing and
// returns at once an error marked backends.RetryAfter with the wait; when
// ctx ends while waiting it gives the tokens back and returns ctx's error.
func (p *pacer) wait(ctx context.Context, urls []int) error {
	if len(urls) == 0 {
		return nil
	}
	now := p.now()
	res, delay, err := p.reserve(now, urls)
	if err != nil {
		return backends.Permanent(err)
	}
	if deadline, ok := ctx.Deadline(); ok && delay > 0 && deadline.Sub(now) < delay {
		p.unsend(res.tokens)
		return backends.RetryAfter(delay, fmt.Errorf("%w: %d requests need %v of refill", ErrRateLimited, len(urls), delay.Round(time.Millisecond)))
	}
	// The delay assumes the buckets keep refilling; they may not
	// (requests in flight while full, a 429), so look again after each
	// sleep.
	for delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			p.unsend(res.tokens)
			return fmt.Errorf("cloudflare: waiting for the rate limit: %w", context.Cause(ctx))
		}
		p.mu.Lock()
		delay = p.delayLocked(p.now(), res)
		p.mu.Unlock()
	}
	return nil
}

// block keeps every request from being sent before until.
func (p *pacer) block(until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if until.After(p.blocked) {
		p.blocked = until
	}
}

// schedule returns how long the pacer, full at start, takes to let
// requests of urls[i] URLs each through, each answered at once: the time
// the last one waits. It is how the benchmarks tell the time to purge at a
// plan's rate without sleeping.
func (p *pacer) schedule(urls []int) time.Duration {
	start := p.now()
	var last time.Duration
	for _, n := range urls {
		_, d, err := p.reserve(start, []int{n})
		if err != nil {
			return -1
		}
		last = max(last, d)
	}
	return last
}
