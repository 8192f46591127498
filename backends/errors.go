package backends

import (
	"errors"
	"fmt"
	"time"
)

// Permanent marks err as a failure that retrying cannot fix, such as an HTTP
// 403 from a cache or an Akamai 400: the dispatcher reports it and does not
// retry. Permanent(nil) returns nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// [Permanent].
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return "permanent: " + e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// RetryAfter marks err as temporary with a known wait, such as Akamai's 429
// with rate-limit headers: the dispatcher waits at least d before the next
// attempt. RetryAfter(d, nil) returns nil.
func RetryAfter(d time.Duration, err error) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{after: d, err: err}
}

// RetryDelay returns the wait set by [RetryAfter] on err or an error it wraps,
// and whether there was one.
func RetryDelay(err error) (time.Duration, bool) {
	var r *retryAfterError
	if errors.As(err, &r) {
		return r.after, true
	}
	return 0, false
}

type retryAfterError struct {
	after time.Duration
	err   error
}

func (e *retryAfterError) Error() string {
	return fmt.Sprintf("retry after %s: %s", e.after, e.err.Error())
}
func (e *retryAfterError) Unwrap() error { return e.err }

// Partial marks err as the failure of only some objects of a batch: failed
// lists them, in the form they had in the Request passed to Purge, and the
// rest of the batch was purged. Use it in a Backend that purges what it can
// and reports the objects it could not, such as those a CDN refused, so that
// the dispatcher counts and reports only those as failed. It combines with
// [Permanent] and [RetryAfter] in either order; the message is err's.
// Partial(_, nil) returns nil.
func Partial(failed Request, err error) error {
	if err == nil {
		return nil
	}
	return &partialError{failed: failed, err: err}
}

// FailedObjects returns the objects set by [Partial] on err or an error it
// wraps, and whether there were any. When it returns false, err is about the
// whole batch: a Partial with no objects counts as such.
func FailedObjects(err error) (Request, bool) {
	var p *partialError
	if errors.As(err, &p) && !p.failed.Empty() {
		return p.failed, true
	}
	return Request{}, false
}

type partialError struct {
	failed Request
	err    error
}

func (e *partialError) Error() string { return e.err.Error() }
func (e *partialError) Unwrap() error { return e.err }
