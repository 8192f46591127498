package dispatcher

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// RetryPolicy says how often and how long a failed purge is tried again.
// One policy type serves the dispatcher ([WithRetry]), the outbox relay
// (outbox.WithRetry) and the gormpurge command, so all three wait the same
// way. The zero value is not valid: start from [DefaultRetryPolicy].
//
// The wait before attempt n+1 (after n failures) is drawn uniformly from
// [b/2, b], where b = min(MaxBackoff, InitialBackoff × 2^(n−1)): "equal
// jitter", so that callers that failed together do not retry together, and
// no wait is ever longer than MaxBackoff nor shorter than half of b. A
// backend's [backends.RetryAfter] replaces the computed wait.
type RetryPolicy struct {
	// InitialBackoff is the nominal wait after the first failure. It must
	// be positive.
	InitialBackoff time.Duration
	// MaxBackoff caps every wait. It must be at least InitialBackoff.
	MaxBackoff time.Duration
	// MaxAttempts is how many times a purge is tried, the first attempt
	// included, before it fails for good; 1 disables retries.
	MaxAttempts int
	// MaxElapsed bounds the time from the first attempt to the last: no
	// retry starts whose wait would end past it. 0 means no bound besides
	// MaxAttempts.
	MaxElapsed time.Duration
}

// DefaultRetryPolicy returns the dispatcher's default policy:
// [DefaultInitialBackoff], [DefaultMaxBackoff], [DefaultMaxAttempts] and
// [DefaultMaxElapsed].
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		InitialBackoff: DefaultInitialBackoff,
		MaxBackoff:     DefaultMaxBackoff,
		MaxAttempts:    DefaultMaxAttempts,
		MaxElapsed:     DefaultMaxElapsed,
	}
}

// Backoff returns the wait after the given number of failed attempts (at
// least 1), randomised as [RetryPolicy] describes. It is shorthand for
// p.BackoffJitter(failures, rand.Float64()).
func (p RetryPolicy) Backoff(failures int) time.Duration {
	return p.BackoffJitter(failures, rand.Float64())
}

// BackoffJitter is [RetryPolicy.Backoff] with the random number given: r in
// [0, 1) picks the wait within [b/2, b]. Use it where the randomness must be
// fixed, as in tests.
func (p RetryPolicy) BackoffJitter(failures int, r float64) time.Duration {
	b := p.InitialBackoff
	for i := 1; i < failures && b < p.MaxBackoff; i++ {
		b *= 2
	}
	b = min(b, p.MaxBackoff)
	return b/2 + time.Duration(float64(b-b/2)*r)
}

// Validate returns an error naming each invalid field, with the shorthand
// option that sets it (the dispatcher's and the outbox's share these
// names), and saying how to fix it; nil if p is valid. The constructors
// that take a policy call it.
func (p RetryPolicy) Validate() error {
	var errs []error
	if p.InitialBackoff <= 0 || p.MaxBackoff < p.InitialBackoff {
		errs = append(errs, fmt.Errorf("WithBackoff(%v, %v) (RetryPolicy.InitialBackoff, MaxBackoff): need 0 < initial <= max", p.InitialBackoff, p.MaxBackoff))
	}
	if p.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("WithMaxAttempts(%d) (RetryPolicy.MaxAttempts): use 1 to disable retries", p.MaxAttempts))
	}
	if p.MaxElapsed < 0 {
		errs = append(errs, fmt.Errorf("WithMaxElapsed(%v) (RetryPolicy.MaxElapsed): use 0 for no bound", p.MaxElapsed))
	}
	return errors.Join(errs...)
}
