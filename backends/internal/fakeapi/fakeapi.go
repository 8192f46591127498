// Package fakeapi holds the machinery the backends' test kits (akamaitest,
// cloudflaretest, fastlytest) share behind their own APIs: the FailNext
// queue, Hold, and the queries over recorded purges. Each kit keeps its
// public methods, its messages and its answers; only the bookkeeping is
// here, so that it behaves the same in every kit.
package fakeapi

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
)

// NewUnstarted returns an unstarted httptest server for h whose error
// log is discarded: the TLS noise of clients that do not trust the
// certificate. The caller starts it with StartTLS.
func NewUnstarted(h http.HandlerFunc) *httptest.Server {
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	return ts
}

// Failures is a FailNext queue: statuses to answer with, each for a number
// of requests, in the order queued. It is not safe for concurrent use: the
// kit's server lock guards it. The zero value is empty.
type Failures struct {
	q []failure
}

type failure struct{ status, times int }

// Add queues status for the next times requests after those already
// queued; times of 0 or less adds nothing. The kit checks status first.
func (f *Failures) Add(status, times int) {
	if times <= 0 {
		return
	}
	f.q = append(f.q, failure{status: status, times: times})
}

// Next takes the status of the next failure, if any is queued.
func (f *Failures) Next() (int, bool) {
	if len(f.q) == 0 {
		return 0, false
	}
	head := &f.q[0]
	head.times--
	status := head.status
	if head.times == 0 {
		f.q = f.q[1:]
	}
	return status, true
}

// Reset cancels every queued failure.
func (f *Failures) Reset() { f.q = nil }

// Holder holds requests in flight for a kit's Hold. It is safe for
// concurrent use; the zero value holds nothing.
type Holder struct {
	mu      sync.Mutex
	held    chan struct{} // closed by Hold's release; nil when not holding
	arrived chan struct{}
	arrive  *sync.Once
}

// Hold makes [Holder.Wait] hold every later request until release is
// called; arrived is closed when the first held request arrives.
func (h *Holder) Hold() (arrived <-chan struct{}, release func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	held := make(chan struct{})
	h.held, h.arrived, h.arrive = held, make(chan struct{}), &sync.Once{}
	var once sync.Once
	return h.arrived, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.held == held {
				close(held)
				h.held = nil
			}
		})
	}
}

// ReleaseAll releases the held requests, as the kit's Close does.
func (h *Holder) ReleaseAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held != nil {
		close(h.held)
		h.held = nil
	}
}

// Wait holds a request, whose context is ctx, while [Holder.Hold] asks.
// It returns false when the request's client went away while held: the
// kit then neither answers nor records it.
func (h *Holder) Wait(ctx context.Context) bool {
	h.mu.Lock()
	held, arrived, arrive := h.held, h.arrived, h.arrive
	h.mu.Unlock()
	if held == nil {
		return true
	}
	arrive.Do(func() { close(arrived) })
	select {
	case <-held:
	case <-ctx.Done():
	}
	return ctx.Err() == nil
}

// Flatten returns the objects that each record gives, in the records'
// order: a kit's Files, Tags or Keys. The kit's lock guards records.
func Flatten[R any](records []R, objects func(R) []string) []string {
	var out []string
	for _, r := range records {
		out = append(out, objects(r)...)
	}
	return out
}

// Count returns how many records match: a kit's count of purges of
// everything.
func Count[R any](records []R, match func(R) bool) int {
	n := 0
	for _, r := range records {
		if match(r) {
			n++
		}
	}
	return n
}

// Clone returns a copy of records for a kit's Purges, each passed through
// deepen, which copies the slices a record holds so that the caller
// cannot change the kit's.
func Clone[R any](records []R, deepen func(R) R) []R {
	out := make([]R, len(records))
	for i, r := range records {
		out[i] = deepen(r)
	}
	return out
}
