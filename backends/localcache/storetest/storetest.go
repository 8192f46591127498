// Package storetest is a conformance suite for [localcache.Store]
// implementations: the semantics the middleware and the backend rely on,
// checked in one line from a store's own tests. The memory store and the
// Redis store both pass it.
//
//	func TestStoreConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) localcache.Store {
//			return newStore(t) // empty, and independent of every other store it made
//		}, storetest.WithMaxEntryBytes(1<<20))
//	}
//
// [Run] checks that entries round-trip whole; that TTL 0 means no expiry
// and a positive TTL expires; that a negative TTL stores nothing; that
// Purge removes exactly the entries listing an index, counts them and
// changes the generation even when nothing matched; that Clear removes
// everything; that replacing an entry drops its old indexes; that a Set
// with a generation read before a Purge or Clear never stores, even when
// they race; that stores made by separate factory calls do not see each
// other; and, with [WithMaxEntryBytes], that an entry above the limit is
// refused.
package storetest

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
)

// Factory returns a new, empty store for one check. Stores from separate
// calls must be independent: for a shared server, give each a fresh key
// prefix. Close or clean up the store in t.Cleanup.
type Factory func(t *testing.T) localcache.Store

// An Option configures [Run].
type Option func(*config)

type config struct {
	maxEntryBytes int64
	expiry        time.Duration
}

// WithMaxEntryBytes says the factory's stores refuse an entry larger than n
// bytes (as they count it) and keep one of a few hundred bytes: Run checks
// both. Without it, the size check is skipped.
func WithMaxEntryBytes(n int64) Option {
	return func(c *config) { c.maxEntryBytes = n }
}

// WithExpiry sets the TTL of the entries Run checks expiry with; they must
// be gone within 20 times that. Defaults to 100 milliseconds; raise it for
// a store whose expiry is coarse.
func WithExpiry(d time.Duration) Option {
	return func(c *config) { c.expiry = d }
}

// Run runs the conformance checks, each as a subtest with a store of its
// own from newStore.
func Run(t *testing.T, newStore Factory, opts ...Option) {
	t.Helper()
	c := config{expiry: 100 * time.Millisecond}
	for _, opt := range opts {
		opt(&c)
	}
	checks := []struct {
		name string
		fn   func(t *testing.T, s localcache.Store)
	}{
		{"MissingKeyIsAMiss", checkMissing},
		{"EntryRoundTripsWhole", checkRoundTrip},
		{"SetReplaces", checkReplace},
		{"ZeroTTLNeverExpires", func(t *testing.T, s localcache.Store) { checkZeroTTL(t, s, c.expiry) }},
		{"PositiveTTLExpires", func(t *testing.T, s localcache.Store) { checkExpiry(t, s, c.expiry) }},
		{"NegativeTTLStoresNothing", checkNegativeTTL},
		{"PurgeRemovesExactlyTheIndexedEntries", checkPurge},
		{"PurgeChangesTheGenerationEvenWhenNothingMatched", checkPurgeGeneration},
		{"PurgeOfNoIndexesChangesTheGeneration", checkEmptyPurge},
		{"ReplacedEntryLeavesItsOldIndexes", checkReplaceIndexes},
		{"ClearRemovesEverything", checkClear},
		{"SetWithAnOldGenerationStoresNothing", checkStaleSet},
		{"SetRacingPurgeNeverStoresAfterIt", checkRace},
		{"ExpiredEntriesArePurgedCleanly", func(t *testing.T, s localcache.Store) { checkExpiredPurge(t, s, c.expiry) }},
	}
	for _, ch := range checks {
		t.Run(ch.name, func(t *testing.T) { ch.fn(t, newStore(t)) })
	}
	t.Run("StoresAreIndependent", func(t *testing.T) { checkIndependent(t, newStore(t), newStore(t)) })
	t.Run("SuspendedStoreAnswersAndStoresNothing", func(t *testing.T) { checkSuspend(t, newStore(t)) })
	if c.maxEntryBytes > 0 {
		t.Run("EntryAboveTheLimitIsRefused", func(t *testing.T) { checkMaxEntry(t, newStore(t), c.maxEntryBytes) })
	}
}

