// Package backendtest is a conformance suite for purge backends: what the
// dispatcher relies on, checked in one line from a backend's own tests.
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T) *backendtest.Harness {
//			fake := newFake(t) // the cache, or a faithful fake of it
//			return &backendtest.Harness{Backend: newBackend(fake.URL), Received: fake.Received, ...}
//		})
//	}
//
// [Run] checks that the backend purges exactly what it is given at its
// Limits, in canonical form ([backends.CanonicalURL]); that it honours a
// cancelled context promptly; that it classifies each kind of failure its
// fake can be made to answer ([backends.IsPermanent],
// [backends.RetryDelay], [backends.FailedObjects]); that it is safe for
// concurrent use; that a [backends.Closer]'s Close may be called twice,
// and returns nil with nothing in flight even when its ctx has ended; and
// that no error or result shows the secrets it was configured with.
//
// A new backend is done when it passes this suite against its own faithful
// fake, and that fake's tests against the real service.
package backendtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gormpurge/gormpurge/backends"
)

// Failure is a class of failure the dispatcher tells apart. A [Harness]
// makes its fake answer with one through Harness.Fail.
type Failure int

const (
	// Temporary is a failure that retrying may fix (a 5xx, no answer):
	// the backend returns an error that is neither backends.Permanent nor
	// backends.RetryAfter, and the dispatcher retries with backoff.
	Temporary Failure = iota + 1
	// Permanent is a failure that retrying cannot fix (a 403, a refused
	// credential): the error is marked backends.Permanent.
	Permanent
	// RetryAfter is a failure with a known wait (a 429 with Retry-After or
	// rate-limit headers): the error carries backends.RetryAfter with a
	// positive wait.
	RetryAfter
	// Partial is the refusal of some objects while the rest is purged:
	// backends.FailedObjects names exactly the refused ones.
	Partial
)

// String returns the failure's name, such as "Permanent".
func (f Failure) String() string {
	switch f {
	case Temporary:
		return "Temporary"
	case Permanent:
		return "Permanent"
	case RetryAfter:
		return "RetryAfter"
	case Partial:
		return "Partial"
	}
	return fmt.Sprintf("Failure(%d)", int(f))
}

// Harness is one backend under test and the fake it talks to, made fresh
// for each check by a [Factory]. Backend and Received are required; a nil
// Fail or Hold skips the checks that need it.
type Harness struct {
	// Backend is the backend under test, configured to purge from the
	// fake. If it is a [backends.Closer], the factory should close it in
	// t.Cleanup; the suite calls Close too, and Close must tolerate that.
	Backend backends.Backend

	// Received returns every URL and tag the fake has purged so far, in
	// any order, duplicates allowed. URLs are given back as the backend
	// was asked to purge them: a site-relative path as a path (strip the
	// site host the harness configured), an absolute URL on another host
	// as "http://" + host + path and query (the suite's absolute URLs all
	// use http).
	Received func() backends.Request

	// Fail makes the fake fail every later purge of an object of refuse
	// with failure f until the harness is dropped, and returns false when
	// the backend cannot produce f (the suite then skips that check). For
	// Temporary, Permanent and RetryAfter, refuse is the whole request;
	// for Partial it is a strict subset of its URLs (on hosts of their
	// own), and the fake purges the others.
	Fail func(f Failure, refuse backends.Request) bool

	// Hold makes the fake hold every later purge without answering, until
	// release is called or the purge's request is abandoned. arrived is
	// closed when the first held purge reaches the fake. The suite uses
	// it to cancel a purge in flight.
	Hold func() (arrived <-chan struct{}, release func())

	// Secrets are the credentials the backend was configured with
	// (tokens, passwords, header values). No error or result the backend
	// returns during the suite may contain one.
	Secrets []string
}

// Factory returns a new [Harness] for one check. It runs on the check's
// own t, so it can use t.Cleanup and t.TempDir.
type Factory func(t *testing.T) *Harness

// Bound is how long a purge may take to return after its context is
// cancelled, and how long the suite waits for any condition.
const Bound = 5 * time.Second

// capObjects bounds the requests the suite builds for a backend whose
// limits are larger or absent, to keep the suite fast.
const capObjects = 2000

