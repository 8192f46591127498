package cloudfront

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/gormpurge/gormpurge/backends"
)

// ThrottleWait is how long a purge waits after CloudFront throttled the
// API (error code Throttling, "Rate exceeded") when the answer carries no
// Retry-After. CloudFront publishes no request rate for its control-plane
// API; AWS's guidance is to retry throttled calls with backoff, which the
// dispatcher does from this wait on.
// https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
const ThrottleWait = 2 * time.Second

// DefaultWaitPoll is how often, by default, the backend asks CloudFront
// whether an invalidation has completed while a purge waits for the
// in-progress limits: the minimum delay of the SDK's own
// InvalidationCompleted waiter (cloudfront.NewInvalidationCompletedWaiter).
const DefaultWaitPoll = 20 * time.Second

// ErrInProgressLimits is wrapped by the error of a purge whose next
// invalidation does not fit in the in-progress limits now; the error is
// backends.RetryAfter the poll interval, and backends.Partial when some
// of the request's invalidations were created.
var ErrInProgressLimits = errors.New("cloudfront: the in-progress limits are full")

// Error is an error answer of the CloudFront API, as the backend reports
// it: the operation, CloudFront's error code and message, the HTTP status
// and the request id to quote to AWS support. Callers branch on it with
// errors.As; the dispatcher sees it marked by its class (see
// [Backend.Purge]).
type Error struct {
	// Op is the API operation, "CreateInvalidation" or "GetInvalidation".
	Op string
	// Code is CloudFront's error code, such as "AccessDenied",
	// "NoSuchDistribution", "InvalidArgument", "Throttling" or
	// "TooManyInvalidationsInProgress"; empty when the answer had none.
	Code string
	// Message is CloudFront's message.
	Message string
	// Status is the HTTP status code; 0 when no answer came.
	Status int
	// RequestID is the x-amz-request-id of the answer.
	RequestID string
	// Distribution is the distribution id.
	Distribution string
	// Paths is the number of invalidation items in the request.
	Paths int
	// Err is the SDK's error.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cloudfront: %s on distribution %s (%d paths)", e.Op, e.Distribution, e.Paths)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": %d", e.Status)
	}
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (request id " + e.RequestID + ")")
	}
	if hint := codeHint(e.Code); hint != "" {
		b.WriteString("; " + hint)
	}
	if e.Code == "" && e.Err != nil { // no answer, or one the SDK could not read: its error says why
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the SDK's error.
func (e *Error) Unwrap() error { return e.Err }

func codeHint(code string) string {
	switch code {
	case "AccessDenied":
		return "the credentials may not invalidate this distribution: grant cloudfront:CreateInvalidation and cloudfront:GetInvalidation on it"
	case "NoSuchDistribution":
		return "check cloudfront.WithDistribution"
	case "SignatureDoesNotMatch", "InvalidClientTokenId", "UnrecognizedClientException", "MissingAuthenticationToken", "IncompleteSignature":
		return "the request signature was refused: check the AWS credentials, and that this machine's clock is right"
	case "TooManyInvalidationsInProgress":
		return "other invalidations of the distribution fill CloudFront's in-progress limits: the purge waits for them"
	case "Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded":
		return "CloudFront throttled the API: the purge waits and retries"
	}
	return ""
}

// permanentCodes are error codes that retrying cannot fix.
var permanentCodes = map[string]bool{
	"AccessDenied": true, "NoSuchDistribution": true, "InvalidArgument": true, "InconsistentQuantities": true,
	"MissingBody": true, "BatchTooLarge": true, "NoSuchInvalidation": true,
	"SignatureDoesNotMatch": true, "InvalidClientTokenId": true, "UnrecognizedClientException": true,
	"MissingAuthenticationToken": true, "IncompleteSignature": true, "AccessDeniedException": true,
	"OptInRequired": true, "InvalidAction": true, "MalformedInput": true,
}

// throttleCodes are error codes of a throttled request.
var throttleCodes = map[string]bool{
	"Throttling": true, "ThrottlingException": true, "TooManyRequestsException": true,
	"RequestLimitExceeded": true, "RequestThrottled": true, "SlowDown": true,
}

// classify turns an error of the SDK into the backend's error, marked for
// the dispatcher: ctx's end as such; AccessDenied, NoSuchDistribution,
// InvalidArgument and refused signatures Permanent; throttling and
// TooManyInvalidationsInProgress RetryAfter; 5xx, InvalidationBatchAlreadyExists
// (a reused CallerReference: the retry has a new one), an expired token
// and network errors bare, to be retried with backoff.
func (b *Backend) classify(ctx context.Context, op string, paths int, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("cloudfront: %s on distribution %s: %w", op, b.distribution, context.Cause(ctx))
	}
	e := &Error{Op: op, Distribution: b.distribution, Paths: paths, Err: err}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		e.Code, e.Message = apiErr.ErrorCode(), apiErr.ErrorMessage()
	}
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		e.RequestID = respErr.ServiceRequestID()
	}
	var httpErr *smithyhttp.ResponseError
	var retryAfter time.Duration
	if errors.As(err, &httpErr) {
		e.Status = httpErr.HTTPStatusCode()
		if resp := httpErr.HTTPResponse(); resp != nil {
			if d, ok := backends.ParseRetryAfter(resp.Header, time.Now()); ok && d > 0 {
				retryAfter = d
			}
		}
	}
	switch {
	case e.Code == "TooManyInvalidationsInProgress":
		return backends.RetryAfter(max(retryAfter, b.poll), e)
	case throttleCodes[e.Code] || e.Status == http.StatusTooManyRequests:
		return backends.RetryAfter(max(retryAfter, ThrottleWait), e)
	case permanentCodes[e.Code]:
		return backends.Permanent(e)
	case e.Status >= 500 || e.Status == http.StatusRequestTimeout || e.Code == "InvalidationBatchAlreadyExists" ||
		e.Code == "ExpiredToken" || e.Code == "RequestExpired" || e.Status == 0:
		return e
	case e.Status >= 400:
		return backends.Permanent(e)
	}
	return e
}

// RefusedError reports the URLs and tags of a request that the backend
// could not invalidate (see [ErrNotInvalidatable]) while it invalidated the
// rest. It is returned marked backends.Permanent and backends.Partial,
// which names the refused objects as the Request held them.
type RefusedError struct {
	// Refused maps each refused object to the reason.
	Refused []Refused
	// Invalidated is how many of the request's objects were invalidated.
	Invalidated int
}

// Refused is one object of a request that was not invalidated, and why.
type Refused struct {
	// Tag is true for a cache tag, false for a URL.
	Tag bool
	// Object is the URL (redacted: [backends.RedactURL]) or the tag.
	Object string
	// Err is the reason; it wraps ErrNotInvalidatable or
	// backends.ErrInvalidURL / ErrInvalidTag.
	Err error
}

func (e *RefusedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cloudfront: %d objects not invalidated (%d invalidated): ", len(e.Refused), e.Invalidated)
	for i, r := range e.Refused {
		if i == 5 {
			fmt.Fprintf(&b, "; and %d more", len(e.Refused)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		kind := "url"
		if r.Tag {
			kind = "tag"
		}
		fmt.Fprintf(&b, "%s %q: %v", kind, r.Object, r.Err)
	}
	return b.String()
}

// Unwrap returns the reasons.
func (e *RefusedError) Unwrap() []error {
	errs := make([]error, len(e.Refused))
	for i, r := range e.Refused {
		errs[i] = r.Err
	}
	return errs
}
