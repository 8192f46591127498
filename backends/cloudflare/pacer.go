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

// pacer is the client-side copy of the account's purge token bucket: one
// token per request, and, for URLs, one URL token per URL. Reservations
// queue in order, so concurrent callers are served first come, first
// served.
type pacer struct {
	now func() time.Time

	mu       sync.Mutex
	requests *rate.Limiter
	urls     *rate.Limiter // nil: no URL limit
	blocked  time.Time     // no request before this, after a 429
}

func newPacer(r Rate, now func() time.Time) *pacer {
	p := &pacer{now: now, requests: rate.NewLimiter(rate.Limit(r.PerSecond*(1-refillMargin)), r.Burst)}
	if r.URLsPerSecond > 0 {
		p.urls = rate.NewLimiter(rate.Limit(r.URLsPerSecond*(1-refillMargin)), int(r.URLsPerSecond))
	}
	return p
}

// reserve takes the tokens of requests of urls[i] URLs each (0 for a
// request of tags) at now, and returns how long until they are all there
// and how to give them back.
func (p *pacer) reserve(now time.Time, urls []int) (time.Duration, func(), error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var rs []*rate.Reservation
	cancel := func() {
		for _, r := range rs {
			r.CancelAt(now)
		}
	}
	delay := p.blocked.Sub(now)
	for _, n := range urls {
		r := p.requests.ReserveN(now, 1)
		rs = append(rs, r)
		delay = max(delay, r.DelayFrom(now))
		if n > 0 && p.urls != nil {
			if n > p.urls.Burst() {
				cancel()
				return 0, nil, fmt.Errorf("%w: %d URLs in one request, more than the %d a second the plan allows", ErrRateLimited, n, p.urls.Burst())
			}
			r := p.urls.ReserveN(now, n)
			rs = append(rs, r)
			delay = max(delay, r.DelayFrom(now))
		}
	}
	return max(0, delay), cancel, nil
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
	delay, cancel, err := p.reserve(now, urls)
	if err != nil {
		return backends.Permanent(err)
	}
	if delay <= 0 {
		return nil
	}
	if deadline, ok := ctx.Deadline(); ok && deadline.Sub(now) < delay {
		cancel()
		return backends.RetryAfter(delay, fmt.Errorf("%w: %d requests need %v of refill", ErrRateLimited, len(urls), delay.Round(time.Millisecond)))
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		cancel()
		return fmt.Errorf("cloudflare: waiting for the rate limit: %w", context.Cause(ctx))
	}
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
// requests of urls[i] URLs each through, one after the other: the time the
// last one waits. It is how the benchmarks tell the time to purge at a
// plan's rate without sleeping.
func (p *pacer) schedule(urls []int) time.Duration {
	start := p.now()
	var last time.Duration
	for _, n := range urls {
		d, _, err := p.reserve(start, []int{n})
		if err != nil {
			return -1
		}
		last = max(last, d)
	}
	return last
}