// Run runs the conformance suite against the backends newHarness makes,
// each check in a subtest of its own.
func Run(t *testing.T, newHarness Factory) {
	t.Helper()
	t.Run("Limits", func(t *testing.T) { testLimits(t, newHarness) })
	t.Run("Canonical", func(t *testing.T) { testCanonical(t, newHarness) })
	t.Run("Cancelled", func(t *testing.T) { testCancelled(t, newHarness) })
	t.Run("CancelledInFlight", func(t *testing.T) { testCancelledInFlight(t, newHarness) })
	for _, f := range []Failure{Temporary, Permanent, RetryAfter, Partial} {
		t.Run("Failure/"+f.String(), func(t *testing.T) { testFailure(t, newHarness, f) })
	}
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newHarness) })
	t.Run("Close", func(t *testing.T) { testClose(t, newHarness) })
}

// build makes a harness and checks its required fields.
func build(t *testing.T, newHarness Factory) *Harness {
	t.Helper()
	h := newHarness(t)
	if h == nil || h.Backend == nil || h.Received == nil {
		t.Fatal("backendtest: the Factory must return a Harness with Backend and Received set")
	}
	return h
}

// purge paces r when the backend is a backends.Pacer, as the dispatcher
// does, purges it, and checks that neither the result nor the error shows
// a secret.
func purge(t *testing.T, h *Harness, ctx context.Context, r backends.Request) (backends.Result, error) {
	t.Helper()
	if p, ok := h.Backend.(backends.Pacer); ok && ctx.Err() == nil {
		if err := p.Pace(ctx, r); err != nil {
			noSecret(t, h, "Pace's error", err.Error())
			return backends.Result{}, err
		}
	}
	res, err := h.Backend.Purge(ctx, r)
	noSecret(t, h, "the result", fmt.Sprintf("%+v", res))
	if err != nil {
		noSecret(t, h, "the error", err.Error())
	}
	return res, err
}

func noSecret(t *testing.T, h *Harness, what, text string) {
	t.Helper()
	for _, s := range h.Secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s shows a secret the backend was configured with (%d bytes): %s", what, len(s), strings.ReplaceAll(text, s, "[SECRET]"))
		}
	}
}

// missing returns the objects of want that are not in got.
func missing(want, got backends.Request) backends.Request {
	var m backends.Request
	for _, u := range want.URLs {
		if !slices.Contains(got.URLs, u) {
			m.URLs = append(m.URLs, u)
		}
	}
	for _, tag := range want.Tags {
		if !slices.Contains(got.Tags, tag) {
			m.Tags = append(m.Tags, tag)
		}
	}
	return m
}

// received returns what the fake purged, normalised.
func received(h *Harness) backends.Request {
	r := h.Received()
	return backends.NewRequest(r.URLs, r.Tags)
}

// expectReceived checks that every object of want, and no other, reached
// the fake.
func expectReceived(t *testing.T, h *Harness, want backends.Request) {
	t.Helper()
	got := received(h)
	if m := missing(want, got); !m.Empty() {
		t.Errorf("%d of %d objects never reached the fake, such as %q", m.Len(), want.Len(), first(m))
	}
	if extra := missing(got, want); !extra.Empty() {
		t.Errorf("the fake received %d objects it was not given, such as %q", extra.Len(), first(extra))
	}
}

func first(r backends.Request) string {
	if len(r.URLs) > 0 {
		return r.URLs[0]
	}
	if len(r.Tags) > 0 {
		return r.Tags[0]
	}
	return ""
}

// timeout returns a context that ends after Bound, cancelled with t.
func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Bound)
	t.Cleanup(cancel)
	return ctx
}

// fill returns the largest request of objects made by url or tag (nil for
// none of that kind) that fits l, holding at most capObjects objects.
func fill(l backends.Limits, url, tag func(i int) string) backends.Request {
	var r backends.Request
	for i := 0; r.Len() < capObjects; i++ {
		next := r
		if url != nil {
			next.URLs = append(slices.Clip(next.URLs), url(i))
		}
		if tag != nil && (url == nil || i%2 == 1) {
			next.Tags = append(slices.Clip(next.Tags), tag(i))
		}
		if !l.Fits(next) {
			break
		}
		r = next
	}
	return r
}

