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
//
// Akamai reports what its buckets hold in every answer. The pacer lowers its
// own buckets to that, less the tokens of requests Akamai has not seen yet
// (reserved here, not yet answered), so that it corrects both for other
// clients of the account and for the head start it takes on Akamai by
// counting a request's tokens from the moment it reserves them.
type pacer struct {
	clock Clock

	// mu makes reading the clock and reserving from both buckets one step
	// (rate.Limiter needs its times in order, and a request takes its
	// tokens from both buckets at once), and guards outstanding.
	mu       sync.Mutex
	requests *rate.Limiter
	kinds    map[Kind]*rate.Limiter
	// outstanding counts the tokens reserved for requests that Akamai has
	// not answered yet, per bucket; kindRequests is the request bucket.
	outstanding map[Kind]int
}

// kindRequests is the key of the request bucket in pacer.outstanding.
const kindRequests Kind = "requests"

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
		outstanding: map[Kind]int{},
	}
}

// wait takes one request token and n tokens of kind, waiting on the clock
// until they are there, and counts them as outstanding until [pacer.answered]
// or [pacer.release]. When ctx has a deadline that comes before the tokens,
// it takes nothing and returns at once a *pacedError carrying the wait, so
// that a caller with a short deadline is told when to come back instead of
// timing out. It returns ctx's error, having taken nothing, if ctx ends while
// waiting. The deadline, in real time, is compared with the wait on the
// pacer's clock: with a fast test clock that errs on the side of waiting.
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
	if deadline, ok := ctx.Deadline(); ok && delay > 0 && time.Until(deadline) < delay {
		req.CancelAt(now)
		obj.CancelAt(now)
		p.mu.Unlock()
		return &pacedError{wait: delay, kind: kind, n: n}
	}
	p.outstanding[kindRequests]++
	p.outstanding[kind] += n
	p.mu.Unlock()
	if delay <= 0 {
		return nil
	}
	if err := p.clock.Sleep(ctx, delay); err != nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		now := p.clock.Now()
		req.CancelAt(now)
		obj.CancelAt(now)
		p.releaseLocked(kind, n)
		return err
	}
	return nil
}

// release forgets the outstanding tokens of a request that was reserved and
// will not be sent.
func (p *pacer) release(kind Kind, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.releaseLocked(kind, n)
}

func (p *pacer) releaseLocked(kind Kind, n int) {
	p.outstanding[kindRequests] = max(0, p.outstanding[kindRequests]-1)
	p.outstanding[kind] = max(0, p.outstanding[kind]-n)
}

// answered records Akamai's answer to a request that had reserved n tokens
// of kind: its tokens are no longer outstanding, and the client's buckets
// are lowered to what Akamai says remains less what is still outstanding.
// A remaining value < 0 means the answer did not say.
func (p *pacer) answered(kind Kind, n int, remainingRequests, remainingObjects float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.releaseLocked(kind, n)
	now := p.clock.Now()
	drain := func(l *rate.Limiter, remaining float64, outstanding int) {
		if remaining < 0 {
			return
		}
		if excess := int(l.TokensAt(now) - (remaining - float64(outstanding))); excess > 0 {
			l.ReserveN(now, min(excess, l.Burst()))
		}
	}
	drain(p.requests, remainingRequests, p.outstanding[kindRequests])
	drain(p.kinds[kind], remainingObjects, p.outstanding[kind])
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
