package backendtest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/backendtest"
)

// cache is the fake a backend purges: it records what it is asked to purge
// and answers with the failure it was told to.
type cache struct {
	mu      sync.Mutex
	got     backends.Request
	fail    backendtest.Failure
	refuse  backends.Request
	held    chan struct{} // closed when a purge is held
	release chan struct{} // closed to let held purges go
}

// purge is the fake's one endpoint.
func (c *cache) purge(ctx context.Context, r backends.Request) error {
	c.mu.Lock()
	held, release := c.held, c.release
	c.mu.Unlock()
	if release != nil {
		select {
		case <-held:
		default:
			close(held)
		}
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.fail {
	case backendtest.Temporary:
		return errors.New("503 Service Unavailable")
	case backendtest.Permanent:
		return backends.Permanent(errors.New("403 Forbidden"))
	case backendtest.RetryAfter:
		return backends.RetryAfter(2*time.Second, errors.New("429 Too Many Requests"))
	}
	var refused backends.Request
	for _, u := range r.URLs {
		if slices.Contains(c.refuse.URLs, u) {
			refused.URLs = append(refused.URLs, u)
			continue
		}
		c.got.URLs = append(c.got.URLs, u)
	}
	c.got.Tags = append(c.got.Tags, r.Tags...)
	if !refused.Empty() {
		return backends.Partial(refused, backends.Permanent(errors.New("400 Bad Request")))
	}
	return nil
}

// newBackend is the backend under test: it brings requests to canonical
// form and honours a cancelled context before calling the cache.
func newBackend(c *cache) backends.Backend {
	return backends.Func("example", func(ctx context.Context, r backends.Request) (backends.Result, error) {
		res := backends.Result{Backend: "example", Objects: r.Len()}
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("example: %w", err)
		}
		r, err := backends.CanonicalRequest(r)
		if err != nil {
			return res, backends.Permanent(err)
		}
		if err := c.purge(ctx, r); err != nil {
			return res, fmt.Errorf("example: purge: %w", err)
		}
		return res, nil
	})
}

// newHarness is the Factory: a fresh cache and backend for each check.
func newHarness(t *testing.T) *backendtest.Harness {
	c := &cache{}
	return &backendtest.Harness{
		Backend: newBackend(c),
		Received: func() backends.Request {
			c.mu.Lock()
			defer c.mu.Unlock()
			return backends.Request{URLs: slices.Clone(c.got.URLs), Tags: slices.Clone(c.got.Tags)}
		},
		Fail: func(f backendtest.Failure, refuse backends.Request) bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			if f == backendtest.Partial {
				c.refuse = refuse
			} else {
				c.fail = f
			}
			return true
		},
		Hold: func() (<-chan struct{}, func()) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.held, c.release = make(chan struct{}), make(chan struct{})
			var once sync.Once
			release := c.release
			return c.held, func() { once.Do(func() { close(release) }) }
		},
	}
}

// A backend's conformance test is one line in its package's tests:
//
//	func TestConformance(t *testing.T) { backendtest.Run(t, newHarness) }
//
// Here the harness's fake is told to refuse one URL; the backend reports
// it with backends.Partial, as the suite checks.
func ExampleRun() {
	h := newHarness(nil)
	h.Fail(backendtest.Partial, backends.Request{URLs: []string{"http://a.example/refused"}})
	_, err := h.Backend.Purge(context.Background(), backends.Request{URLs: []string{"http://a.example/refused", "/caf\u00e9"}})
	failed, _ := backends.FailedObjects(err)
	fmt.Println("failed:", failed.URLs)
	fmt.Println("purged:", h.Received().URLs)
	// Output:
	// failed: [http://a.example/refused]
	// purged: [/caf%C3%A9]
}

func TestRun(t *testing.T) { backendtest.Run(t, newHarness) }
