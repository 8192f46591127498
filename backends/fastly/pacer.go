package fastly

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/gormpurge/gormpurge/backends"
)

// pacer holds what Fastly said about its rate limits: how long a 429 asked
// purges to wait, and, when no hourly requests remained, until when
// purge_all is held. purge_all is also spaced evenly over the hourly
// budget on the client.
type pacer struct {
	mu          sync.Mutex
	purgesUntil time.Time // after a 429 to a URL or key purge
	hourlyUntil time.Time // no hourly request left, or a 429 to purge_all
	all         *rate.Limiter
}

func newPacer(hourly int) *pacer {
	return &pacer{all: rate.NewLimiter(rate.Every(time.Hour/time.Duration(hourly)), 1)}
}

// Pace waits until Fastly may be sent r: until the wait asked by a 429 to
// an earlier URL or key purge has passed. The dispatcher calls it before
// each call to Purge. URL and key purges do not count against Fastly's
// hourly limit, so nothing else holds them. When ctx's deadline comes
// before the wait ends, Pace returns at once an error matching
// [ErrRateLimited] that backends.RetryDelay reads the wait from; when ctx
// ends first, its error.
func (b *Backend) Pace(ctx context.Context, r backends.Request) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fastly: %w", err)
	}
	if r.Empty() {
		return nil
	}
	return b.pacer.wait(ctx, false)
}

// until returns when the kind of request may be sent.
func (p *pacer) until(hourly bool) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if hourly {
		return p.hourlyUntil
	}
	return p.purgesUntil
}

// wait waits for the time Fastly asked, then, for purge_all (hourly), for
// the client-side spacing.
func (p *pacer) wait(ctx context.Context, hourly bool) error {
	for {
		d := time.Until(p.until(hourly))
		if d <= 0 {
			break
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
	if !hourly {
		return nil
	}
	res := p.all.Reserve()
	d := res.Delay()
	if deadline, ok := ctx.Deadline(); ok && d > 0 && time.Until(deadline) < d {
		res.Cancel()
		return backends.RetryAfter(d, fmt.Errorf("%w: purge_all is spaced over the hourly limit: next in %v", ErrRateLimited, d.Round(time.Millisecond)))
	}
	if err := sleep(ctx, d); err != nil {
		res.Cancel()
		return err
	}
	return nil
}

// sleep waits d, or returns RetryAfter at once when ctx's deadline comes
// first, or ctx's error when it ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
		return backends.RetryAfter(d, fmt.Errorf("%w: Fastly asked to wait %v", ErrRateLimited, d.Round(time.Millisecond)))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("fastly: waiting for the rate limit: %w", ctx.Err())
	}
}

// observe records what an answer says about the rate limits: a 429 holds
// purges of its kind for its wait; an answer saying that no hourly
// requests remain holds purge_all until the window resets, and one saying
// that some remain lets it go.
func (p *pacer) observe(h http.Header, status int, hourly bool, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if reset, ok := exhausted(h); ok {
		p.hourlyUntil = later(p.hourlyUntil, reset)
	} else if h.Get(headerRemaining) != "" && status != http.StatusTooManyRequests {
		p.hourlyUntil = time.Time{}
	}
	if status != http.StatusTooManyRequests {
		return
	}
	until := now.Add(rateLimitWait(h, now))
	if hourly {
		p.hourlyUntil = later(p.hourlyUntil, until)
	} else {
		p.purgesUntil = later(p.purgesUntil, until)
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
