package akamai

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// refillMargin is the share of Akamai's refill rates that the pacer leaves
// unused: 1%. It covers the difference between the client's clock and
// Akamai's, and the rounding of the X-Ratelimit-* headers, and is the only
// throughput the pacing gives up once a burst's initial bucket is spent.
// The skew between reserving tokens here and spending them at Akamai needs
// no margin: the pacer accounts for it exactly (see [bucket]).
const refillMargin = 0.01

// tokenEpsilon absorbs floating-point error in refills, so that a waiter
// woken when its tokens are due is not sent back to sleep for a billionth
// of a token.
const tokenEpsilon = 1e-9

// pacer holds the client-side copy of Fast Purge's token buckets. It takes
// a request's tokens all at once, as Akamai does, and only when they are all
// there, so that requests are sent at the rate the account allows and not
// answered with 429.
//
// A request's tokens are taken here when it is reserved, and at Akamai when
// it arrives, later. While Akamai's bucket is full, the tokens it would
// have earned in between are lost; the client's bucket must lose them too or
// it runs ahead of Akamai's. So each bucket counts the tokens of requests
// that Akamai has not been seen to answer, and stops refilling when its
// tokens and those together reach the burst: then Akamai's bucket may be
// full. This holds whatever the latency, the number of requests in flight
// and the order in which they arrive.
//
// Akamai reports what its buckets hold in every answer. The pacer lowers its
// own buckets to that, less the tokens of requests reserved and not yet
// sent, so that it corrects for other clients of the account.
type pacer struct {
	clock Clock

	// mu makes reading the clock and reserving from both buckets one step
	// (a request takes its tokens from both buckets at once), and guards
	// the buckets.
	mu       sync.Mutex
	requests *bucket
	kinds    map[Kind]*bucket
}

// bucket is the client's copy of one of Akamai's token buckets.
//
// Tokens are counted cumulatively, so that reservations queue in order:
// earned is every token the bucket has held (the initial burst, refills,
// refunds, less corrections) and taken every token reserved. The bucket
// holds earned - taken, less than zero while reservations wait. A
// reservation is due once earned reaches its position, taken just after
// it was made.
//
// Akamai's copy holds at least the client's tokens plus those of requests
// Akamai has not seen yet: reserved and unsent, or in flight. Akamai's
// bucket stops filling only when full, so the client's stops when its
// tokens plus unsent plus inFlight reach the burst. Unsent tokens count
// only while a request is in flight: a request is sent as soon as its
// tokens are there, and tokens reserved by a Pace that no Purge followed
// must not stop the bucket for good.
type bucket struct {
	burst    float64
	rate     float64 // tokens per second, Akamai's less refillMargin
	earned   float64
	taken    float64
	unsent   float64 // reserved for requests not sent yet
	inFlight float64 // of requests sent and not answered
	last     time.Time
}

func newBucket(b Bucket, now time.Time) *bucket {
	return &bucket{burst: float64(b.Burst), rate: b.PerSecond * (1 - refillMargin), earned: float64(b.Burst), last: now}
}

// advance refills the bucket up to now.
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

// reserve takes n tokens for a request not sent yet and returns the
// reservation's position.
func (b *bucket) reserve(n float64) float64 {
	b.taken += n
	b.unsent += n
	return b.taken
}

// delay is how long the reservation at pos waits for its tokens if the
// bucket keeps refilling; 0 when they are there.
func (b *bucket) delay(pos float64) time.Duration {
	short := pos - b.earned
	if short <= tokenEpsilon {
		return 0
	}
	return time.Duration(short / b.rate * float64(time.Second))
}

// refund gives back n tokens reserved for a request that Akamai never saw,
// or that it refused without spending them.
func (b *bucket) refund(n float64) { b.earned += n }

// sub returns v - n, not below zero.
func sub(v, n float64) float64 { return max(0, v-n) }

// correct lowers the bucket to what Akamai says its bucket holds
// (remaining, or < 0 when the answer did not say) less the tokens Akamai
// cannot have counted yet: those of requests not sent.
func (b *bucket) correct(remaining float64) {
	if remaining < 0 {
		return
	}
	if limit := b.taken + remaining - b.unsent; b.earned > limit {
		b.earned = limit
	}
}

