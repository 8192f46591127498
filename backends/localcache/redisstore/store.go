package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/internal/nilcheck"
)

// DefaultPrefix is the key prefix of a [Store] when [WithPrefix] is not
// given.
const DefaultPrefix = "gormpurge"

// DefaultMaxEntryBytes is the largest entry a [Store] keeps when
// [WithMaxEntryBytes] is not given: 4 MiB, encoded. Larger pages are
// rendered every time rather than moved across the network on every hit.
const DefaultMaxEntryBytes = 4 << 20

// DefaultRetryAfterError is how long a [Store] fails fast after Redis
// could not be reached, when [WithRetryAfterError] is not given.
const DefaultRetryAfterError = time.Second

// sweepBatch bounds the expired entries one Set or Purge removes from the
// indexes: more than one, so that sweeping keeps up with entries expiring
// faster than new ones are stored, yet few, so that no script runs long.
const sweepBatch = 32

// generationUnknown is what Generation returns when Redis has no
// generation: never a stored generation, which Redis keeps below 1<<63.
const generationUnknown = math.MaxUint64

// seed returns a random 53-bit number for the scripts to start a missing
// generation at (Lua's math.random is deterministic in Redis).
func seed() string { return strconv.FormatUint(rand.Uint64()>>11, 10) }

// logInterval is the least time between two logs of one kind by a Store.
const logInterval = 10 * time.Second

// checkTimeout bounds New's checks of Redis's version and eviction
// policy.
const checkTimeout = 5 * time.Second

// maxBulkBytes is Redis's default proto-max-bulk-len: no value can be
// larger.
const maxBulkBytes = 512 << 20

// ErrUnavailable is wrapped by the errors a [Store] returns without asking
// Redis, for a while after Redis could not be reached (see
// [WithRetryAfterError]).
var ErrUnavailable = errors.New("redisstore: Redis was unreachable moments ago; failing fast")

// ErrUnsuitableServer is matched by the error New returns when the Redis
// server cannot hold the store safely: it is older than 7.0, or its
// maxmemory-policy may evict keys without a TTL. The fix is on the
// server, not in the options.
var ErrUnsuitableServer = errors.New("redisstore: unsuitable Redis server")

// Store is a [localcache.Store] in Redis, shared by every instance of an
// application: a page rendered by one instance is a hit on all of them,
// and a purge on any removes it for all. Create it with [New]; it is safe
// for concurrent use, starts no goroutine, and does not own its Redis
// client (close that yourself).
//
// The store has the memory store's semantics: an entry with TTL 0 stays
// until purged or cleared; Purge and Clear run as Lua scripts, atomic with
// respect to Set, which is a script too and stores nothing once the
// generation it was given has changed; replacing an entry drops its old
// indexes; and entries that expire leave their indexes within the next
// few writes (see the package documentation).
//
// When Redis cannot be reached, the store fails open: Get, Generation and
// Set return errors, on which [localcache.Middleware] renders the page as
// without a cache, and for [WithRetryAfterError] afterwards they return
// [ErrUnavailable] at once instead of waiting for Redis's timeouts on every
// request. Purge and Clear always ask Redis, and return its error so that
// the dispatcher retries them.
type Store struct {
	rdb           redis.UniversalClient
	base          string // "{prefix}"
	kGen, kIdx    string
	kExp          string
	maxEntryBytes int
	retryAfter    time.Duration
	log           *slog.Logger

	// openUntil is the UnixNano time until which Get, Generation and Set
	// fail fast; 0 when Redis answered last.
	openUntil atomic.Int64
	// down is set from an error reaching Redis until it answers again.
	down  atomic.Bool
	stats counters

	// The store's logs, each at most one every logInterval: during an
	// outage, every request fails (Stats counts them all).
	unreachableLog, reachableLog, refusedLog, unreadableLog rate.Sometimes
}

var _ localcache.Store = (*Store)(nil)

