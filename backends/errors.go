package backends

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
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

// Rejected is one object that a backend did not purge, and why.
type Rejected struct {
	// Object is the object as the backend sent it, or would have: a
	// canonical absolute URL, a tag, a CP code.
	Object string
	// Reason says why it was not purged: the service's refusal, or why
	// it could not be sent.
	Reason string
}

// RejectedError reports objects that a backend's service refused by name,
// or that could never be sent (a site-relative path with no hostname, a tag
// the service does not accept), while the rest of the batch was purged.
// Use it in a backend whose service refuses single objects of a request,
// wrapped in [Permanent], since retrying cannot help, and in [Partial]
// with the refused objects as the Request held them (Rejected holds them
// as they were sent). Callers find it with errors.As:
//
//	var rej *backends.RejectedError
//	if errors.As(err, &rej) {
//		for _, r := range rej.Rejected { ... }
//	}
//
// The Akamai and Cloudflare backends' RejectedError is this type.
type RejectedError struct {
	// Backend is the backend's kind, such as "akamai": it starts the
	// message.
	Backend string
	// Rejected lists each refused object with its reason.
	Rejected []Rejected
	// Purged is the number of objects of the batch that were accepted.
	Purged int
}

// Error names the backend, the counts, and the first five refused objects
// with their reasons.
func (e *RejectedError) Error() string {
	var b strings.Builder
	if e.Backend != "" {
		b.WriteString(e.Backend + ": ")
	}
	fmt.Fprintf(&b, "%d objects not purged (%d purged): ", len(e.Rejected), e.Purged)
	for i, r := range e.Rejected {
		if i == 5 {
			fmt.Fprintf(&b, "; and %d more", len(e.Rejected)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%q: %s", r.Object, r.Reason)
	}
	return b.String()
}

// ParseRetryAfter reads the Retry-After header of h, delay-seconds (a
// whole number) or an HTTP date, as the wait it asks for from now: a date
// in the past gives a wait of 0 or less. It reports false when the header
// is missing or holds neither. Use it in a backend that honours an HTTP
// API's Retry-After, and bound the wait to what the API documents before
// marking the error with [RetryAfter].
func ParseRetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		s, err := strconv.ParseInt(v, 10, 64)
		if err != nil || s > int64(math.MaxInt64/time.Second) {
			return time.Duration(math.MaxInt64), true // more than anyone waits
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.Sub(now), true
	}
	return 0, false
}

// isDigits reports whether s is made of ASCII digits only.
func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
