// Package purgetest helps test code that purges caches: a Recorder that
// stands in for a Sink or a Backend and remembers every request, so a test
// can assert which pages were purged after a write.
package purgetest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/gormpurge/gormpurge/backends"
)

// Recorder records purge requests. It implements gormpurge.Sink (Enqueue) and
// backends.Backend (Name, Limits, Purge), so it can stand in for the
// dispatcher or for a cache. The zero value is not usable; call NewRecorder.
// A Recorder is safe for concurrent use.
type Recorder struct {
	// Hook, when set, is called with every request before it is recorded;
	// a non-nil error is returned to the caller and the request is not
	// recorded. Use it to inject failures or to look at the database at
	// the moment of the handoff. Set it before use.
	Hook func(ctx context.Context, r backends.Request) error

	// Sync, when set, is called at the start of Requests, URLs, Tags and
	// Reset, so that an asynchronous pipeline in front of the Recorder can
	// catch up before the test looks: for example, wait until a durable
	// outbox has no pending rows. Set it before use.
	Sync func()

	mu      sync.Mutex
	reqs    []backends.Request
	changed chan struct{} // closed and replaced on every record
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{changed: make(chan struct{})} }

// Enqueue records r. It implements gormpurge.Sink.
func (rec *Recorder) Enqueue(ctx context.Context, r backends.Request) error {
	if rec.Hook != nil {
		if err := rec.Hook(ctx, r); err != nil {
			return err
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.reqs = append(rec.reqs, r)
	close(rec.changed)
	rec.changed = make(chan struct{})
	return nil
}

// Name returns "recorder". It implements backends.Backend.
func (rec *Recorder) Name() string { return "recorder" }

// Limits returns no limits. It implements backends.Backend.
func (rec *Recorder) Limits() backends.Limits { return backends.Limits{} }

// Purge records r, like Enqueue, with its objects in canonical form
// ([backends.CanonicalRequest]), as a cache backend purges them. An object
// with no canonical form is not recorded: Purge names it in a
// [backends.Permanent], [backends.Partial] error. When ctx has ended, Purge
// records nothing and returns an error wrapping ctx's. It implements
// backends.Backend.
func (rec *Recorder) Purge(ctx context.Context, r backends.Request) (backends.Result, error) {
	res := backends.Result{Backend: rec.Name(), Objects: r.Len()}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("purgetest: purge: %w", err)
	}
	c, bad := backends.CanonicalRequest(r)
	if bad == nil || !c.Empty() {
		if err := rec.Enqueue(ctx, c); err != nil {
			return res, err
		}
	}
	if bad != nil {
		return res, backends.Partial(refused(r), backends.Permanent(fmt.Errorf("purgetest: %w", bad)))
	}
	res.Detail = "recorded"
	return res, nil
}

// refused returns the objects of r that have no canonical form.
func refused(r backends.Request) backends.Request {
	var out backends.Request
	for _, u := range r.URLs {
		if _, err := backends.CanonicalURL(u); u != "" && err != nil {
			out.URLs = append(out.URLs, u)
		}
	}
	for _, t := range r.Tags {
		if _, err := backends.CanonicalTag(t); t != "" && err != nil {
			out.Tags = append(out.Tags, t)
		}
	}
	return out
}

// Requests returns the recorded requests in the order they arrived.
func (rec *Recorder) Requests() []backends.Request {
	if rec.Sync != nil {
		rec.Sync()
	}
	return rec.requests()
}

func (rec *Recorder) requests() []backends.Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.reqs)
}

// URLs returns every URL recorded so far, sorted, without duplicates.
func (rec *Recorder) URLs() []string { return rec.union().URLs }

// Tags returns every tag recorded so far, sorted, without duplicates.
func (rec *Recorder) Tags() []string { return rec.union().Tags }

func (rec *Recorder) union() backends.Request {
	if rec.Sync != nil {
		rec.Sync()
	}
	return rec.requestsUnion()
}

// requestsUnion merges what was recorded, without calling Sync.
func (rec *Recorder) requestsUnion() backends.Request {
	var all backends.Request
	for _, r := range rec.requests() {
		all = all.Merge(r)
	}
	return all
}

// Reset forgets every recorded request.
func (rec *Recorder) Reset() {
	if rec.Sync != nil {
		rec.Sync()
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.reqs = nil
}

// WaitForURLs blocks until every one of urls has been recorded, or ctx is
// done, and returns ctx's error in that case. Use it with an asynchronous
// dispatcher in between.
func (rec *Recorder) WaitForURLs(ctx context.Context, urls ...string) error {
	for {
		rec.mu.Lock()
		ch := rec.changed
		rec.mu.Unlock()
		got := rec.requestsUnion().URLs
		missing := false
		for _, u := range urls {
			if _, found := slices.BinarySearch(got, u); !found {
				missing = true
				break
			}
		}
		if !missing {
			return nil
		}
		select {
		case <-ch: // new requests first, even with ctx ended: look again
			continue
		default:
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
