package fastly

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gormpurge/gormpurge/backends"
)

// The API and the limits the backend relies on.
const (
	// DefaultEndpoint is the base URL of Fastly's API: "Almost all API
	// endpoints are served on the api.fastly.com domain"
	// (https://docs.fastly.com/api, "Domain").
	DefaultEndpoint = "https://api.fastly.com"

	// MaxKeysPerRequest is the most surrogate keys one batch purge may
	// name: "Up to 256 surrogate keys can be purged in one batch request"
	// (POST /service/{service_id}/purge,
	// https://www.fastly.com/documentation/reference/api/purging/).
	MaxKeysPerRequest = 256

	// DefaultHourlyLimit is Fastly's limit of non-read API requests per
	// hour, which purge_all counts against and URL and surrogate-key
	// purges do not: "You can make up to 1,000 non-read requests per
	// hour ... Surrogate key and URL purge requests are also not limited,
	// but purge all requests count against the per-hour rate limit"
	// (https://docs.fastly.com/api/, "Rate limiting").
	DefaultHourlyLimit = 1000

	// DefaultConcurrency is how many URL purges one call to Purge sends at
	// once. Fastly purges URLs one request each (POST /purge/{cached_url})
	// and documents no limit on them; this bounds the connections a batch
	// opens.
	DefaultConcurrency = 8

	// MaxURLRequests is the most URL purge requests one call to Purge
	// sends: Limits allows this many URLs, divided by the number of
	// hostnames. It is the backend's choice, not Fastly's, so that a
	// batch sent DefaultConcurrency at a time finishes well within the
	// dispatcher's attempt timeout.
	MaxURLRequests = 500

	// DefaultRequestTimeout bounds one HTTP request of the default client,
	// for callers whose context has no deadline.
	DefaultRequestTimeout = time.Minute

	// DefaultRateLimitWait is how long the backend waits after a 429 whose
	// answer says neither Retry-After nor when the rate-limit window
	// resets.
	DefaultRateLimitWait = 5 * time.Second
)

// Headers of Fastly's API.
const (
	// headerKey carries the API token: "include it in your request as a
	// Fastly-Key HTTP header" (https://docs.fastly.com/api, "Authentication").
	headerKey = "Fastly-Key"
	// headerSoft makes a purge soft: "If present, this header triggers
	// the purge to be 'soft' ... Typically set to "1""
	// (https://www.fastly.com/documentation/reference/api/purging/).
	headerSoft = "Fastly-Soft-Purge"
	// headerRemaining and headerReset report the hourly rate limit: "The
	// Fastly-RateLimit-Remaining header provides the number of API
	// requests remaining in the current rate limit window. The
	// Fastly-RateLimit-Reset provides the time at which the current rate
	// limit window resets in UTC epoch seconds"
	// (https://docs.fastly.com/api/, "Rate limiting").
	headerRemaining = "Fastly-RateLimit-Remaining"
	headerReset     = "Fastly-RateLimit-Reset"
)

// EnvAPIToken and EnvServiceID are the environment variables [New] reads
// when [WithAPIToken] or [WithServiceID] is left out, as Fastly's CLI does
// (https://www.fastly.com/documentation/reference/cli/service/purge:
// "--service-id ... falls back to FASTLY_SERVICE_ID").
const (
	EnvAPIToken  = "FASTLY_API_TOKEN"
	EnvServiceID = "FASTLY_SERVICE_ID"
)

// maxAnswer bounds how much of an answer is read.
const maxAnswer = 1 << 20

// answer is an HTTP answer from the API.
type answer struct {
	status int
	header http.Header
	raw    []byte
}

// errorBody is the shape of Fastly's API errors.
type errorBody struct {
	Msg    string `json:"msg"`
	Detail string `json:"detail"`
}

// okBody is the answer to a URL purge and to purge_all: {"status":"ok",
// "id":"..."} ("When you purge using the API, the purge ID is returned in
// the response", https://docs.fastly.com/en/guides/purging-via-api).
type okBody struct {
	Status string `json:"status"`
	ID     string `json:"id"`
}

