package fastly

import (
	"errors"
	"fmt"
	"strings"
)

// Error is an answer from Fastly's API other than 200. Callers branch on it
// with errors.As; the dispatcher sees it wrapped in backends.Permanent
// (400, 401, 403, 404), backends.RetryAfter (429), or bare (5xx, retried
// with backoff).
type Error struct {
	// Status is the HTTP status code, such as 403.
	Status int
	// Msg and Detail are Fastly's error fields.
	Msg    string
	Detail string
	// Op is what was asked: "purge url", "purge keys" or "purge_all".
	Op string
	// Object is the cached URL of a URL purge, or a count of keys.
	Object string
	// ServiceID is the backend's service.
	ServiceID string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fastly: %s", e.Op)
	if e.Object != "" {
		b.WriteString(" " + e.Object)
	}
	fmt.Fprintf(&b, ": %d", e.Status)
	if e.Msg != "" {
		b.WriteString(" " + e.Msg)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	if hint := e.hint(); hint != "" {
		b.WriteString("; " + hint)
	}
	return b.String()
}

// hint says what a status usually means for the person reading the log.
func (e *Error) hint() string {
	switch e.Status {
	case 400:
		return "Fastly refused the request"
	case 401:
		return "the API token was refused: check WithAPIToken or " + EnvAPIToken
	case 403:
		return "the API token may not do this: it needs the purge_select scope (purge_all for everything) on service " + e.ServiceID
	case 404:
		if e.Op != opURL {
			return "no such service: check WithServiceID or " + EnvServiceID + " (" + e.ServiceID + ")"
		}
	case 429:
		return "Fastly's rate limit is reached: the purge waits"
	}
	return ""
}

// The operations an [Error] names.
const (
	opURL  = "purge url"
	opKeys = "purge keys"
	opAll  = "purge_all"
)

// Failure is one object that was not purged, and why.
type Failure struct {
	// Object is the URL or tag as the Request held it.
	Object string
	// Err is the error, marked backends.Permanent or backends.RetryAfter
	// as it was classified.
	Err error

	cause error // Err without its marks
}

// FailedError reports the objects of a call to Purge that were not purged:
// refused before sending (no canonical form, a path without hostnames) or
// failed at Fastly. It is returned wrapped in backends.Partial when the
// rest was purged, and in backends.Permanent or backends.RetryAfter as its
// failures are together. It unwraps to each distinct failure's error
// without its mark (such as an [*Error]), so that errors.As and errors.Is
// find them and the marks of one failure do not classify the others.
type FailedError struct {
	// Failed lists each object with its error.
	Failed []Failure
	// Purged is the number of purge requests that Fastly accepted.
	Purged int
}

func (e *FailedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fastly: %d objects not purged (%d purge requests accepted): ", len(e.Failed), e.Purged)
	for i, f := range e.Failed {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(e.Failed)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%q: %v", f.Object, f.cause)
	}
	return b.String()
}

// Unwrap returns the distinct errors of the failures, without their marks.
func (e *FailedError) Unwrap() []error {
	out, _ := e.distinct()
	return out
}

// distinct returns the distinct causes of the failures, and their errors
// as classified.
func (e *FailedError) distinct() (causes, classified []error) {
	seen := make(map[error]bool)
	for _, f := range e.Failed {
		if !seen[f.cause] {
			seen[f.cause] = true
			causes = append(causes, f.cause)
			classified = append(classified, f.Err)
		}
	}
	return causes, classified
}

// ErrRateLimited is matched by the error of a purge held back by a rate
// limit: a 429 from Fastly, or the backend's own pacing.
var ErrRateLimited = errors.New("fastly: rate limit reached")

// ErrNoHostname is matched by the failure of a site-relative path purged
// without [WithHostnames].
var ErrNoHostname = errors.New("fastly: a site-relative path needs the site's hostnames: pass fastly.WithHostnames(...), or gormpurge.WithBaseURL on the plugin")