func newPacer(l RateLimits, clock Clock) *pacer {
	now := clock.Now()
	return &pacer{
		clock:    clock,
		requests: newBucket(l.Requests, now),
		kinds: map[Kind]*bucket{
			KindURL:    newBucket(l.URLs, now),
			KindTag:    newBucket(l.Tags, now),
			KindCPCode: newBucket(l.CPCodes, now),
		},
	}
}

// wait takes one request token and n tokens of kind, waiting on the clock
// until they are there. The caller then sends the request ([pacer.sending])
// or gives the tokens back ([pacer.unsend]). When ctx has a deadline that
// comes before the tokens, it takes nothing and returns at once a
// *pacedError carrying the wait, so that a caller with a short deadline is
// told when to come back instead of timing out. It returns ctx's error,
// having taken nothing, if ctx ends while waiting. The deadline, in real
// time, is compared with the wait on the pacer's clock: with a fast test
// clock that errs on the side of waiting.
func (p *pacer) wait(ctx context.Context, kind Kind, n int) error {
	objs := p.kinds[kind]
	if float64(n) > objs.burst {
		return fmt.Errorf("%w: %d %s objects in one request, more than the bucket's %d", ErrRateLimited, n, kind, int(objs.burst))
	}
	p.mu.Lock()
	p.advanceLocked()
	reqPos, objPos := p.requests.reserve(1), objs.reserve(float64(n))
	delay := max(p.requests.delay(reqPos), objs.delay(objPos))
	if deadline, ok := ctx.Deadline(); ok && delay > 0 && time.Until(deadline) < delay {
		p.unsendLocked(kind, 1, n)
		p.mu.Unlock()
		return &pacedError{wait: delay, kind: kind, n: n}
	}
	p.mu.Unlock()
	// The delay assumes that the buckets keep refilling; they may not (a
	// full bucket at Akamai, a correction from an answer), so look again
	// after each sleep.
	for delay > 0 {
		if err := p.clock.Sleep(ctx, delay); err != nil {
			p.unsend(kind, 1, n)
			return err
		}
		p.mu.Lock()
		p.advanceLocked()
		delay = max(p.requests.delay(reqPos), objs.delay(objPos))
		p.mu.Unlock()
	}
	return nil
}

func (p *pacer) advanceLocked() {
	now := p.clock.Now()
	p.requests.advance(now)
	for _, b := range p.kinds {
		b.advance(now)
	}
}

// unsend gives back the tokens of reqs requests of n objects of kind in all
// that were reserved and will not be sent.
func (p *pacer) unsend(kind Kind, reqs, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unsendLocked(kind, reqs, n)
}

func (p *pacer) unsendLocked(kind Kind, reqs, n int) {
	p.advanceLocked()
	for _, x := range []struct {
		b *bucket
		n float64
	}{{p.requests, float64(reqs)}, {p.kinds[kind], float64(n)}} {
		x.b.unsent = sub(x.b.unsent, x.n)
		x.b.refund(x.n)
	}
}

// sending records that a request of kind, for which n object tokens were
// reserved, is on its way.
func (p *pacer) sending(kind Kind, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.advanceLocked()
	for _, x := range []struct {
		b *bucket
		n float64
	}{{p.requests, 1}, {p.kinds[kind], float64(n)}} {
		x.b.unsent = sub(x.b.unsent, x.n)
		x.b.inFlight += x.n
	}
}

// lost records that a request sent with n object tokens got no answer: it
// may or may not have reached Akamai.
func (p *pacer) lost(kind Kind, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.advanceLocked()
	p.requests.inFlight = sub(p.requests.inFlight, 1)
	p.kinds[kind].inFlight = sub(p.kinds[kind].inFlight, float64(n))
}

// answered records Akamai's answer to a request of kind sent with n object
// tokens. A 429 spent nothing at Akamai: its tokens come back. keep of them
// stay reserved for objects the answer refused but that will be resent (a
// 413's halves, the rest of a 400 or 403), as Akamai spent none of them
// either. Then the buckets are lowered to what Akamai says remains (< 0 when
// the answer did not say), less what has not been sent.
func (p *pacer) answered(kind Kind, n, keep int, status int, remainingRequests, remainingObjects float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.advanceLocked()
	objs := p.kinds[kind]
	p.requests.inFlight = sub(p.requests.inFlight, 1)
	objs.inFlight = sub(objs.inFlight, float64(n))
	objs.unsent += float64(min(keep, n))
	if status == 429 {
		p.requests.refund(1)
		objs.refund(float64(n))
	}
	p.requests.correct(remainingRequests)
	objs.correct(remainingObjects)
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