func testLimits(t *testing.T, newHarness Factory) {
	l := build(t, newHarness).Backend.Limits()
	short := func(i int) string { return fmt.Sprintf("/conformance/limits/%05d", i) }
	shortTag := func(i int) string { return fmt.Sprintf("conformance-limits-%05d", i) }
	long := func(i int) string { return fmt.Sprintf("/conformance/bytes/%05d/%s", i, strings.Repeat("x", 180)) }
	cases := []struct {
		name string
		r    backends.Request
	}{
		{"URLs", fill(l, short, nil)},
		{"Tags", fill(l, nil, shortTag)},
	}
	if !l.OneKind {
		cases = append(cases, struct {
			name string
			r    backends.Request
		}{"Mixed", fill(l, short, shortTag)})
	}
	if l.MaxBytes > 0 {
		cases = append(cases, struct {
			name string
			r    backends.Request
		}{"Bytes", fill(l, long, nil)})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.r.Empty() {
				t.Fatalf("Limits %+v let no request of one object through", l)
			}
			h := build(t, newHarness)
			if _, err := purge(t, h, timeout(t), c.r); err != nil {
				t.Fatalf("purging %d objects (%d bytes) within Limits %+v: %v", c.r.Len(), l.SizeOf(c.r), l, err)
			}
			expectReceived(t, h, c.r)
		})
	}
}

// nonCanonical are spellings the suite asks to purge, by their canonical
// forms.
var nonCanonical = map[string]string{
	"/caf\u00e9":                              "/caf%C3%A9",
	"/conformance/a b?q=x y":                  "/conformance/a%20b?q=x%20y",
	"/conformance/%7euser/%2f?x=%7e":          "/conformance/~user/%2F?x=~",
	"HTTP://Conformance.Example:80/caf\u00e9": "http://conformance.example/caf%C3%A9",
}

func testCanonical(t *testing.T, newHarness Factory) {
	h := build(t, newHarness)
	var r, want backends.Request
	for raw, c := range nonCanonical {
		r.URLs = append(r.URLs, raw)
		want.URLs = append(want.URLs, c)
	}
	slices.Sort(r.URLs)
	if _, err := purge(t, h, timeout(t), r); err != nil {
		t.Fatalf("purging URLs in other spellings than their canonical forms: %v", err)
	}
	expectReceived(t, h, backends.NewRequest(want.URLs, nil))
}

// expectCancelled checks that err reports the cancellation.
func expectCancelled(t *testing.T, err error, took time.Duration) {
	t.Helper()
	if took > Bound {
		t.Errorf("Purge returned %v after its context was cancelled; want within %v", took, Bound)
	}
	if err == nil {
		t.Fatal("Purge returned no error for a cancelled context: the dispatcher would count the batch as purged")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Purge's error %q does not wrap context.Canceled", err)
	}
}

func testCancelled(t *testing.T, newHarness Factory) {
	h := build(t, newHarness)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	_, err := purge(t, h, ctx, backends.Request{URLs: []string{"/conformance/cancelled"}})
	expectCancelled(t, err, time.Since(start))
}

func testCancelledInFlight(t *testing.T, newHarness Factory) {
	h := build(t, newHarness)
	if h.Hold == nil {
		t.Skip("the harness has no Hold: cannot hold a purge in flight")
	}
	arrived, release := h.Hold()
	t.Cleanup(release)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type outcome struct {
		err error
		end time.Time
	}
	done := make(chan outcome, 1)
	go func() {
		_, err := purge(t, h, ctx, backends.Request{URLs: []string{"/conformance/in-flight"}})
		done <- outcome{err: err, end: time.Now()}
	}()
	select {
	case <-arrived:
	case o := <-done:
		t.Fatalf("Purge returned before its request reached the held fake: %v", o.err)
	case <-time.After(Bound):
		t.Fatalf("the purge did not reach the fake within %v", Bound)
	}
	cancelled := time.Now()
	cancel()
	select {
	case o := <-done:
		expectCancelled(t, o.err, o.end.Sub(cancelled))
	case <-time.After(Bound):
		release()
		<-done
		t.Fatalf("Purge did not return within %v of its context being cancelled", Bound)
	}
}

