package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/backends/localcache/natsbus"
	"github.com/gormpurge/gormpurge/backends/localcache/redisstore"
)

// The page cache of several instances of the blog (see README.md, "Several
// instances"):
//
//   - -redis ADDR: one redisstore.Store, shared by every instance. A purge
//     on any instance removes the page for all of them; nothing else to
//     keep in step.
//   - -nats URL: a MemoryStore on each instance, kept coherent by a NATS
//     bus: each instance publishes its purges there, and follows the
//     others'.
//   - -redis ADDR -redis-bus: the same, over Redis pub/sub.
//
// -cache-name names the cache: the Redis keys' prefix, the Redis channel,
// the NATS subject. Instances of one site share it; another site on the
// same Redis or NATS picks another.

// defaultCacheName is the default of -cache-name.
const defaultCacheName = "blog"

// cacheName is what -cache-name accepts: a Redis key prefix and channel
// name, and a NATS subject of one token.
var cacheName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// memoryBytes bounds the memory store of an instance.
const memoryBytes = 32 << 20

// connectTimeout bounds the first connection to Redis or NATS.
const connectTimeout = 5 * time.Second

// cacheMode is how the flags say the page cache is kept.
type cacheMode int

const (
	memoryOnly  cacheMode = iota // one instance, a MemoryStore
	sharedRedis                  // -redis: a redisstore.Store
	redisBus                     // -redis -redis-bus: MemoryStores, Redis pub/sub
	natsBus                      // -nats: MemoryStores, NATS
)

// mode checks the cache flags and says what they ask for.
func (c config) mode() (cacheMode, error) {
	switch {
	case !cacheName.MatchString(c.cacheName):
		return 0, fmt.Errorf("-cache-name %q: use 1 to 64 letters, digits, '-' or '_'", c.cacheName)
	case c.redis != "" && c.nats != "":
		return 0, errors.New("-redis and -nats: choose one (-redis -redis-bus keeps memory stores coherent over Redis)")
	case c.redisBus && c.redis == "":
		return 0, errors.New("-redis-bus needs -redis: the Redis server whose pub/sub carries the purges")
	case c.redisBus:
		return redisBus, nil
	case c.redis != "":
		return sharedRedis, nil
	case c.nats != "":
		return natsBus, nil
	}
	return memoryOnly, nil
}

// openCache makes the page cache the flags ask for: a.store, and with a
// bus a.bus and the goroutine that follows it, and the Redis or NATS
// client. shutdown closes what it opened.
func (a *app) openCache() error {
	mode, err := a.cfg.mode()
	if err != nil {
		return err
	}
	if mode != sharedRedis {
		if a.memory, err = localcache.NewMemoryStore(localcache.WithMaxBytes(memoryBytes)); err != nil {
			return err
		}
		a.store = a.memory
	}
	name := a.cfg.cacheName
	switch mode {
	case memoryOnly:
		return nil
	case sharedRedis, redisBus:
		if err := a.connectRedis(); err != nil {
			return err
		}
		if mode == sharedRedis {
			a.store, err = redisstore.New(a.rdb, redisstore.WithPrefix(name), redisstore.WithLogger(a.detail))
			if err != nil {
				return fmt.Errorf("-redis: %w", err)
			}
			a.log.Info("page cache: shared Redis store", "redis", a.rdb.Options().Addr, "prefix", name)
			return nil
		}
		if a.bus, err = redisstore.NewBus(a.rdb, name, redisstore.WithBusLogger(a.detail)); err != nil {
			return fmt.Errorf("-redis-bus: %w", err)
		}
		a.log.Info("page cache: memory, kept coherent over Redis pub/sub", "redis", a.rdb.Options().Addr, "channel", name)
	case natsBus:
		if err := a.connectNATS(); err != nil {
			return err
		}
		if a.bus, err = natsbus.New(a.nc, name, natsbus.WithLogger(a.detail)); err != nil {
			return fmt.Errorf("-nats: %w", err)
		}
		a.log.Info("page cache: memory, kept coherent over NATS", "nats", backends.RedactURL(a.cfg.nats), "subject", name)
	}
	a.follow()
	return nil
}

// follow applies the purges other instances publish on a.bus to a.store
// until shutdown stops it.
func (a *app) follow() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	a.stopFollow = func() {
		cancel()
		<-done
	}
	go func() {
		defer close(done)
		err := localcache.Follow(ctx, a.store, a.bus, localcache.WithFollowLogger(a.log))
		if ctx.Err() == nil {
			a.log.Error("following the other instances' purges stopped", "error", err)
		}
	}()
}

// connectRedis opens a.rdb, the client of -redis, and checks that Redis
// answers.
func (a *app) connectRedis() error {
	opts, err := redisOptions(a.cfg.redis)
	if err != nil {
		return err
	}
	a.rdb = redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if err := a.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("-redis %s: %w", backends.RedactURL(a.cfg.redis), err)
	}
	return nil
}

// redisOptions reads -redis: host:port, or a URL such as
// redis://user:password@host:6379/0 (rediss:// for TLS). Its errors never
// hold the password.
func redisOptions(addr string) (*redis.Options, error) {
	if !strings.Contains(addr, "://") {
		return &redis.Options{Addr: addr}, nil
	}
	opts, err := redis.ParseURL(addr)
	if err != nil {
		// Not wrapped: the parser's message may quote the URL.
		return nil, fmt.Errorf("-redis %s: %s", backends.RedactURL(addr), redact(err.Error(), addr))
	}
	return opts, nil
}

// redact returns msg without the URL raw, or its password, in it.
func redact(msg, raw string) string {
	msg = strings.ReplaceAll(msg, raw, backends.RedactURL(raw))
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "REDACTED")
		}
	}
	return msg
}

// connectNATS opens a.nc, the connection of -nats. It reconnects for as
// long as the blog runs; while it is down, Follow keeps the memory store
// off, so that no page whose purge was missed is served.
func (a *app) connectNATS() error {
	nc, err := nats.Connect(a.cfg.nats,
		nats.Name("gormpurge example blog"),
		nats.Timeout(connectTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
	)
	if err != nil {
		return fmt.Errorf("-nats %s: %s", backends.RedactURL(a.cfg.nats), redact(err.Error(), a.cfg.nats))
	}
	a.nc = nc
	return nil
}

// closeCache stops following the bus and closes the Redis and NATS
// clients. shutdown calls it after the dispatcher has closed, since its
// last purges are published on the bus.
func (a *app) closeCache() error {
	if a.stopFollow != nil {
		a.stopFollow()
		a.stopFollow = nil
	}
	var errs []error
	if a.rdb != nil {
		errs = append(errs, a.rdb.Close())
		a.rdb = nil
	}
	if a.nc != nil {
		a.nc.Close()
		a.nc = nil
	}
	return errors.Join(errs...)
}
