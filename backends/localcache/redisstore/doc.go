// Package redisstore keeps the pages of [localcache.Middleware] in Redis,
// shared by every instance of an application, and carries purges between
// instances that keep pages in memory over Redis pub/sub.
//
// # A shared store
//
// [New] returns a [localcache.Store] on a Redis client: every instance
// gives its Middleware and its [localcache.Backend] a Store on the same
// Redis (and prefix), and a page rendered by one is a hit on all; a purge
// on any removes it for all, with no bus:
//
//	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond})
//	store, err := redisstore.New(rdb, redisstore.WithPrefix("mysite"))
//
// The store works on a single Redis, on Sentinel (redis.NewFailoverClient)
// and on Redis Cluster (redis.NewClusterClient): all of a store's keys
// share the hash tag "{prefix}", so they live in one slot and the store's
// Lua scripts, which keep Purge and Clear atomic with respect to Set, run
// there. (A store is therefore on one node of a cluster; give sites or
// stores different prefixes to spread them.)
//
// A render is stored only if no purge ran while it was rendered: Set
// compares the generation the middleware read before rendering with the
// one in Redis, which Purge and Clear increment. The generation starts at
// a random 53-bit number, and again whenever Redis has lost it (a restart
// without persistence, a failover to a replica without it), so that it
// never repeats a number a render begun before could hold; while it is
// missing, [Store.Generation] returns a number no Set accepts.
//
// Entries that expire leave their index sets: each Set and Purge also
// removes up to a few dozen expired entries from the indexes, so the
// indexes hold the live entries plus those expired since the last writes.
//
// The store needs Redis 7.0 or later (or a server compatible with it,
// such as Valkey): [New] refuses an older one. Its Purge and Clear
// scripts declare the allow-oom flag, so that they run even when Redis is
// over its maxmemory with noeviction (a full Redis that refused purges
// would serve stale pages for good); Set is then refused, and pages are
// rendered without the cache until memory is freed.
//
// Redis must not evict the index sets, or a purge would miss entries and
// they would be served stale: New refuses a Redis whose maxmemory-policy
// is allkeys-*. Use noeviction, or volatile-* (entries have a TTL and may
// be evicted; indexes have none and stay); a page stored with TTL 0 (see
// localcache.WithUntilPurged) has no TTL, so volatile policies never evict
// it.
//
// When Redis cannot be reached the store fails open: its errors make the
// middleware render pages as without a cache (and log), never fail them.
// So that an outage does not add a Redis timeout to every request, after
// such an error the store fails fast for a second ([WithRetryAfterError])
// before trying again; give the client short dial and read timeouts too,
// as above. [Store.Stats] counts hits, misses, errors, outages and the
// rest; the store logs each kind of trouble (Redis unreachable, a command
// refused, an entry it cannot read) at most once every 10 seconds, so
// that an outage does not log on every request, and Stats counts them
// all.
//
// # A bus
//
// [NewBus] returns a [localcache.Bus] on Redis pub/sub, for instances that
// keep pages in a [localcache.MemoryStore] each:
//
//	bus, err := redisstore.NewBus(rdb, "mysite:purges")
//	backend, err := localcache.NewBackend(store, localcache.WithBus(bus))
//	go localcache.Follow(ctx, store, bus)
//
// Redis pub/sub keeps no messages: an instance disconnected when a purge
// is published never gets it. The bus reports every disconnection, every
// error reading from Redis, and every health check ping left unanswered
// for twice the health check interval ([WithHealthCheck]; a subscription
// pings Redis once nothing has come from it for an interval), as
// [localcache.EventDown], on which Follow empties and
// suspends the memory store until the subscription is back: after each,
// the subscription gives its connection up and subscribes on a new one,
// and reports [localcache.EventUp] once Redis confirms it. An instance
// never serves a page whose purge it may have missed, except in the
// moments before it notices the connection is gone (three health check
// intervals after Redis's last reply on a silent network failure; at once
// when the connection is reset). The subscription reads with no deadline, so a
// message slowed part-way is read whole; a Down's reason never quotes a
// message. A message the bus cannot read (from another version of this
// package during a rolling deploy, or from another publisher) may have
// been a purge: the subscription reports EventDown then EventUp for it, so
// that Follow empties the store, and logs a warning at most every 10
// seconds.
package redisstore