// post sends one POST to the API at path (already escaped) with body (nil
// for none), and returns the answer, or an error when there is none.
func (b *Backend) post(ctx context.Context, path string, body []byte, soft bool) (*answer, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.endpoint+path, rd)
	if err != nil {
		return nil, &buildError{fmt.Errorf("fastly: building the request to %s: %w", backends.RedactURL(b.endpoint+path), redactErr(err))}
	}
	req.Header.Set(headerKey, b.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if soft {
		req.Header.Set(headerSoft, "1")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fastly: POST %s: %w", backends.RedactURL(b.endpoint+path), redactErr(err))
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
		_ = resp.Body.Close()
	}()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("fastly: reading the answer to POST %s (status %d): %w", backends.RedactURL(b.endpoint+path), resp.StatusCode, err)
	}
	return &answer{status: resp.StatusCode, header: resp.Header, raw: raw}, nil
}

// buildError is the failure to build a request, which retrying cannot fix.
type buildError struct{ err error }

func (e *buildError) Error() string { return e.err.Error() }
func (e *buildError) Unwrap() error { return e.err }

// failed returns the outcome of a request that got no answer: err is
// temporary, unless the request could not be built.
func failed(err error) outcome {
	var be *buildError
	if errors.As(err, &be) {
		return outcome{err: backends.Permanent(err), cause: err}
	}
	return outcome{err: err, cause: err}
}

// redactErr drops the URL of a *url.Error, which the caller names
// redacted, and keeps what it wraps for errors.Is.
func redactErr(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// classify turns an answer other than 200 into an error for the
// dispatcher: 429 backends.RetryAfter, 5xx and 408 bare (temporary), any
// other refusal backends.Permanent. op and object say what was asked.
func (b *Backend) classify(a *answer, op, object string) error {
	return b.answerOutcome(a, op, object).err
}

// answerOutcome is classify's outcome: the classified error and the
// *Error it marks.
func (b *Backend) answerOutcome(a *answer, op, object string) outcome {
	e := &Error{Status: a.status, Op: op, Object: object, ServiceID: b.serviceID}
	var eb errorBody
	if json.Unmarshal(a.raw, &eb) == nil {
		e.Msg, e.Detail = b.scrub(eb.Msg), b.scrub(eb.Detail)
	} else {
		// Not Fastly's JSON (a proxy's error page, say): keep its start.
		e.Msg = b.scrub(strings.TrimSpace(string(a.raw[:min(len(a.raw), 200)])))
	}
	switch {
	case a.status == http.StatusTooManyRequests:
		cause := fmt.Errorf("%w: %w", ErrRateLimited, e)
		return outcome{err: backends.RetryAfter(rateLimitWait(a.header, time.Now()), cause), cause: cause}
	case a.status >= 500 || a.status == http.StatusRequestTimeout:
		return outcome{err: e, cause: e}
	default:
		return outcome{err: backends.Permanent(e), cause: e}
	}
}

// scrub removes the token from text taken from an answer.
func (b *Backend) scrub(s string) string {
	if b.token == "" {
		return s
	}
	return strings.ReplaceAll(s, b.token, "[REDACTED]")
}

// rateLimitWait returns how long to wait after a 429: Retry-After (seconds
// or an HTTP date, read by backends.ParseRetryAfter) when given, else the
// time until Fastly-RateLimit-Reset when no requests remain, else
// DefaultRateLimitWait. The wait is at least a second and at most an hour
// and a minute.
func rateLimitWait(h http.Header, now time.Time) time.Duration {
	wait, _ := backends.ParseRetryAfter(h, now)
	if wait <= 0 {
		if reset, ok := exhausted(h); ok {
			wait = reset.Sub(now)
		}
	}
	if wait <= 0 {
		wait = DefaultRateLimitWait
	}
	return min(max(wait, time.Second), time.Hour+time.Minute)
}

// exhausted reports whether the answer says that no requests remain in the
// hourly window, and when the window resets.
func exhausted(h http.Header) (time.Time, bool) {
	rem, err := strconv.Atoi(strings.TrimSpace(h.Get(headerRemaining)))
	if err != nil || rem > 0 {
		return time.Time{}, false
	}
	reset, err := strconv.ParseInt(strings.TrimSpace(h.Get(headerReset)), 10, 64)
	if err != nil || reset <= 0 {
		return time.Time{}, false
	}
	return time.Unix(reset, 0), true
}
