package akamai

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gormpurge/gormpurge/backends"
)

// DefaultRateLimitWait is how long the backend waits after a 429 whose
// answer says nothing about when the bucket refills.
const DefaultRateLimitWait = 5 * time.Second

// Pace waits until the client-side token buckets hold the tokens r needs:
// one request token per request it will take and one object token per URL
// or tag. The dispatcher calls it before each call to Purge. When ctx ends
// first, Pace returns its error. When ctx's deadline would come before the
// tokens, Pace returns at once an error matching [ErrRateLimited] that
// backends.RetryDelay reads the wait from. Either way, the tokens of the
// request it could not wait for are not taken. Call Purge with r at once:
// until its requests are sent, the pacer counts them as on their way.
func (b *Backend) Pace(ctx context.Context, r backends.Request) error {
	for _, kind := range []Kind{KindURL, KindTag} {
		objs, _ := b.objects(kind, r)
		for _, chunk := range b.plan(kind, objs) {
			if err := b.wait(ctx, kind, len(chunk)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *Backend) wait(ctx context.Context, kind Kind, n int) error {
	err := b.pacer.wait(ctx, kind, n)
	var pe *pacedError
	if errors.As(err, &pe) {
		return backends.RetryAfter(pe.wait, err)
	}
	return err
}

// rateLimitWait returns how long to wait after a 429 before the request of
// n objects fits in Akamai's buckets. It reads the X-Ratelimit-* headers of
// the bucket the answer is about (the request bucket for "Rate Limit
// exceeded", the object bucket for "URL/TAG/CPCODE Rate Limit exceeded"),
// else the answer's rateLimitRemaining for that bucket, and waits
// DefaultRateLimitWait when it cannot tell.
func (b *Backend) rateLimitWait(a *answer, kind Kind, n int) time.Duration {
	h := a.header
	perSecond := func(name string, dflt float64) float64 {
		if v := headerFloat(h, name); v > 0 {
			return v
		}
		return dflt
	}
	objectBucket := a.body.Title != "" && !strings.EqualFold(a.body.Title, "Rate Limit exceeded")
	remaining := func(header string, body bool) float64 {
		if v := headerFloat(h, header); v >= 0 {
			return v
		}
		if body && a.body.RateLimitRemaining != nil && *a.body.RateLimitRemaining >= 0 {
			return *a.body.RateLimitRemaining
		}
		return -1
	}
	var wait float64
	if rem := remaining("X-Ratelimit-Remaining", !objectBucket); rem >= 0 && rem < 1 {
		wait = max(wait, (1-rem)/perSecond("X-Ratelimit-Limit-Per-Second", b.limits.Requests.PerSecond))
	}
	if rem := remaining("X-Ratelimit-Remaining-Objects", objectBucket); rem >= 0 && rem < float64(n) {
		wait = max(wait, (float64(n)-rem)/perSecond("X-Ratelimit-Limit-Per-Second-Objects", b.limits.ForKind(kind).PerSecond))
	}
	if wait <= 0 || math.IsNaN(wait) || wait > 3600 {
		return DefaultRateLimitWait
	}
	// A little over the exact refill, so as not to arrive a hair early.
	return time.Duration(wait*1.05*float64(time.Second)) + 10*time.Millisecond
}

// headerFloat returns the header's value as a number, or -1.
func headerFloat(h http.Header, name string) float64 {
	v, err := strconv.ParseFloat(strings.TrimSpace(h.Get(name)), 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return -1
	}
	return v
}
