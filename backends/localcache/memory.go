package localcache

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// DefaultMaxBytes is the memory bound of a [MemoryStore] when [WithMaxBytes] is
// not given: 64 MiB.
const DefaultMaxBytes = 64 << 20

// MemoryStore is a [Store] that keeps entries in this process's memory,
// bounded by bytes: when a new entry does not fit, the least recently used
// ones are evicted. Expired entries are removed when read or evicted; an
// entry with TTL 0 stays until purged, cleared or evicted. The store starts
// no goroutine. Create it with [NewMemoryStore]; it is safe for
// concurrent use.
type MemoryStore struct {
	now      func() time.Time
	maxBytes int64

	mu    sync.Mutex
	lru   *simplelru.LRU[string, *memItem]
	bytes int64
	index map[string]map[string]struct{} // index key -> entry keys
	gen   uint64
	// evictions counts the entries removed for room; see StoreStats.
	evictions uint64
	// suspended makes Get miss and Set store nothing; see Suspend.
	suspended bool
}

type memItem struct {
	e       *Entry
	expires time.Time // zero: never
	size    int64
}

// A StoreOption configures a [MemoryStore]; pass it to [NewMemoryStore],
// which checks every option and reports each invalid one.
type StoreOption func(*storeConfig)

type storeConfig struct {
	now      func() time.Time
	maxBytes int64
	errs     []error
}

// WithMaxBytes bounds the memory the store's entries take, counted as the bytes
// of their keys, bodies, headers and index keys plus a fixed overhead each.
// An entry larger than n is not stored. n must be positive. Defaults to
// [DefaultMaxBytes].
func WithMaxBytes(n int64) StoreOption {
	return func(c *storeConfig) { c.maxBytes = n }
}

// WithClock sets the function the store reads the time from, for tests.
// Defaults to time.Now; nil is an error.
func WithClock(now func() time.Time) StoreOption {
	return func(c *storeConfig) {
		if now == nil {
			c.errs = append(c.errs, errors.New("WithClock(nil): pass time.Now or a test clock's Now, or leave the option out"))
			return
		}
		c.now = now
	}
}

// NewMemoryStore returns an empty MemoryStore configured by opts. It
// returns an error naming every invalid option and saying how to fix it.
func NewMemoryStore(opts ...StoreOption) (*MemoryStore, error) {
	c := storeConfig{now: time.Now, maxBytes: DefaultMaxBytes}
	for _, opt := range opts {
		if opt == nil {
			c.errs = append(c.errs, errors.New("a StoreOption is nil: remove it, or pass one made by a With... function"))
			continue
		}
		opt(&c)
	}
	errs := c.errs
	if c.maxBytes < 1 {
		errs = append(errs, fmt.Errorf("WithMaxBytes(%d): the store needs a positive size in bytes, such as 64<<20", c.maxBytes))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("localcache: invalid store configuration:\n%w", err)
	}
	s := &MemoryStore{now: c.now, maxBytes: c.maxBytes}
	s.reset()
	return s, nil
}

// reset empties the store, with s.mu held or before s is shared.
func (s *MemoryStore) reset() {
	// The LRU's own count bound is never reached: bytes bound the store.
	s.lru, _ = simplelru.NewLRU(math.MaxInt, s.evicted)
	s.index = make(map[string]map[string]struct{})
	s.bytes = 0
}

// evicted forgets key's index entries and bytes. The LRU calls it, with
// s.mu held, whenever an entry leaves.
func (s *MemoryStore) evicted(key string, it *memItem) {
	s.bytes -= it.size
	for _, ix := range it.e.Indexes {
		if keys := s.index[ix]; keys != nil {
			delete(keys, key)
			if len(keys) == 0 {
				delete(s.index, ix)
			}
		}
	}
}

// Get returns the live entry under key and marks it recently used.
func (s *MemoryStore) Get(_ context.Context, key string) (*Entry, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.suspended {
		return nil, false, nil
	}
	it, ok := s.lru.Get(key)
	if !ok {
		return nil, false, nil
	}
	if !it.expires.IsZero() && !s.now().Before(it.expires) {
		s.lru.Remove(key)
		return nil, false, nil
	}
	return it.e, true, nil
}

// Generation returns the number of purges and clears so far.
func (s *MemoryStore) Generation(context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen, nil
}

// Set stores e under key unless a purge or clear ran since gen, e.TTL is
// negative, or e is larger than the whole store; it evicts the least
// recently used entries to make room. An entry with TTL 0 never expires.
func (s *MemoryStore) Set(_ context.Context, key string, e *Entry, gen uint64) (bool, error) {
	size := e.size(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen || size > s.maxBytes || e.TTL < 0 || s.suspended {
		return false, nil
	}
	var expires time.Time
	if e.TTL > 0 {
		expires = s.now().Add(e.TTL)
	}
	s.lru.Remove(key)
	s.lru.Add(key, &memItem{e: e, expires: expires, size: size})
	s.bytes += size
	for _, ix := range e.Indexes {
		keys := s.index[ix]
		if keys == nil {
			keys = make(map[string]struct{})
			s.index[ix] = keys
		}
		keys[key] = struct{}{}
	}
	for s.bytes > s.maxBytes {
		s.lru.RemoveOldest()
		s.evictions++
	}
	return true, nil
}

// Purge removes every entry listed under any of indexes.
func (s *MemoryStore) Purge(_ context.Context, indexes []string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	n := 0
	for _, ix := range indexes {
		for key := range s.index[ix] {
			if s.lru.Remove(key) {
				n++
			}
		}
	}
	return n, nil
}

// Clear removes every entry, expired ones not yet removed included, and
// returns how many there were.
func (s *MemoryStore) Clear(context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	n := s.lru.Len()
	s.reset()
	return n, nil
}

// Suspend empties the store and makes it answer nothing and store nothing
// until [MemoryStore.Resume]: every request renders its page, as without a
// cache. [Follow] suspends the store while its bus may be losing purges,
// so that the instance never serves a page whose purge it may have missed.
func (s *MemoryStore) Suspend() { s.setSuspended(true) }

// Resume ends a [MemoryStore.Suspend]: the store answers and stores again,
// empty. A page rendered while the store was suspended is not stored.
func (s *MemoryStore) Resume() { s.setSuspended(false) }

// setSuspended empties the store, changes its generation (so that no page
// rendered before is stored) and sets whether it is suspended.
func (s *MemoryStore) setSuspended(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	s.suspended = on
	s.reset()
}

// Suspended reports whether the store is suspended (see
// [MemoryStore.Suspend]).
func (s *MemoryStore) Suspended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.suspended
}

// Len returns the number of entries held, expired ones not yet removed
// included.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}

// StoreStats returns the store's entries, bytes and evictions, for a
// Middleware [WithObserver]. Evictions counts the least recently used
// entries removed to make room since the store was made (Clear and Suspend
// do not reset it), not those purged, cleared, replaced or expired.
func (s *MemoryStore) StoreStats() StoreStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return StoreStats{Entries: s.lru.Len(), Bytes: s.bytes, Evictions: s.evictions}
}

// Bytes returns the memory the entries take, as [WithMaxBytes] counts it.
func (s *MemoryStore) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}