// entry returns an entry with a body naming it and the given indexes.
func entry(name string, ttl time.Duration, indexes ...string) *localcache.Entry {
	return &localcache.Entry{
		Header:  http.Header{"Content-Type": {"text/html; charset=utf-8"}, "Etag": {`"` + name + `"`}},
		Body:    []byte("<p>" + name + "</p>"),
		Indexes: indexes,
		TTL:     ttl,
	}
}

func gen(t *testing.T, s localcache.Store) uint64 {
	t.Helper()
	g, err := s.Generation(t.Context())
	require.NoError(t, err, "Generation")
	return g
}

func set(t *testing.T, s localcache.Store, key string, e *localcache.Entry) {
	t.Helper()
	ok, err := s.Set(t.Context(), key, e, gen(t, s))
	require.NoError(t, err, "Set %q", key)
	require.True(t, ok, "Set %q with the current generation must store", key)
}

func has(t *testing.T, s localcache.Store, key string) bool {
	t.Helper()
	_, ok, err := s.Get(t.Context(), key)
	require.NoError(t, err, "Get %q", key)
	return ok
}

func checkMissing(t *testing.T, s localcache.Store) {
	e, ok, err := s.Get(t.Context(), "https://example.com/nothing")
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Nil(t, e)
}

func checkRoundTrip(t *testing.T, s localcache.Store) {
	body := make([]byte, 256)
	for i := range body {
		body[i] = byte(i) // every byte value, NUL and invalid UTF-8 included
	}
	in := &localcache.Entry{
		Header: http.Header{
			"Content-Type": {"text/html; charset=utf-8"},
			"Link":         {"</a.css>; rel=preload", "</b.js>; rel=preload"},
			"Etag":         {`"abc"`},
		},
		Body:    body,
		Vary:    []string{"Accept-Encoding", "Accept-Language"},
		Indexes: []string{"p:/a", "t:post:1", "t:café ✓"},
		TTL:     time.Hour,
	}
	rec := &localcache.Entry{VaryRecord: true, Vary: []string{"Accept-Encoding"}, Indexes: []string{"p:/a"}}
	set(t, s, "https://example.com/a", rec)
	set(t, s, "https://example.com/a\x00gzip", in)

	got, ok, err := s.Get(t.Context(), "https://example.com/a\x00gzip")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, in.Header, got.Header)
	assert.Equal(t, in.Body, got.Body)
	assert.Equal(t, in.Vary, got.Vary)
	assert.False(t, got.VaryRecord)
	assert.ElementsMatch(t, in.Indexes, got.Indexes)

	got, ok, err = s.Get(t.Context(), "https://example.com/a")
	require.NoError(t, err)
	require.True(t, ok)
	assert.True(t, got.VaryRecord)
	assert.Equal(t, rec.Vary, got.Vary)
	assert.Empty(t, got.Body)
}

func checkReplace(t *testing.T, s localcache.Store) {
	set(t, s, "k", entry("one", time.Hour, "p:/k"))
	set(t, s, "k", entry("two", time.Hour, "p:/k"))
	got, ok, err := s.Get(t.Context(), "k")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "<p>two</p>", string(got.Body))
	n, err := s.Purge(t.Context(), []string{"p:/k"})
	require.NoError(t, err)
	assert.Equal(t, 1, n, "a replaced entry is one entry")
}

func checkZeroTTL(t *testing.T, s localcache.Store, expiry time.Duration) {
	set(t, s, "forever", entry("forever", 0, "p:/forever"))
	set(t, s, "brief", entry("brief", expiry, "p:/brief"))
	require.Eventually(t, func() bool { return !has(t, s, "brief") }, 20*expiry, expiry/10,
		"an entry with a positive TTL must expire")
	assert.True(t, has(t, s, "forever"), "TTL 0 means no expiry, never expire now")
}

func checkExpiry(t *testing.T, s localcache.Store, expiry time.Duration) {
	set(t, s, "brief", entry("brief", expiry, "p:/brief"))
	assert.True(t, has(t, s, "brief"), "an entry is there before its TTL")
	require.Eventually(t, func() bool { return !has(t, s, "brief") }, 20*expiry, expiry/10)
}

