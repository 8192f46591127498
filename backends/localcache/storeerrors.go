package localcache

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// storeErrorInterval is the least time between two records of a store's
// failures: a store that is down (a Redis outage) fails on every request,
// and the middleware renders every page meanwhile.
const storeErrorInterval = time.Second

// storeErrors logs a store's failures at most once per storeErrorInterval,
// each record saying how many failures it stands for.
type storeErrors struct {
	mu     sync.Mutex
	last   time.Time
	unsaid int // failures since the last record
}

// report records that op on key failed with err, and logs it at Warn
// unless a record was written less than storeErrorInterval ago.
func (s *storeErrors) report(ctx context.Context, logger *slog.Logger, op, key string, err error) {
	s.mu.Lock()
	now := time.Now()
	s.unsaid++
	if !s.last.IsZero() && now.Sub(s.last) < storeErrorInterval {
		s.mu.Unlock()
		return
	}
	n := s.unsaid
	s.last, s.unsaid = now, 0
	s.mu.Unlock()
	attrs := []slog.Attr{slog.Any("error", err), slog.Int("failures", n)}
	if key != "" {
		attrs = append(attrs, slog.String("key", key))
	}
	logger.LogAttrs(ctx, slog.LevelWarn, "localcache: store "+op+" failed; the page is rendered, not cached", attrs...)
}
