package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
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

// An Option configures a [Store]; pass it to [New], which checks every
// option and reports each invalid one.
type Option func(*config)

type config struct {
	prefix        string
	maxEntryBytes int
	retryAfter    time.Duration
	log           *slog.Logger
	errs          []error
}

// WithPrefix sets the prefix of the store's keys, so that several sites
// (or several stores of one site) share one Redis: every key is
// "{prefix}:...", whose braces make prefix the Redis Cluster hash tag, so
// that the store's scripts find all its keys on one node. The prefix must
// not be empty nor contain '{' or '}'. Defaults to [DefaultPrefix].
func WithPrefix(p string) Option {
	return func(c *config) {
		if p == "" || strings.ContainsAny(p, "{}") {
			c.errs = append(c.errs, fmt.Errorf("WithPrefix(%q): the prefix must be non-empty and without braces, such as %q", p, "mysite"))
			return
		}
		c.prefix = p
	}
}

// WithMaxEntryBytes sets the largest entry the store keeps, in bytes once
// encoded (the body, headers and indexes, plus a few bytes); Set refuses a
// larger one, returning false, and the page is rendered every time. n must
// be positive and at most 512 MiB, Redis's largest value. Defaults to
// [DefaultMaxEntryBytes].
func WithMaxEntryBytes(n int) Option {
	return func(c *config) {
		if n < 1 || n > maxBulkBytes {
			c.errs = append(c.errs, fmt.Errorf("WithMaxEntryBytes(%d): the limit must be between 1 and 512<<20 bytes, such as 4<<20", n))
			return
		}
		c.maxEntryBytes = n
	}
}

// WithRetryAfterError sets how long, after Redis could not be reached,
// Get, Generation and Set fail fast with [ErrUnavailable] instead of
// asking Redis: during an outage, requests are rendered without waiting
// for a dial or read timeout each. Once d has passed, one request asks
// Redis again; if it answers, the store is back for every request. d = 0
// asks Redis every time. Replies Redis sends (such as an out-of-memory
// error) do not count: only errors reaching it. Defaults to
// [DefaultRetryAfterError]; it must not be negative.
func WithRetryAfterError(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.errs = append(c.errs, fmt.Errorf("WithRetryAfterError(%v): the time must not be negative: use 0 to ask Redis every time, or a time such as time.Second", d))
			return
		}
		c.retryAfter = d
	}
}

// WithLogger sets the logger the store reports to: Redis becoming
// unreachable and reachable again, commands Redis refuses, entries it
// cannot read (each at most once every 10 seconds; [Store.Stats] counts
// them all), and New's checks. Defaults to [slog.Default]; nil is an error.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.errs = append(c.errs, errors.New("WithLogger(nil): pass a logger, or slog.New(slog.DiscardHandler) to silence the store"))
			return
		}
		c.log = l
	}
}

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

// minMajorVersion is the oldest Redis the store works with: its scripts
// declare flags (allow-oom) in a shebang, which Redis 7.0 introduced.
const minMajorVersion = 7

// checkVersion returns an error if a Redis behind rdb is older than 7.0;
// it logs, and returns nil, if it cannot tell.
func checkVersion(ctx context.Context, rdb redis.UniversalClient, log *slog.Logger) error {
	var (
		mu       sync.Mutex
		versions []string
	)
	check := func(ctx context.Context, c redis.Cmdable) error {
		info, err := c.Info(ctx, "server").Result()
		if err != nil {
			return err
		}
		v, ok := infoField(info, "redis_version")
		if !ok {
			return errors.New("INFO server has no redis_version")
		}
		mu.Lock()
		defer mu.Unlock()
		versions = append(versions, v)
		return nil
	}
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return check(ctx, c) })
	} else {
		err = check(ctx, rdb)
	}
	for _, v := range versions {
		if verr := supportedVersion(v); verr != nil {
			return verr
		}
	}
	if err != nil {
		log.LogAttrs(ctx, slog.LevelWarn, "redisstore: could not check Redis's version; make sure it is 7.0 or later",
			slog.Any("error", err))
	}
	return nil
}

// supportedVersion returns an error if v, a redis_version, is older than
// minMajorVersion.
func supportedVersion(v string) error {
	major, _, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(major)
	if err != nil {
		return fmt.Errorf("%w: cannot read Redis's version %q: the store needs Redis 7.0 or later", ErrUnsuitableServer, v)
	}
	if n < minMajorVersion {
		return fmt.Errorf("%w: Redis %s is too old: the store needs Redis 7.0 or later, "+
			"whose scripts may declare flags (the store's purges must run when Redis is out of memory); upgrade Redis", ErrUnsuitableServer, v)
	}
	return nil
}

// infoField returns the value of field in the text of an INFO reply.
func infoField(info, field string) (string, bool) {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), field+":"); ok {
			return v, true
		}
	}
	return "", false
}

