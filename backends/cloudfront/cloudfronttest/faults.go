package cloudfronttest

import (
	"fmt"
	"net/http"
)

// FailNext makes the next times CreateInvalidation requests that pass the
// signature check and name a known distribution fail with status and
// CloudFront's error XML, before the body is checked: they create nothing
// and are counted only in [Server.Calls]. It is [Server.FailNextOn] for
// [OpCreateInvalidation]. The error code is the one CloudFront answers
// with that status: 400 InvalidArgument, 403 AccessDenied, 404
// NoSuchDistribution, 429 Throttling, 500 InternalError, another 5xx
// ServiceUnavailable, another 4xx InvalidArgument; use
// [Server.FailNextCode] for another code, such as Throttling or
// TooManyInvalidationsInProgress (both 400 at CloudFront). Calls queue up:
// FailNext(500, 1) then FailNext(503, 2) fails one request with 500, then
// two with 503. It panics unless status is between 400 and 599; times of
// 0 or less does nothing.
func (s *Server) FailNext(status, times int) {
	if status < 400 || status > 599 {
		panic(fmt.Sprintf("cloudfronttest: FailNext(%d, %d): the status must be between 400 and 599", status, times))
	}
	s.FailNextOn(OpCreateInvalidation, status, times)
}

// FailNextCode is [Server.FailNext] with CloudFront's error code and
// message chosen by the test, such as (400, 1, "Throttling", "Rate
// exceeded") or (400, 1, "TooManyInvalidationsInProgress", "..."). It
// panics unless status is between 400 and 599 and code is not empty.
func (s *Server) FailNextCode(status, times int, code, message string) {
	if status < 400 || status > 599 || code == "" {
		panic(fmt.Sprintf("cloudfronttest: FailNextCode(%d, %d, %q, ...): want a status between 400 and 599 and an error code", status, times, code))
	}
	s.FailNextCodeOn(OpCreateInvalidation, status, times, code, message)
}

// FailNextOn is [Server.FailNext] for operation op, [OpCreateInvalidation]
// or [OpGetInvalidation]: FailNextOn(OpGetInvalidation, 503, 1) makes the
// next status check fail, as when a purge waits for the in-progress
// limits. A 404 of GetInvalidation is NoSuchInvalidation. Each operation
// has its own queue. It panics on an unknown op or a status outside 400 to
// 599.
func (s *Server) FailNextOn(op string, status, times int) {
	if status < 400 || status > 599 {
		panic(fmt.Sprintf("cloudfronttest: FailNextOn(%q, %d, %d): the status must be between 400 and 599", op, status, times))
	}
	code, message := defaultFault(status)
	if op == OpGetInvalidation && status == http.StatusNotFound {
		code, message = "NoSuchInvalidation", "The specified invalidation does not exist."
	}
	s.failNext(op, status, times, code, message)
}

// FailNextCodeOn is [Server.FailNextCode] for operation op, such as
// (OpGetInvalidation, 403, 1, "AccessDenied", "...") for credentials
// without cloudfront:GetInvalidation. It panics on an unknown op, a status
// outside 400 to 599 or an empty code.
func (s *Server) FailNextCodeOn(op string, status, times int, code, message string) {
	if status < 400 || status > 599 || code == "" {
		panic(fmt.Sprintf("cloudfronttest: FailNextCodeOn(%q, %d, %d, %q, ...): want a status between 400 and 599 and an error code", op, status, times, code))
	}
	s.failNext(op, status, times, code, message)
}

func (s *Server) failNext(op string, status, times int, code, message string) {
	if op != OpCreateInvalidation && op != OpGetInvalidation {
		panic(fmt.Sprintf("cloudfronttest: %q is not an operation of the fake: want cloudfronttest.OpCreateInvalidation or OpGetInvalidation", op))
	}
	if times <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{op: op, n: times, status: status, code: code, message: message})
}

// nextFaultLocked takes the next fault queued for op, if any.
func (s *Server) nextFaultLocked(op string) (fault, bool) {
	for i := range s.faults {
		f := &s.faults[i]
		if f.op != op {
			continue
		}
		out := *f
		f.n--
		if f.n <= 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		return out, true
	}
	return fault{}, false
}

// defaultFault returns the error code and message CloudFront answers with
// status.
func defaultFault(status int) (code, message string) {
	switch {
	case status == http.StatusForbidden:
		return "AccessDenied", "Access denied"
	case status == http.StatusNotFound:
		return "NoSuchDistribution", "The specified distribution does not exist."
	case status == http.StatusTooManyRequests:
		return "Throttling", "Rate exceeded"
	case status == http.StatusInternalServerError:
		return "InternalError", "We encountered an internal error. Please try again."
	case status >= 500:
		return "ServiceUnavailable", "CloudFront is unavailable."
	default:
		return "InvalidArgument", "The argument is invalid."
	}
}

type fault struct {
	op            string
	n             int
	status        int
	code, message string
}
