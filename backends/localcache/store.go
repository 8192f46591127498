package localcache

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gormpurge/gormpurge/internal/nilcheck"
)

// Store keeps cached responses for [Middleware] and removes them for
// [Backend]. Implement it to share one cache between several instances of
// the application (for example in Redis); [MemoryStore] is the in-process
// implementation. Implementations must be safe for concurrent use. The
// store treats keys and index keys as opaque strings: the middleware builds
// them.
//
// Implementations must treat an entry's TTL of 0 as "no expiry", not as
// "expire now": the entry stays until Purge or Clear removes it, or the
// store evicts it for room. [WithUntilPurged] routes store every page with TTL
// 0. A Redis store, for example, must SET such an entry without EX or PX,
// never with "EX 0", which Redis rejects. A store never keeps an entry
// with a negative TTL.
//
// Clear is new in this version: a Store written for an earlier one must
// add it (see [MemoryStore.Clear]) to compile.
type Store interface {
	// Get returns the entry stored under key, or false when there is none
	// or it has expired. The caller must not modify the entry.
	Get(ctx context.Context, key string) (*Entry, bool, error)
	// Generation returns a number that changes every time Purge or Clear
	// runs. The middleware reads it before rendering a response and passes
	// it to Set.
	Generation(ctx context.Context) (uint64, error)
	// Set stores e under key for e.TTL (with no expiry when e.TTL is 0),
	// replacing what was there, unless Purge or Clear has run since gen was
	// read from Generation, or e.TTL is negative: then it stores nothing
	// and returns false. The store must not modify e.
	Set(ctx context.Context, key string, e *Entry, gen uint64) (bool, error)
	// Purge removes every entry that lists any of indexes in its Indexes,
	// returns how many it removed, and changes the generation, even when
	// nothing matched.
	Purge(ctx context.Context, indexes []string) (int, error)
	// Clear removes every entry, returns how many it removed, and changes
	// the generation, so that a response rendered while it ran is not
	// stored.
	Clear(ctx context.Context) (int, error)
}

// Entry is one cached response, or one Vary record. It is not modified once
// given to a Store.
type Entry struct {
	// Header holds the response headers to replay, as clients receive them
	// (see [WithBrowserMaxAge]), with the entry's ETag, and without hop-by-hop
	// headers, Content-Length, Date, Age or X-Cache.
	Header http.Header
	// Body is the response body.
	Body []byte
	// Vary lists, canonicalised and sorted, the request headers the
	// response varies on.
	Vary []string
	// VaryRecord marks the entry stored under a page's base key when the
	// page varies: it holds only Vary, which says how to find the variant
	// that matches a request.
	VaryRecord bool
	// Indexes are the keys Purge finds the entry by: the path, host and
	// query of the request that filled it, and its tags.
	Indexes []string
	// TTL is how long the store keeps the entry. 0 means until it is
	// purged, cleared or evicted (see [WithUntilPurged]); a store never keeps
	// an entry with a negative TTL.
	TTL time.Duration
}

// size estimates the memory e takes under key, in bytes.
func (e *Entry) size(key string) int64 {
	n := entryOverhead + len(key) + len(e.Body)
	for k, vs := range e.Header {
		n += len(k)
		for _, v := range vs {
			n += len(v)
		}
	}
	for _, s := range e.Vary {
		n += len(s)
	}
	for _, s := range e.Indexes {
		n += 2 * len(s) // in the entry and in the store's index
	}
	return int64(n)
}

// entryOverhead is a rough count of the bytes an entry costs besides its
// strings: maps, slices, list and index nodes.
const entryOverhead = 256

// storeProblem returns nil if store can be given to fn, a constructor, and
// otherwise an error saying how to fix it, with fix: store is nil, or holds
// a nil pointer (or other nil value), which would panic at the first
// request.
func storeProblem(fn string, store Store, fix string) error {
	switch {
	case store == nil:
		return fmt.Errorf("%s(nil): %s", fn, fix)
	case nilcheck.IsNil(store):
		return fmt.Errorf("%s((%T)(nil)): the Store is a nil %T: %s", fn, store, store, fix)
	}
	return nil
}

// Advice of storeProblem.
const (
	passAStore   = "pass a Store, such as one from NewMemoryStore"
	passTheStore = "pass the Store given to Middleware, such as one from NewMemoryStore"
)