// checkEviction returns an error if a Redis behind rdb may evict keys
// without a TTL; it logs, and returns nil, if it cannot tell.
func checkEviction(ctx context.Context, rdb redis.UniversalClient, log *slog.Logger) error {
	var (
		mu       sync.Mutex
		policies []string
	)
	check := func(ctx context.Context, c redis.Cmdable) error {
		m, err := c.ConfigGet(ctx, "maxmemory-policy").Result()
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		policies = append(policies, m["maxmemory-policy"])
		return nil
	}
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return check(ctx, c) })
	} else {
		err = check(ctx, rdb)
	}
	for _, p := range policies {
		if strings.HasPrefix(p, "allkeys-") {
			return fmt.Errorf("%w: Redis's maxmemory-policy is %s, which may evict the store's index sets: "+
				"purges would then miss pages and serve them stale. Set maxmemory-policy to noeviction, or to a "+
				"volatile-* policy (such as volatile-lru), which evicts only entries, or give the store a Redis of its own", ErrUnsuitableServer, p)
		}
	}
	if err != nil {
		log.LogAttrs(ctx, slog.LevelWarn, "redisstore: could not check Redis's maxmemory-policy; "+
			"make sure it is noeviction or volatile-*, never allkeys-*", slog.Any("error", err))
	}
	return nil
}

// Key names.

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

// allow returns ErrUnavailable while the store fails fast after an error;
// once the time has passed, it lets one caller through to ask Redis.
func (s *Store) allow() error {
	u := s.openUntil.Load()
	if u == 0 {
		return nil
	}
	now := time.Now().UnixNano()
	if now < u || !s.openUntil.CompareAndSwap(u, now+int64(s.retryAfter)) {
		s.stats.errors.Add(1)
		s.stats.failedFast.Add(1)
		return ErrUnavailable
	}
	return nil // this caller asks Redis
}

// failed counts err, starts failing fast if Redis could not be reached,
// and returns err wrapped for op. It logs at most one record of each kind
// every logInterval.
func (s *Store) failed(ctx context.Context, op string, err error) error {
	s.stats.errors.Add(1)
	var reply redis.Error
	switch {
	case ctx.Err() != nil:
		// The caller gave up: not Redis's doing.
	case errors.As(err, &reply):
		s.stats.refusals.Add(1)
		s.refusedLog.Do(func() {
			s.log.LogAttrs(ctx, slog.LevelWarn, "redisstore: Redis refused a command; pages are rendered without the cache",
				slog.String("op", op), slog.Uint64("refusals_total", s.stats.refusals.Load()), slog.Any("error", err))
		})
	default:
		if s.retryAfter > 0 {
			s.openUntil.Store(time.Now().Add(s.retryAfter).UnixNano())
		}
		if !s.down.Swap(true) {
			s.stats.outages.Add(1)
			s.unreachableLog.Do(func() {
				s.log.LogAttrs(ctx, slog.LevelWarn, "redisstore: Redis unreachable; pages are rendered without the cache, retrying periodically",
					slog.String("op", op), slog.Duration("retry_after", s.retryAfter),
					slog.Uint64("outages_total", s.stats.outages.Load()), slog.Any("error", err))
			})
		}
	}
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

// succeeded ends failing fast.
func (s *Store) succeeded(ctx context.Context) {
	if s.openUntil.Load() != 0 {
		s.openUntil.Store(0)
	}
	if s.down.Load() && s.down.Swap(false) {
		s.reachableLog.Do(func() {
			s.log.LogAttrs(ctx, slog.LevelInfo, "redisstore: Redis reachable again; the cache is on",
				slog.Uint64("outages_total", s.stats.outages.Load()))
		})
	}
}

// Stats counts what a [Store] did since [New].
type Stats struct {
	// Hits and Misses count Gets that found an entry and that did not.
	Hits, Misses uint64
	// Stores counts Sets that stored; Stale those that did not because a
	// purge or clear ran since the page was rendered; Refused those whose
	// entry was larger than WithMaxEntryBytes.
	Stores, Stale, Refused uint64
	// Purged counts the entries Purge and Clear removed.
	Purged uint64
	// Errors counts the calls that returned an error, FailedFast among
	// them those that did without asking Redis (see WithRetryAfterError),
	// and Refusals those Redis answered with an error (such as "OOM
	// command not allowed" when it is full).
	Errors, FailedFast, Refusals uint64
	// Outages counts the times Redis could not be reached after it had
	// answered (or since New).
	Outages uint64
	// Unreadable counts the Gets that found an entry they could not read
	// (written by another version of this package), among Misses.
	Unreadable uint64
}

type counters struct {
	hits, misses, stores, stale, refused, purged, errors, failedFast atomic.Uint64
	refusals, outages, unreadable                                    atomic.Uint64
}

// Stats returns the store's counters, for metrics and logs. The store logs
// at most one record of each kind (Redis unreachable, reachable again, a
// refusal, an unreadable entry) every 10 seconds; Stats counts them all.
func (s *Store) Stats() Stats {
	return Stats{
		Hits:       s.stats.hits.Load(),
		Misses:     s.stats.misses.Load(),
		Stores:     s.stats.stores.Load(),
		Stale:      s.stats.stale.Load(),
		Refused:    s.stats.refused.Load(),
		Purged:     s.stats.purged.Load(),
		Errors:     s.stats.errors.Load(),
		FailedFast: s.stats.failedFast.Load(),
		Refusals:   s.stats.refusals.Load(),
		Outages:    s.stats.outages.Load(),
		Unreadable: s.stats.unreadable.Load(),
	}
}