// New returns a Store keeping entries in rdb (a *redis.Client, a
// *redis.ClusterClient, or a Sentinel failover client), configured by
// opts. It returns an error naming every invalid option and saying how to
// fix it.
//
// New refuses a Redis older than 7.0 (every master's version, on a
// cluster, read with INFO server): the store's scripts declare flags,
// which Redis 7.0 introduced.
//
// New also reads Redis's maxmemory-policy (every master's, on a cluster)
// and returns an error if it is one of the allkeys-* policies: Redis could
// then evict an index set, and a purge would miss the entries it listed,
// which would be served stale. Use noeviction, or a volatile-* policy,
// which evicts only keys with a TTL: entries, never indexes. If Redis
// refuses CONFIG (as managed services may) or cannot be reached (New
// waits up to 5 seconds), New logs that it could not check and goes on:
// an application starts while Redis is down, and renders its pages
// without the cache until Redis is back.
func New(rdb redis.UniversalClient, opts ...Option) (*Store, error) {
	c := config{prefix: DefaultPrefix, maxEntryBytes: DefaultMaxEntryBytes, retryAfter: DefaultRetryAfterError, log: slog.Default()}
	switch {
	case rdb == nil:
		c.errs = append(c.errs, errors.New("New(nil): pass a Redis client, such as redis.NewClient(&redis.Options{Addr: addr})"))
	case nilcheck.IsNil(rdb):
		c.errs = append(c.errs, fmt.Errorf("New((%T)(nil)): the client is a nil %T: pass one from its constructor", rdb, rdb))
	}
	for _, opt := range opts {
		if opt == nil {
			c.errs = append(c.errs, errors.New("an Option is nil: remove it, or pass one made by a With... function"))
			continue
		}
		opt(&c)
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, fmt.Errorf("redisstore: invalid store configuration:\n%w", err)
	}
	base := "{" + c.prefix + "}"
	s := &Store{
		rdb:           rdb,
		base:          base,
		kGen:          base + ":g",
		kIdx:          base + ":x",
		kExp:          base + ":t",
		maxEntryBytes: c.maxEntryBytes,
		retryAfter:    c.retryAfter,
		log:           c.log,
	}
	for _, l := range []*rate.Sometimes{&s.unreachableLog, &s.reachableLog, &s.refusedLog, &s.unreadableLog} {
		*l = rate.Sometimes{First: 1, Interval: logInterval}
	}
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	if err := checkVersion(ctx, rdb, c.log); err != nil {
		return nil, err
	}
	if err := checkEviction(ctx, rdb, c.log); err != nil {
		return nil, err
	}
	// Start the generation, so that the first Set stores (see Generation);
	// if Redis cannot be reached, the first Set will.
	if err := rdb.SetNX(ctx, s.kGen, seed(), 0).Err(); err != nil {
		c.log.LogAttrs(ctx, slog.LevelWarn, "redisstore: could not start the generation; the first page rendered will not be stored",
			slog.Any("error", err))
	}
	return s, nil
}

func (s *Store) entryKey(key string) string { return s.base + ":e:" + key }
func (s *Store) indexKey(ix string) string  { return s.base + ":i:" + ix }

