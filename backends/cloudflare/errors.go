package cloudflare

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gormpurge/gormpurge/backends"
)

// APIError is one entry of the errors of Cloudflare's answer.
type APIError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	// Chain holds the entry's error_chain: the causes Cloudflare gives,
	// such as 6111 "Invalid format for Authorization header" under 6003.
	Chain []APIError `json:"error_chain,omitempty"`
}

// Error is an answer from purge_cache other than success: the HTTP status
// and Cloudflare's error codes and messages, with the request they answer.
// Callers branch on it with errors.As; the dispatcher sees it wrapped in
// backends.Permanent (refused token, unknown zone, invalid request),
// backends.RetryAfter (429) or bare (5xx: retried with backoff). It never
// holds the token.
type Error struct {
	// Status is the HTTP status code, such as 403.
	Status int
	// Errors are Cloudflare's, in the order given.
	Errors []APIError
	// Kind is what the request purged: "files", "tags" or "everything";
	// Objects how many objects it held.
	Kind    string
	Objects int
	// RetryAfter is the wait a 429 asked for.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cloudflare: purge of %s (%d objects): %d", e.Kind, e.Objects, e.Status)
	for i, x := range e.Errors {
		sep := ", "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(&b, "%s%d %s", sep, x.Code, x.Message)
		for _, c := range x.Chain {
			fmt.Fprintf(&b, " (%d %s)", c.Code, c.Message)
		}
	}
	if hint := e.hint(); hint != "" {
		b.WriteString("; " + hint)
	}
	return b.String()
}

// Codes returns every error code of the answer, causes included.
func (e *Error) Codes() []int {
	var out []int
	var walk func([]APIError)
	walk = func(es []APIError) {
		for _, x := range es {
			out = append(out, x.Code)
			walk(x.Chain)
		}
	}
	walk(e.Errors)
	return out
}

// Cloudflare's error codes the backend acts on. Cloudflare documents its
// codes per product, not in one list; these are those its purge_cache and
// API gateway answers carry.
var (
	// authCodes refuse the token: 6003 "Invalid request headers" (6100 to
	// 6111 for the header at fault), 9103 "Unknown X-Auth-Key or
	// X-Auth-Email", 9106 "Missing X-Auth-Key, X-Auth-Email or
	// Authorization headers", 9109 "Invalid access token" or
	// "Unauthorized to access requested resource", 10000 "Authentication
	// error", 10001 "Forbidden".
	authCodes = []int{6003, 6100, 6101, 6102, 6103, 6111, 9103, 9106, 9109, 10000, 10001}
	// zoneCodes refuse the zone: 7000 "No route for that URI", 7003
	// "Could not route to ..., perhaps your object identifier is
	// invalid?", 1001 "Invalid zone identifier".
	zoneCodes = []int{1001, 7000, 7003}
	// rateCodes ask to slow down: 971 "Please wait and consider
	// throttling your request speed", on the API's 429s.
	rateCodes = []int{971}
	// codeTagsNeedEnterprise is 1107 "Only enterprise zones can purge by
	// tag.".
	codeTagsNeedEnterprise = 1107
)

func (e *Error) has(codes ...int) bool {
	return slices.ContainsFunc(e.Codes(), func(c int) bool { return slices.Contains(codes, c) })
}

// hint says what a refusal usually means for the person reading the log.
func (e *Error) hint() string {
	switch {
	case e.Status == 429 || e.has(rateCodes...):
		return "the account's purge rate limit is exhausted: the purge waits for the bucket to refill (set cloudflare.WithPlan to the zone's plan)"
	case e.has(codeTagsNeedEnterprise):
		return "the zone's plan cannot purge by tag: purge URLs, or upgrade the zone"
	case e.has(authCodes...) || e.Status == 401 || e.Status == 403:
		return "the API token was refused: check " + EnvAPIToken + " or WithAPIToken, and that the token has the Zone > Cache Purge > Purge permission on this zone"
	case e.has(zoneCodes...) || e.Status == 404:
		return "the zone was not found: check " + EnvZoneID + " or WithZone (the zone's ID, not its name)"
	case e.Status >= 500:
		return "Cloudflare failed: the purge is retried"
	}
	return ""
}

// Rejected is one object that was not purged, and why: a
// [backends.Rejected].
type Rejected = backends.Rejected

// RejectedError reports objects that Cloudflare refused by name, or that
// could never be sent (a site-relative path with no hostname, a tag
// Cloudflare does not accept), while the rest of the batch was purged: a
// [backends.RejectedError] whose Backend is "cloudflare". It is returned
// wrapped in backends.Permanent and backends.Partial:
// backends.FailedObjects returns the refused objects as the purged Request
// held them, where Rejected holds them as they were sent.
type RejectedError = backends.RejectedError
