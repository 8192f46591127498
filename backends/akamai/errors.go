package akamai

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gormpurge/gormpurge/backends"
)

// Error is an answer from Fast Purge other than 201: Akamai's problem
// details, with the request they answer. Callers branch on it with
// errors.As; the dispatcher sees it wrapped in backends.Permanent (400, 401,
// 403, 415) or backends.RetryAfter (429), or bare (retried with backoff).
type Error struct {
	// Status is the HTTP status code, such as 403.
	Status int
	// Title, Detail, SupportID and DescribedBy are Akamai's problem
	// fields. For a 403, Detail names the URL the API client may not purge.
	Title       string
	Detail      string
	SupportID   string
	DescribedBy string
	// Kind, Action and Network say which endpoint answered, and Objects
	// how many objects the request held.
	Kind    Kind
	Action  Action
	Network Network
	Objects int
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "akamai: %s %s on %s (%d objects): %d", e.Action, e.Kind, e.Network, e.Objects, e.Status)
	if e.Title != "" {
		b.WriteString(" " + e.Title)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	if e.SupportID != "" {
		b.WriteString(" (supportId " + e.SupportID + ")")
	}
	if hint := statusHint(e.Status); hint != "" {
		b.WriteString("; " + hint)
	}
	return b.String()
}

// statusHint says what a status usually means for the person reading the
// log.
func statusHint(status int) string {
	switch status {
	case 401:
		return "the request signature was refused: check the credentials, and that this machine's clock is right"
	case 403:
		return "the API client is not authorised to purge this object: check the hostnames and CP codes in its Akamai API client"
	case 415:
		return "the API refused the content type"
	case 429:
		return "Akamai's rate limit is exhausted: the purge waits for the bucket to refill"
	case 507:
		return "Akamai's purge queue is full: the purge is retried"
	}
	return ""
}

// Rejected is one object that was not purged, and why: a
// [backends.Rejected].
type Rejected = backends.Rejected

// RejectedError reports objects that Akamai refused, or that could never
// be sent (a site-relative path with no hostname, a forbidden character in
// a tag), while the rest of the batch was purged: a
// [backends.RejectedError] whose Backend is "akamai". It is returned
// wrapped in backends.Permanent, since retrying cannot help, and, by
// [Backend.Purge], in backends.Partial: backends.FailedObjects then
// returns the refused objects as the purged Request held them, where
// Rejected holds them as they were sent.
type RejectedError = backends.RejectedError

// ErrRateLimited is matched by the error of a purge that did not fit in the
// rate limit, on the client's own pacing or on a 429 from Akamai.
var ErrRateLimited = errors.New("akamai: rate limit reached")
