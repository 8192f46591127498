package httppurge

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gormpurge/gormpurge/backends"
)

// ErrClosed is returned, marked [backends.Permanent], by Purge once Close
// has been called.
var ErrClosed = errors.New("httppurge: backend closed")

// NodeError reports what went wrong on one cache node during a call to
// Purge: the first failed request, and how many failed. Purge returns one
// per failed node, joined; find them with errors.As, or by ranging over the
// errors the joined error unwraps to.
type NodeError struct {
	// Node is the node's base URL, such as "http://10.0.0.5:6081".
	Node string
	// Method, Target and Host describe the first failed request: its
	// method, its path and query (for a tag purge, the path and the tag
	// header's name and tag count), and the Host header it carried.
	Method string
	Target string
	Host   string
	// StatusCode and Status are the node's answer, such as 405 and
	// "405 Not allowed."; 0 and "" when it gave none.
	StatusCode int
	Status     string
	// Err is why no answer came (connection refused, timeout); nil when the
	// node answered.
	Err error
	// Failed is how many requests to the node failed or were not sent
	// because of the first failure.
	Failed int
	// Temporary reports whether retrying may succeed: no answer, 408, 429
	// or a 5xx other than 501.
	Temporary bool
	// RetryAfter is the wait the node asked for with Retry-After, if any.
	RetryAfter time.Duration
	// Hint says what to check, when the status says more than itself: for
	// 403 and 405, that the cache's purge ACL does not allow this client.
	Hint string
}

// Error names the node, the request and the answer, and gives the hint.
func (e *NodeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "httppurge: node %s: %s %s", e.Node, e.Method, e.Target)
	if e.Host != "" {
		fmt.Fprintf(&b, " (Host %s)", e.Host)
	}
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString(e.Status)
	}
	if e.Failed > 1 {
		fmt.Fprintf(&b, " (%d requests failed)", e.Failed)
	}
	if e.Hint != "" {
		b.WriteString(": ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Unwrap returns Err.
func (e *NodeError) Unwrap() error { return e.Err }

// verdict is what one answer means.
type verdict int

const (
	purged     verdict = iota // 2xx
	notCached                 // 404: nothing to purge, which is success
	objectBad                 // the node refused this request only: the others go on
	nodeFailed                // the node refuses everything for now: stop sending to it
)

// classify says what status code code means for a purge, whether a failure
// is temporary, and what to tell the user about it.
func classify(code int, method, client string) (v verdict, temporary bool, hint string) {
	switch {
	case code >= 200 && code < 300:
		return purged, false, ""
	case code == http.StatusNotFound:
		return notCached, false, ""
	case code == http.StatusForbidden || code == http.StatusMethodNotAllowed:
		who := "this client"
		if client != "" {
			who += " (" + client + ")"
		}
		hint := fmt.Sprintf("the cache does not allow %s from %s: add it to the cache's purge ACL (Varnish: the acl vcl_recv checks; nginx: allow in the proxy_cache_purge location; Squid: http_access allow PURGE)", method, who)
		if code == http.StatusMethodNotAllowed {
			hint += fmt.Sprintf(", and check that the cache handles the %s method", method)
		}
		return nodeFailed, false, hint
	case code == http.StatusNotImplemented:
		return nodeFailed, false, fmt.Sprintf("the cache does not implement the %s method: configure it to handle purges, or set WithMethod", method)
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return nodeFailed, true, ""
	case code >= 300 && code < 400:
		return nodeFailed, false, "the node redirects: give the cache's own address in WithNodes, not the site's"
	case code == http.StatusBadRequest || code == http.StatusRequestURITooLong ||
		code == http.StatusRequestHeaderFieldsTooLarge || code == http.StatusRequestEntityTooLarge ||
		code == http.StatusUnprocessableEntity:
		return objectBad, false, ""
	default:
		return nodeFailed, false, ""
	}
}

// maxRetryAfter caps the wait a node may ask for.
const maxRetryAfter = time.Hour

// retryAfter returns the wait a Retry-After header asks for, in seconds or
// as an HTTP date, at most maxRetryAfter; 0 when there is none.
func retryAfter(h http.Header) time.Duration {
	d, ok := backends.ParseRetryAfter(h, time.Now())
	if !ok {
		return 0
	}
	return min(max(d, 0), maxRetryAfter)
}
