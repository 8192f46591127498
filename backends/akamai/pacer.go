package akamai

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// pacer holds the client-side copy of Fast Purge's token buckets. It takes
// a request's tokens all at once, as Akamai does, and only when they are all
// there, so that requests are sent at the rate the account allows and not
// answered with 429.
type pacer struct {
	clock Clock
	// mu makes reading the clock and reserving from both buckets one
	// step: rate.Limiter needs its times in order, and a request takes
	// its tokens from both buckets at once.
	mu       sync.Mutex
	requests *rate.Limiter
	kinds    map[Kind]*rate.Limiter
}

func newPacer(l RateLimits, clock Clock) *pacer {
	lim := func(b Bucket) *rate.Limiter { return rate.NewLimiter(rate.Limit(b.PerSecond), b.Burst) }
	return &pacer{
		clock:    clock,
		requests: lim(l.Requests),
		kinds: map[Kind]*rate.Limiter{
			KindURL:    lim(l.URLs),
			KindTag:    lim(l.Tags),
			KindCPCode: lim(l.CPCodes),
		},
	}
}

// wait takes one request token and n tokens of kind, waiting on the clock
// until they are there. When ctx has a deadline that comes before the
// tokens, it takes nothing and returns at once an error matching
// ErrRateLimited that carries the wait (backends.RetryDelay reads it), so
// that a caller with a short deadline is told when to come back instead of
// timing out. It returns ctx's error if ctx ends while waiting.
func (p *pacer) wait(ctx context.Context, kind Kind, n int) error {
	objs := p.kinds[kind]
	if n > objs.Burst() {
		return fmt.Errorf("%w: %d %s objects in one request, more than the bucket's %d", ErrRateLimited, n, kind, objs.Burst())
	}
	p.mu.Lock()
	now := p.clock.Now()
	req := p.requests.ReserveN(now, 1)
	obj := objs.ReserveN(now, n)
	delay := max(req.DelayFrom(now), obj.DelayFrom(now))
	if delay <= 0 {
		p.mu.Unlock()
		return nil
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < delay {
		req.CancelAt(now)
		obj.CancelAt(now)
		p.mu.Unlock()
		return &pacedError{wait: delay, kind: kind, n: n}
	}
	p.mu.Unlock()
	if err := p.clock.Sleep(ctx, delay); err != nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		now := p.clock.Now()
		req.CancelAt(now)
		obj.CancelAt(now)
		return err
	}
	return nil
}

// sync lowers the client's buckets to what Akamai says remains, when
// Akamai has fewer tokens than the client thinks: other processes or API
// clients of the same account spend them too. remaining < 0 means unknown.
func (p *pacer) sync(kind Kind, remainingRequests, remainingObjects float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.Now()
	drain := func(l *rate.Limiter, remaining float64) {
		if remaining < 0 {
			return
		}
		if excess := int(l.TokensAt(now) - remaining); excess > 0 {
			l.ReserveN(now, min(excess, l.Burst()))
		}
	}
	drain(p.requests, remainingRequests)
	drain(p.kinds[kind], remainingObjects)
}

// pacedError is returned by pacer.wait when the tokens will not be there
// before the caller's deadline.
type pacedError struct {
	wait time.Duration
	kind Kind
	n    int
}

func (e *pacedError) Error() string {
	return fmt.Sprintf("%s: %d %s objects need %v of refill", ErrRateLimited, e.n, e.kind, e.wait.Round(time.Millisecond))
}

func (e *pacedError) Unwrap() error { return ErrRateLimited }
