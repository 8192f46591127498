package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

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
