package outbox

import (
	"context"
	"time"

	"github.com/gormpurge/gormpurge/observe"
)

// traceParentLen is the length of a version 00 W3C traceparent:
// "00-" + 32 hex digits + "-" + 16 hex digits + "-" + 2 hex digits.
const traceParentLen = 55

// validTraceParent reports whether s is a well-formed W3C traceparent of
// version 00 (https://www.w3.org/TR/trace-context/#traceparent-header):
// lowercase hex, a trace id and a parent id that are not all zeros.
func validTraceParent(s string) bool {
	if len(s) != traceParentLen || s[0:3] != "00-" || s[35] != '-' || s[52] != '-' {
		return false
	}
	return lowerHex(s[3:35], true) && lowerHex(s[36:52], true) && lowerHex(s[53:55], false)
}

// lowerHex reports whether s is all lowercase hex digits and, if nonZero,
// not all zeros.
func lowerHex(s string, nonZero bool) bool {
	zero := true
	for i := range len(s) {
		c := s[i]
		switch {
		case c == '0':
		case '1' <= c && c <= '9', 'a' <= c && c <= 'f':
			zero = false
		default:
			return false
		}
	}
	return !nonZero || !zero
}

// traceOf returns the traceparent of the Origin ctx carries, or "" when it
// carries none or its traceparent is not well formed: what a row's trace
// column holds.
func traceOf(ctx context.Context) string {
	o, ok := observe.OriginFromContext(ctx)
	if !ok || !validTraceParent(o.TraceParent) {
		return ""
	}
	return o.TraceParent
}

// originOf is the Origin of a row written at created (Unix milliseconds)
// with trace in its trace column. A row written by hand may hold anything:
// a created_at of 0 or less gives no Committed time, and a trace that is
// not a well-formed traceparent gives none.
func originOf(created int64, trace string) observe.Origin {
	var o observe.Origin
	if created > 0 {
		o.Committed = time.UnixMilli(created)
	}
	if validTraceParent(trace) {
		o.TraceParent = trace
	}
	return o
}