func checkNegativeTTL(t *testing.T, s localcache.Store) {
	ok, err := s.Set(t.Context(), "k", entry("neg", -time.Second, "p:/k"), gen(t, s))
	require.NoError(t, err)
	assert.False(t, ok, "a negative TTL stores nothing")
	assert.False(t, has(t, s, "k"))
}

func checkPurge(t *testing.T, s localcache.Store) {
	set(t, s, "a", entry("a", time.Hour, "p:/a", "t:post:1"))
	set(t, s, "b", entry("b", 0, "p:/b", "t:post:1", "t:post:2"))
	set(t, s, "c", entry("c", time.Hour, "p:/c", "t:post:3"))
	n, err := s.Purge(t.Context(), []string{"t:post:1", "t:missing"})
	require.NoError(t, err)
	assert.Equal(t, 2, n, "Purge counts the entries it removed")
	assert.False(t, has(t, s, "a"))
	assert.False(t, has(t, s, "b"))
	assert.True(t, has(t, s, "c"), "an entry not listing the index stays")
	n, err = s.Purge(t.Context(), []string{"t:post:2"})
	require.NoError(t, err)
	assert.Zero(t, n, "an entry already purged is not counted again")
	n, err = s.Purge(t.Context(), []string{"p:/c", "t:post:3"})
	require.NoError(t, err)
	assert.Equal(t, 1, n, "an entry under two purged indexes counts once")
}

func checkPurgeGeneration(t *testing.T, s localcache.Store) {
	g := gen(t, s)
	_, err := s.Purge(t.Context(), []string{"t:nothing"})
	require.NoError(t, err)
	assert.NotEqual(t, g, gen(t, s))
}

func checkEmptyPurge(t *testing.T, s localcache.Store) {
	g := gen(t, s)
	_, err := s.Purge(t.Context(), nil)
	require.NoError(t, err)
	assert.NotEqual(t, g, gen(t, s))
}

func checkReplaceIndexes(t *testing.T, s localcache.Store) {
	set(t, s, "k", entry("old", time.Hour, "t:old"))
	set(t, s, "k", entry("new", time.Hour, "t:new"))
	n, err := s.Purge(t.Context(), []string{"t:old"})
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.True(t, has(t, s, "k"), "the new entry does not list the old index")
	n, err = s.Purge(t.Context(), []string{"t:new"})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}

func checkClear(t *testing.T, s localcache.Store) {
	for i := range 10 {
		set(t, s, fmt.Sprint("k", i), entry(fmt.Sprint(i), time.Duration(i)*time.Hour, fmt.Sprint("p:/", i)))
	}
	g := gen(t, s)
	n, err := s.Clear(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 10, n)
	assert.NotEqual(t, g, gen(t, s))
	for i := range 10 {
		assert.False(t, has(t, s, fmt.Sprint("k", i)))
	}
	n, err = s.Purge(t.Context(), []string{"p:/1"})
	require.NoError(t, err)
	assert.Zero(t, n, "Clear leaves no index behind")
	set(t, s, "k1", entry("again", time.Hour, "p:/1"))
	assert.True(t, has(t, s, "k1"), "a cleared store stores again")
}

func checkStaleSet(t *testing.T, s localcache.Store) {
	for _, op := range []struct {
		name string
		run  func() error
	}{
		{"purge", func() error { _, err := s.Purge(t.Context(), []string{"t:unrelated"}); return err }},
		{"clear", func() error { _, err := s.Clear(t.Context()); return err }},
	} {
		g := gen(t, s)
		require.NoError(t, op.run())
		ok, err := s.Set(t.Context(), "k", entry("stale", time.Hour, "p:/k"), g)
		require.NoError(t, err)
		assert.False(t, ok, "a Set with a generation read before a %s must not store", op.name)
		assert.False(t, has(t, s, "k"))
	}
}

