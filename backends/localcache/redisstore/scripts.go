package redisstore

import "github.com/redis/go-redis/v9"

// The store's keys, all under one hash tag, "{prefix}", so that Redis
// Cluster keeps them in one slot and the scripts below may touch any of
// them:
//
//	{prefix}:g          the generation: a counter Purge and Clear increment,
//	                    which starts at a random 53-bit number
//	{prefix}:e:<key>    an entry, encoded (see encodeEntry), with the entry's TTL
//	{prefix}:i:<index>  a set: the keys of the entries listing index
//	{prefix}:x          a hash: entry key -> its indexes (msgpack), without TTL
//	{prefix}:t          a sorted set: entry key -> when it expires (ms, Redis's clock)
//
// The hash and the sorted set outlive the entries that expire, so that
// the scripts can find and clean the index sets of an expired entry: each
// Set and Purge also sweeps up to sweepBatch of the entries whose time
// has passed. Index sets therefore hold no more than the live entries plus
// those expired since the last sweeps.
//
// Each script declares the keys its caller knows (the generation, the
// hash, the sorted set, the entry it writes, the index sets it adds to or
// purges); the keys it finds as it runs (the old indexes of a replaced
// entry, the entries listed in a purged index, the expired ones it
// sweeps) it builds from the same "{prefix}" tag, so they are in the
// same slot, on the same node, as the declared ones.

// luaPrelude holds the helpers every script uses.
const luaPrelude = `
if redis.replicate_commands then redis.replicate_commands() end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- init_generation sets the generation to seed, a random number, if it is
-- missing (Redis restarted without it), so that the numbers it takes do
-- not repeat those from before: a Set given one of those must not store.
-- (The seed comes from the caller: Lua's math.random is deterministic.)
local function init_generation(g, seed)
  if redis.call('EXISTS', g) == 0 then
    redis.call('SET', g, seed)
  end
end

-- unindex removes the index memberships and records of the entry under
-- key, but not the entry.
local function unindex(base, x, t, key)
  local packed = redis.call('HGET', x, key)
  if packed then
    for _, ix in ipairs(cmsgpack.unpack(packed)) do
      redis.call('SREM', base .. ':i:' .. ix, key)
    end
    redis.call('HDEL', x, key)
  end
  redis.call('ZREM', t, key)
end

-- forget removes the entry under key, its index memberships and records,
-- and returns 1 if the entry was still there (not expired).
local function forget(base, x, t, key)
  local n = redis.call('DEL', base .. ':e:' .. key)
  unindex(base, x, t, key)
  return n
end

-- sweep forgets up to limit entries whose expiry time has passed.
local function sweep(base, x, t, now, limit)
  local keys = redis.call('ZRANGEBYSCORE', t, '-inf', now, 'LIMIT', 0, limit)
  for _, key in ipairs(keys) do
    forget(base, x, t, key)
  end
end
`

// setScript stores an entry if the generation is still the caller's.
//
//	KEYS: generation, hash, sorted set, entry, then the entry's index sets
//	ARGV: generation, base, key, encoded entry, TTL in ms (0: none),
//	      sweep limit, a random 53-bit seed, then the entry's indexes
//
// It returns 1 if it stored the entry, 0 if the generation had changed or
// was missing (Redis restarted without it): then it sets the generation
// to the seed, so that generations from before are not repeated.
//
// Its shebang, without the allow-oom flag, makes Redis 7 refuse the whole
// script while Redis is over maxmemory (with noeviction), rather than
// check memory only at its first write; and its first write is the SET of
// the entry, which grows memory, so that it would be refused before any
// other write too. The old entry's indexes are dropped, and expired
// entries swept, after.
var setScript = redis.NewScript(`#!lua
` + luaPrelude + `
local base, key, ttl = ARGV[2], ARGV[3], tonumber(ARGV[5])
local gen = redis.call('GET', KEYS[1])
if not gen then
  redis.call('SET', KEYS[1], ARGV[7])
  return 0
end
if gen ~= ARGV[1] then
  return 0
end
local now = now_ms()
if ttl > 0 then
  redis.call('SET', KEYS[4], ARGV[4], 'PX', ttl)
else
  redis.call('SET', KEYS[4], ARGV[4])
end
unindex(base, KEYS[2], KEYS[3], key)
if ttl > 0 then
  redis.call('ZADD', KEYS[3], now + ttl, key)
end
local indexes = {}
for i = 8, #ARGV do
  redis.call('SADD', KEYS[i - 3], key)
  indexes[#indexes + 1] = ARGV[i]
end
redis.call('HSET', KEYS[2], key, cmsgpack.pack(indexes))
sweep(base, KEYS[2], KEYS[3], now, tonumber(ARGV[6]))
return 1
`)

// purgeScript changes the generation and removes every entry listed in the
// given index sets.
//
//	KEYS: generation, hash, sorted set, then the index sets to purge
//	ARGV: base, sweep limit, a random 53-bit seed
//
// It returns the number of entries removed that had not expired. Its
// allow-oom flag lets it run while Redis is over maxmemory (with
// noeviction): a full Redis must still purge, or its pages would be
// served stale.
var purgeScript = redis.NewScript(`#!lua flags=allow-oom
` + luaPrelude + `
local base = ARGV[1]
init_generation(KEYS[1], ARGV[3])
redis.call('INCR', KEYS[1])
sweep(base, KEYS[2], KEYS[3], now_ms(), tonumber(ARGV[2]))
local n = 0
for i = 4, #KEYS do
  for _, key in ipairs(redis.call('SMEMBERS', KEYS[i])) do
    n = n + forget(base, KEYS[2], KEYS[3], key)
  end
  redis.call('DEL', KEYS[i])
end
return n
`)

// clearScript changes the generation and removes every entry and index.
//
//	KEYS: generation, hash, sorted set
//	ARGV: base, a random 53-bit seed
//
// It returns the number of entries removed that had not expired. Like
// purgeScript, it runs while Redis is over maxmemory.
var clearScript = redis.NewScript(`#!lua flags=allow-oom
` + luaPrelude + `
local base = ARGV[1]
init_generation(KEYS[1], ARGV[2])
redis.call('INCR', KEYS[1])
local n = 0
local cursor = '0'
repeat
  local r = redis.call('HSCAN', KEYS[2], cursor, 'COUNT', 1000)
  cursor = r[1]
  local kv = r[2]
  for i = 1, #kv, 2 do
    n = n + redis.call('DEL', base .. ':e:' .. kv[i])
    for _, ix in ipairs(cmsgpack.unpack(kv[i + 1])) do
      redis.call('DEL', base .. ':i:' .. ix)
    end
  end
until cursor == '0'
redis.call('DEL', KEYS[2], KEYS[3])
return n
`)