func testFailure(t *testing.T, newHarness Factory, f Failure) {
	h := build(t, newHarness)
	if h.Fail == nil {
		t.Skip("the harness has no Fail")
	}
	r := backends.Request{URLs: []string{"/conformance/failure/1", "/conformance/failure/2"}, Tags: []string{"conformance-failure"}}
	if h.Backend.Limits().OneKind {
		r.Tags = nil
	}
	refuse := r
	if f == Partial {
		r = backends.Request{URLs: []string{"http://a.conformance.example/refused", "http://b.conformance.example/purged", "http://c.conformance.example/purged"}}
		refuse = backends.Request{URLs: r.URLs[:1]}
	}
	if !h.Fail(f, refuse) {
		t.Skipf("the backend cannot produce a %s failure", f)
	}
	_, err := purge(t, h, timeout(t), r)
	if err == nil {
		t.Fatalf("the fake failed with %s, and Purge returned no error", f)
	}
	_, delayed := backends.RetryDelay(err)
	failed, partial := backends.FailedObjects(err)
	switch f {
	case Temporary:
		if backends.IsPermanent(err) || delayed || partial {
			t.Errorf("a temporary failure is classified as permanent (%t), retry-after (%t) or partial (%t): %v",
				backends.IsPermanent(err), delayed, partial, err)
		}
	case Permanent:
		if !backends.IsPermanent(err) || partial {
			t.Errorf("a permanent failure of the whole request is not backends.Permanent, or is Partial (%t): %v", partial, err)
		}
	case RetryAfter:
		if d, ok := backends.RetryDelay(err); !ok || d <= 0 {
			t.Errorf("a failure with a known wait has no positive backends.RetryDelay (%v, %t): %v", d, ok, err)
		}
		if backends.IsPermanent(err) {
			t.Errorf("a failure with a known wait is backends.Permanent: %v", err)
		}
	case Partial:
		if !partial {
			t.Fatalf("the fake refused %q and purged the rest, and backends.FailedObjects names nothing: the dispatcher counts the whole batch as failed: %v", refuse.URLs, err)
		}
		if !slices.Equal(failed.URLs, refuse.URLs) || len(failed.Tags) > 0 {
			t.Errorf("backends.FailedObjects = %+v; want the refused objects %+v", failed, refuse)
		}
		expectReceived(t, h, backends.Request{URLs: r.URLs[1:]})
	}
}

func testConcurrent(t *testing.T, newHarness Factory) {
	h := build(t, newHarness)
	const goroutines, each = 8, 5
	oneKind := h.Backend.Limits().OneKind
	ctx := timeout(t)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		want backends.Request
		errs []error
	)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r := backends.Request{URLs: []string{fmt.Sprintf("/conformance/concurrent/%d/%d", g, i)}}
				if !oneKind || i%2 == 1 {
					r.Tags = []string{fmt.Sprintf("conformance-concurrent-%d-%d", g, i)}
				}
				if oneKind && i%2 == 1 {
					r.URLs = nil
				}
				_, err := purge(t, h, ctx, r)
				mu.Lock()
				want = want.Merge(r)
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d concurrent purges failed, such as: %v", len(errs), goroutines*each, errs[0])
	}
	expectReceived(t, h, want)
}

// testClose checks a [backends.Closer]: Close may be called twice, and,
// with nothing in flight, returns nil even when its ctx has already ended,
// on a backend never used as on one whose purges have returned.
func testClose(t *testing.T, newHarness Factory) {
	if _, ok := build(t, newHarness).Backend.(backends.Closer); !ok {
		t.Skip("the backend is not a backends.Closer: it has no Close(ctx) method")
	}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for _, used := range []bool{false, true} {
		for _, ctxEnded := range []bool{false, true} {
			h := build(t, newHarness)
			c := h.Backend.(backends.Closer)
			what := "a backend never used"
			if used {
				what = "a used backend, its purges returned"
				if _, err := purge(t, h, timeout(t), backends.Request{URLs: []string{"/conformance/close"}}); err != nil {
					t.Fatalf("purge before Close: %v", err)
				}
			}
			ctx, how := timeout(t), "a live ctx"
			if ctxEnded {
				ctx, how = ended, "an ended ctx (nothing in flight: no error)"
			}
			for i := range 2 {
				if err := c.Close(ctx); err != nil {
					noSecret(t, h, "Close's error", err.Error())
					t.Errorf("Close #%d of %s, with %s: %v", i+1, what, how, err)
				}
			}
		}
	}
}
