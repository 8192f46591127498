package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

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
