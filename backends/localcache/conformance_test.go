package localcache

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/backendtest"
)

// conformanceStore is a MemoryStore that records the index keys it is
// asked to purge, and that the conformance suite can make fail or hold.
type conformanceStore struct {
	*MemoryStore

	mu      sync.Mutex
	indexes []string
	fail    error
	arrived chan struct{}
	release chan struct{}
}

func (s *conformanceStore) Purge(ctx context.Context, indexes []string) (int, error) {
	s.mu.Lock()
	arrived, release, fail := s.arrived, s.release, s.fail
	if arrived != nil {
		select {
		case <-arrived:
		default:
			close(arrived)
		}
	}
	s.mu.Unlock()
	if release != nil {
		select {
		case <-release:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	if fail != nil {
		return 0, fail
	}
	n, err := s.MemoryStore.Purge(ctx, indexes)
	s.mu.Lock()
	s.indexes = append(s.indexes, indexes...)
	s.mu.Unlock()
	return n, err
}

// received turns the index keys purged back into the URLs and tags a
// purge names.
func (s *conformanceStore) received() backends.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var r backends.Request
	for _, ix := range s.indexes {
		switch {
		case strings.HasPrefix(ix, ixTag):
			r.Tags = append(r.Tags, strings.TrimPrefix(ix, ixTag))
		case strings.HasPrefix(ix, ixPathQuery):
			r.URLs = append(r.URLs, strings.TrimPrefix(ix, ixPathQuery))
		case strings.HasPrefix(ix, ixPath):
			r.URLs = append(r.URLs, strings.TrimPrefix(ix, ixPath))
		case strings.HasPrefix(ix, ixHostPathQuery):
			r.URLs = append(r.URLs, "http://"+strings.TrimPrefix(ix, ixHostPathQuery))
		case strings.HasPrefix(ix, ixHostPath):
			r.URLs = append(r.URLs, "http://"+strings.TrimPrefix(ix, ixHostPath))
		}
	}
	return r
}

// TestConformance runs the backend conformance suite against a
// MemoryStore. A Store reports no object on its own, so the backend cannot
// fail only some objects of a batch: Partial is unsupported. The other
// classes are a Store's own classified errors, which must reach the
// dispatcher classified.
func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) *backendtest.Harness {
		mem, err := NewMemoryStore()
		require.NoError(t, err)
		s := &conformanceStore{MemoryStore: mem}
		b, err := NewBackend(s)
		require.NoError(t, err)
		return &backendtest.Harness{
			Backend:  b,
			Received: s.received,
			Fail: func(f backendtest.Failure, _ backends.Request) bool {
				s.mu.Lock()
				defer s.mu.Unlock()
				down := errors.New("store unreachable")
				switch f {
				case backendtest.Temporary:
					s.fail = down
				case backendtest.Permanent:
					s.fail = backends.Permanent(down)
				case backendtest.RetryAfter:
					s.fail = backends.RetryAfter(2*time.Second, down)
				default:
					return false
				}
				return true
			},
			Hold: func() (<-chan struct{}, func()) {
				s.mu.Lock()
				defer s.mu.Unlock()
				s.arrived, s.release = make(chan struct{}), make(chan struct{})
				release := s.release
				var once sync.Once
				return s.arrived, func() { once.Do(func() { close(release) }) }
			},
		}
	})
}

// TestUnpurgeableURLIsPartial checks that a URL with no canonical form
// fails on its own, named by backends.FailedObjects, and the others are
// purged.
func TestUnpurgeableURLIsPartial(t *testing.T) {
	mem, err := NewMemoryStore()
	require.NoError(t, err)
	s := &conformanceStore{MemoryStore: mem}
	b, err := NewBackend(s)
	require.NoError(t, err)
	_, err = b.Purge(t.Context(), backends.Request{URLs: []string{"//elsewhere/x", "/ok"}})
	require.True(t, backends.IsPermanent(err), "%v", err)
	failed, ok := backends.FailedObjects(err)
	require.True(t, ok, "%v", err)
	require.Equal(t, []string{"//elsewhere/x"}, failed.URLs)
	require.Equal(t, []string{"/ok"}, s.received().URLs)
}
