package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
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
		a.log.Info("page cache: memory, kept coherent over NATS", "nats", natsbus.RedactServers(a.cfg.nats), "subject", name)
	}
	a.follow()
	return nil
}

// follow applies the purges other instances publish on a.bus to a.store
// until shutdown stops it. The memory store is suspended first, so that it
// serves nothing until the subscription is up: Follow would otherwise
// suspend it only once its goroutine runs, and a page cached before then
// may be one whose purge the bus carried meanwhile. The pages it held are
// dropped; it caches again from empty once the bus is up.
func (a *app) follow() {
	if a.memory != nil {
		a.memory.Suspend()
		a.log.Info("page cache: off until the bus is up; pages cached before are dropped then")
	}
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
		if strings.ContainsAny(addr, "@/ ") {
			// user:password@host without a scheme: go-redis would dial it
			// as an address and quote it, password and all, in its errors.
			return nil, fmt.Errorf("-redis %s: want host:port, or a URL such as redis://user:password@host:6379/0", backends.RedactURL(addr))
		}
		return &redis.Options{Addr: addr}, nil
	}
	opts, err := redis.ParseURL(addr)
	if err != nil {
		// Not wrapped: the parser's message may quote the URL.
		return nil, fmt.Errorf("-redis %s: %s", backends.RedactURL(addr), redact(err.Error(), addr, backends.RedactURL))
	}
	return opts, nil
}

// redact returns msg without the credentials of raw, a URL or a
// comma-separated list of them (-redis, -nats): each URL is replaced by
// redacted's form of it, and its user information, user name and password
// (user names too: NATS tokens travel as the user) by "REDACTED", as
// written and as Go quotes them (url.Error does).
func redact(msg, raw string, redacted func(string) string) string {
	var secrets []string
	for _, u := range strings.Split(raw, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		for _, form := range quotedForms(u) {
			msg = strings.ReplaceAll(msg, form, redacted(u))
		}
		secrets = append(secrets, userInfo(u)...)
	}
	// The longest first, so that a piece of a secret leaves no rest.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, s := range secrets {
		for _, form := range quotedForms(s) {
			msg = strings.ReplaceAll(msg, form, "REDACTED")
		}
	}
	return msg
}

// quotedForms returns s, and s as it appears inside a Go quoted string
// when that differs.
func quotedForms(s string) []string {
	q := strconv.Quote(s)
	if q = q[1 : len(q)-1]; q != s {
		return []string{s, q}
	}
	return []string{s}
}

// userInfo returns the user information of u, where backends.RedactURL
// finds it (from "//", or the start, to the last "@"), and its user name
// and password, as written and decoded.
func userInfo(u string) []string {
	start := 0
	if i := strings.Index(u, "//"); i >= 0 {
		start = i + 2
	}
	at := strings.LastIndexByte(u[start:], '@')
	if at <= 0 {
		return nil
	}
	info := u[start : start+at]
	out := []string{info}
	user, pass, _ := strings.Cut(info, ":")
	for _, s := range []string{user, pass} {
		if s == "" {
			continue
		}
		out = append(out, s)
		if d, err := url.PathUnescape(s); err == nil && d != s && d != "" {
			out = append(out, d)
		}
	}
	return out
}

// connectNATS opens a.nc, the connection of -nats (one server URL, or
// several separated by commas). It reconnects for as long as the blog runs;
// while it is down, Follow keeps the memory store off, so that no page
// whose purge was missed is served. Its errors show -nats through
// natsbus.RedactServers and never hold a password or token.
func (a *app) connectNATS() error {
	nc, err := nats.Connect(a.cfg.nats,
		nats.Name("gormpurge example blog"),
		nats.Timeout(connectTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
	)
	if err != nil {
		// Not wrapped: nats.go's message may quote a server URL.
		return fmt.Errorf("-nats %s: %s", natsbus.RedactServers(a.cfg.nats), natsError(err, a.cfg.nats))
	}
	a.nc = nc
	return nil
}

// natsError returns the text of err, an error of nats.Connect for the
// server list servers, without credentials. A URL that does not parse is
// named, redacted, without the parser's reason when it has user
// information, since the reason may quote a piece of it (an invalid
// escape in a password).
func natsError(err error, servers string) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		msg := fmt.Sprintf("server URL %s does not parse", natsbus.RedactServers(ue.URL))
		if userInfo(ue.URL) == nil && ue.Err != nil {
			msg += ": " + ue.Err.Error()
		}
		return redact(msg, servers, natsbus.RedactServers)
	}
	return redact(err.Error(), servers, natsbus.RedactServers)
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