// checkRace runs Sets against Purges: every Set that reports it stored
// must have been stored before the next Purge removed it, never after.
func checkRace(t *testing.T, s localcache.Store) {
	ctx := t.Context()
	const writers, rounds = 4, 50
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				g, err := s.Generation(ctx)
				if err != nil {
					errs <- err
					return
				}
				if _, err := s.Set(ctx, fmt.Sprintf("w%d-%d", w, i%8), entry("x", time.Hour, "t:all"), g); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range rounds {
		// The invariant the middleware relies on, under load: a Set with
		// the generation read before a purge never stores.
		g, err := s.Generation(ctx)
		require.NoError(t, err)
		_, err = s.Purge(ctx, []string{"t:all"})
		require.NoError(t, err)
		ok, err := s.Set(ctx, "probe", entry("probe", time.Hour, "t:probe"), g)
		require.NoError(t, err)
		require.False(t, ok, "a Set with the generation from before a purge stored, with other Sets racing")
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	n, err := s.Purge(ctx, []string{"t:all"})
	require.NoError(t, err)
	assert.LessOrEqual(t, n, writers*8)
	for w := range writers {
		for i := range 8 {
			assert.False(t, has(t, s, fmt.Sprintf("w%d-%d", w, i)), "an entry survived a purge of its index")
		}
	}
}

// checkExpiredPurge checks that entries that expired are not counted by a
// purge, and that their index leaves no trace that matches a new entry
// wrongly.
func checkExpiredPurge(t *testing.T, s localcache.Store, expiry time.Duration) {
	set(t, s, "gone", entry("gone", expiry, "t:shared"))
	require.Eventually(t, func() bool { return !has(t, s, "gone") }, 20*expiry, expiry/10)
	set(t, s, "live", entry("live", time.Hour, "t:other"))
	n, err := s.Purge(t.Context(), []string{"t:shared"})
	require.NoError(t, err)
	assert.Zero(t, n, "an expired entry is not counted as purged")
	assert.True(t, has(t, s, "live"))
}

func checkIndependent(t *testing.T, a, b localcache.Store) {
	set(t, a, "k", entry("a", time.Hour, "t:x"))
	assert.False(t, has(t, b, "k"), "a store sees another's entry")
	set(t, b, "k", entry("b", time.Hour, "t:x"))
	n, err := b.Purge(t.Context(), []string{"t:x"})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	got, ok, err := a.Get(t.Context(), "k")
	require.NoError(t, err)
	require.True(t, ok, "a purge of one store removed another's entry")
	assert.Equal(t, "<p>a</p>", string(got.Body))
	_, err = b.Clear(t.Context())
	require.NoError(t, err)
	assert.True(t, has(t, a, "k"), "a clear of one store removed another's entry")
}

func checkMaxEntry(t *testing.T, s localcache.Store, max int64) {
	big := entry("big", time.Hour, "p:/big")
	big.Body = make([]byte, max+1)
	ok, err := s.Set(t.Context(), "big", big, gen(t, s))
	require.NoError(t, err)
	assert.False(t, ok, "an entry above the limit is refused, not an error")
	assert.False(t, has(t, s, "big"))
	set(t, s, "small", entry("small", time.Hour, "p:/small"))
}

// checkSuspend checks a [localcache.Suspender]'s contract; it skips a
// store that is not one.
func checkSuspend(t *testing.T, s localcache.Store) {
	sp, ok := s.(localcache.Suspender)
	if !ok {
		t.Skipf("%T is not a localcache.Suspender", s)
	}
	set(t, s, "k", entry("k", time.Hour, "p:/k"))
	before := gen(t, s)
	sp.Suspend()
	assert.False(t, has(t, s, "k"), "a suspended store answers nothing")
	ok, err := s.Set(t.Context(), "k2", entry("k2", time.Hour, "p:/k2"), gen(t, s))
	require.NoError(t, err)
	assert.False(t, ok, "a suspended store stores nothing")
	during := gen(t, s)
	assert.NotEqual(t, before, during)
	sp.Resume()
	assert.False(t, has(t, s, "k"), "a resumed store is empty")
	ok, err = s.Set(t.Context(), "k3", entry("k3", time.Hour, "p:/k3"), during)
	require.NoError(t, err)
	assert.False(t, ok, "a page rendered while the store was suspended is not stored")
	set(t, s, "k3", entry("k3", time.Hour, "p:/k3"))
	assert.True(t, has(t, s, "k3"))
}
