package cloudflare

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

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

// pacer is the client-side copy of the account's purge token bucket: one
// token per request and, for URLs, one token of the plan's URL rate per
// URL (a golang.org/x/time/rate limiter). Reservations queue in order, so
// concurrent callers are served first come, first served.
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
	urls     *rate.Limiter // nil: no URL limit
	blocked  time.Time     // no request before this, after a 429
}

// bucket is the request bucket. Tokens are counted cumulatively so that
// reservations queue: earned is every token the bucket has held, taken
// every token reserved; a reservation at position pos is due once earned
// reaches it.
type bucket struct {
	burst, rate      float64
	earned, taken    float64
	unsent, inFlight float64 // reserved and not sent; sent and not answered
	last             time.Time
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
	p := &pacer{now: now, requests: bucket{burst: float64(r.Burst), rate: r.PerSecond * (1 - refillMargin), earned: float64(r.Burst), last: t}}
	if r.URLsPerSecond > 0 {
		p.urls = rate.NewLimiter(rate.Limit(r.URLsPerSecond*(1-refillMargin)), int(r.URLsPerSecond))
	}
	return p
}

// reservation is the tokens of some requests, reserved at once.
type reservation struct {
	pos  float64 // the position of the last request token
	n    int     // request tokens
	urls []*rate.Reservation
	at   time.Time
}

// reserve takes the tokens of requests of urls[i] URLs each (0 for a
// request of tags) at now, and returns how long until they are all there.
func (p *pacer) reserve(now time.Time, urls []int) (reservation, time.Duration, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests.advance(now)
	res := reservation{n: len(urls), at: now}
	delay := p.blocked.Sub(now)
	for _, n := range urls {
		if n > 0 && p.urls != nil {
			if n > p.urls.Burst() {
				for _, r := range res.urls {
					r.CancelAt(now)
				}
				return reservation{}, 0, fmt.Errorf("%w: %d URLs in one request, more than the %d a second the plan allows", ErrRateLimited, n, p.urls.Burst())
			}
			r := p.urls.ReserveN(now, n)
			res.urls = append(res.urls, r)
			delay = max(delay, r.DelayFrom(now))
		}
	}
	p.requests.taken += float64(len(urls))
	p.requests.unsent += float64(len(urls))
	res.pos = p.requests.taken
	return res, max(0, delay, p.requests.delay(res.pos)), nil
}

// cancel gives back the tokens of res, whose requests will not be sent.
func (p *pacer) cancel(res reservation) {
	p.unsend(res.n)
	for _, r := range res.urls {
		r.CancelAt(res.at)
	}
}

// unsend gives back n request tokens reserved for requests never sent.
func (p *pacer) unsend(n int) {
	if n <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests.advance(p.now())
	p.requests.unsent = max(0, p.requests.unsent-float64(n))
	p.requests.earned += float64(n)
}

// sending records that a request whose token was reserved is on its way.
func (p *pacer) sending() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests.advance(p.now())
	p.requests.unsent = max(0, p.requests.unsent-1)
	p.requests.inFlight++
}

// done records the end of a request sent: refund when Cloudflare spent no
// token on it (a 429).
func (p *pacer) done(refund bool) {
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
		p.cancel(res)
		return backends.RetryAfter(delay, fmt.Errorf("%w: %d requests need %v of refill", ErrRateLimited, len(urls), delay.Round(time.Millisecond)))
	}
	// The delay assumes the bucket keeps refilling; it may not (requests
	// in flight while it is full, a 429), so look again after each sleep.
	for delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			p.cancel(res)
			return fmt.Errorf("cloudflare: waiting for the rate limit: %w", context.Cause(ctx))
		}
		p.mu.Lock()
		now := p.now()
		p.requests.advance(now)
		delay = max(p.blocked.Sub(now), p.requests.delay(res.pos))
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
