package purgetest_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/backendtest"
	"github.com/gormpurge/gormpurge/purgetest"
)

// TestConformance runs the backend conformance suite against a Recorder
// used as a backend, its Hook standing in for the cache's answers. A Hook
// fails a whole request, so Partial is unsupported.
func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) *backendtest.Harness {
		rec := purgetest.NewRecorder()
		var (
			mu      sync.Mutex
			fail    error
			arrived chan struct{}
			release chan struct{}
		)
		rec.Hook = func(ctx context.Context, _ backends.Request) error {
			mu.Lock()
			a, r, f := arrived, release, fail
			if a != nil {
				select {
				case <-a:
				default:
					close(a)
				}
			}
			mu.Unlock()
			if r != nil {
				select {
				case <-r:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return f
		}
		return &backendtest.Harness{
			Backend: rec,
			Received: func() backends.Request {
				return backends.Request{URLs: rec.URLs(), Tags: rec.Tags()}
			},
			Fail: func(f backendtest.Failure, _ backends.Request) bool {
				mu.Lock()
				defer mu.Unlock()
				down := errors.New("cache unreachable")
				switch f {
				case backendtest.Temporary:
					fail = down
				case backendtest.Permanent:
					fail = backends.Permanent(down)
				case backendtest.RetryAfter:
					fail = backends.RetryAfter(2*time.Second, down)
				default:
					return false
				}
				return true
			},
			Hold: func() (<-chan struct{}, func()) {
				mu.Lock()
				defer mu.Unlock()
				arrived, release = make(chan struct{}), make(chan struct{})
				r := release
				var once sync.Once
				return arrived, func() { once.Do(func() { close(r) }) }
			},
		}
	})
}
