package dispatcher

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gormpurge/gormpurge/backends"
)

var (
	// ErrClosed is returned by Enqueue, Submit and Flush once Close has
	// been called. It is also matched by the error of a [Report] or a
	// [BackendOutcome] for a request dropped by Close.
	ErrClosed = errors.New("dispatcher: closed")
	// ErrQueueFull is matched by the error Enqueue and Submit return when a
	// backend's queue had no room for the request: at once under [Reject],
	// or when the context ended first under [Block]. It is also matched by
	// the error of a [Report] or a [BackendOutcome] for a request dropped
	// under any policy.
	ErrQueueFull = errors.New("dispatcher: queue full")
)

// UndeliveredError is returned by [Dispatcher.Close] when its context ended
// before every queued request was delivered or had failed for good. It names
// what was left, per backend, so that the caller can log or persist it.
type UndeliveredError struct {
	// Requests holds, per backend name, the merged request that was still
	// queued, waiting for a worker, in flight or waiting to retry.
	Requests map[string]backends.Request
	// Err is why draining stopped: the cause of Close's context.
	Err error
}

// Error names the backends and how many objects each was left with.
func (e *UndeliveredError) Error() string {
	names := make([]string, 0, len(e.Requests))
	for name := range e.Requests {
		names = append(names, name)
	}
	slices.Sort(names)
	var b strings.Builder
	total := 0
	for i, name := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		n := e.Requests[name].Len()
		total += n
		fmt.Fprintf(&b, "%s: %d", name, n)
	}
	return fmt.Sprintf("dispatcher: closed with %d objects undelivered (%s): %v", total, b.String(), e.Err)
}

// Unwrap returns Err, so that errors.Is(err, context.DeadlineExceeded) works.
func (e *UndeliveredError) Unwrap() error { return e.Err }