// Get returns the entry stored under key. An entry that cannot be decoded
// (one written by another version of this package) is a miss.
func (s *Store) Get(ctx context.Context, key string) (*localcache.Entry, bool, error) {
	if err := s.allow(); err != nil {
		return nil, false, err
	}
	b, err := s.rdb.Get(ctx, s.entryKey(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		s.succeeded(ctx)
		s.stats.misses.Add(1)
		return nil, false, nil
	}
	if err != nil {
		return nil, false, s.failed(ctx, "get", err)
	}
	s.succeeded(ctx)
	e, err := decodeEntry(b)
	if err != nil {
		s.stats.misses.Add(1)
		s.stats.unreadable.Add(1)
		s.unreadableLog.Do(func() {
			s.log.LogAttrs(ctx, slog.LevelWarn, "redisstore: an entry cannot be read (written by another version?); treating it as a miss",
				slog.Uint64("unreadable_total", s.stats.unreadable.Load()), slog.Any("error", err))
		})
		return nil, false, nil
	}
	s.stats.hits.Add(1)
	return e, true, nil
}

// Generation returns the store's generation, which Purge and Clear
// increment.
//
// The generation starts at a random 53-bit number, so that after Redis
// loses it (a restart without persistence, a failover to a replica that
// did not have it) the numbers it takes do not repeat those from before,
// which renders begun before might still hold. While it is missing,
// Generation returns 1<<64-1, which no Set accepts (generations stay
// below 1<<63), and the next Set, Purge or Clear sets a new random one.
func (s *Store) Generation(ctx context.Context) (uint64, error) {
	if err := s.allow(); err != nil {
		return 0, err
	}
	g, err := s.rdb.Get(ctx, s.kGen).Uint64()
	if errors.Is(err, redis.Nil) {
		s.succeeded(ctx)
		return generationUnknown, nil
	}
	if err != nil {
		return 0, s.failed(ctx, "generation", err)
	}
	s.succeeded(ctx)
	return g, nil
}

// Set stores e under key for e.TTL (with no expiry when it is 0), unless
// the generation is no longer gen, e.TTL is negative, or e is larger than
// [WithMaxEntryBytes]: then it stores nothing and returns false. It sweeps
// a few expired entries out of the indexes too. While Redis is over its
// maxmemory (with noeviction), Redis refuses the whole Set, which returns
// its error, and stores nothing.
func (s *Store) Set(ctx context.Context, key string, e *localcache.Entry, gen uint64) (bool, error) {
	if e.TTL < 0 {
		return false, nil
	}
	size := encodedSize(e)
	if size > s.maxEntryBytes {
		s.stats.refused.Add(1)
		return false, nil
	}
	if err := s.allow(); err != nil {
		return false, err
	}
	ttl := int64((e.TTL + time.Millisecond - 1) / time.Millisecond) // 1 ns is 1 ms, not "no expiry"
	keys := make([]string, 0, 4+len(e.Indexes))
	keys = append(keys, s.kGen, s.kIdx, s.kExp, s.entryKey(key))
	args := make([]any, 0, 7+len(e.Indexes))
	args = append(args, strconv.FormatUint(gen, 10), s.base, key, encodeEntry(make([]byte, 0, size), e), ttl, sweepBatch, seed())
	for _, ix := range e.Indexes {
		keys = append(keys, s.indexKey(ix))
		args = append(args, ix)
	}
	n, err := setScript.Run(ctx, s.rdb, keys, args...).Int()
	if err != nil {
		return false, s.failed(ctx, "set", err)
	}
	s.succeeded(ctx)
	if n == 0 {
		s.stats.stale.Add(1)
		return false, nil
	}
	s.stats.stores.Add(1)
	return true, nil
}

// Purge removes every entry listing any of indexes and increments the
// generation, atomically. It runs even while Redis is over its maxmemory,
// so that a full Redis never serves a purged page.
func (s *Store) Purge(ctx context.Context, indexes []string) (int, error) {
	keys := make([]string, 0, 3+len(indexes))
	keys = append(keys, s.kGen, s.kIdx, s.kExp)
	for _, ix := range indexes {
		keys = append(keys, s.indexKey(ix))
	}
	n, err := purgeScript.Run(ctx, s.rdb, keys, s.base, sweepBatch, seed()).Int()
	if err != nil {
		return 0, s.failed(ctx, "purge", err)
	}
	s.succeeded(ctx)
	s.stats.purged.Add(uint64(n))
	return n, nil
}

// Clear removes every entry of the store (those under its prefix only) and
// increments the generation, atomically, even while Redis is over its
// maxmemory. It runs in one script, which
// blocks Redis for about a microsecond per entry.
func (s *Store) Clear(ctx context.Context) (int, error) {
	n, err := clearScript.Run(ctx, s.rdb, []string{s.kGen, s.kIdx, s.kExp}, s.base, seed()).Int()
	if err != nil {
		return 0, s.failed(ctx, "clear", err)
	}
	s.succeeded(ctx)
	s.stats.purged.Add(uint64(n))
	return n, nil
}
