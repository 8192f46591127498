package cloudfront

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/gormpurge/gormpurge/backends"
)

// reservationTTL is how long the budget a Pace took waits for the Purge
// that follows it; a reservation no Purge claimed is given back then.
const reservationTTL = time.Minute

// budget is the client's account of the distribution's in-progress
// limits: the paths and wildcard paths of the backend's own invalidations
// that CloudFront has not been seen to complete, and of those about to be
// created. A purge takes its share before its CreateInvalidation and, when
// the limits are reached, waits for earlier invalidations to complete,
// asking CloudFront with GetInvalidation, one waiter at a time.
type budget struct {
	maxPaths, maxWildcards int
	poll                   time.Duration
	maxAge                 time.Duration                                      // a tracked invalidation is counted at most this long
	done                   func(ctx context.Context, id string) (bool, error) // GetInvalidation: completed?
	logger                 *slog.Logger
	deniedOnce             sync.Once // logs a GetInvalidation refused for want of permission

	mu       sync.Mutex
	paths    int // taken: reserved, being created, or in progress
	wild     int
	tracked  []tracked                // the backend's invalidations in progress, oldest first
	reserved map[uint64][]reservation // taken by Pace, by the fingerprint of the request's items
	polling  bool                     // a waiter is asking CloudFront
	// CloudFront refused an invalidation with TooManyInvalidationsInProgress
	// (others' invalidations fill the limits): no invalidation is tried
	// before saturatedUntil; backoff doubles with each refusal in a row.
	saturatedUntil time.Time
	backoff        time.Duration
	wake           chan struct{} // closed when budget is freed or a poll ends
}

type tracked struct {
	id          string
	paths, wild int
	at          time.Time // created
}

type reservation struct {
	paths, wild int
	at          time.Time
}

func newBudget(maxPaths, maxWildcards int, poll, maxAge time.Duration, done func(context.Context, string) (bool, error), logger *slog.Logger) *budget {
	return &budget{maxPaths: maxPaths, maxWildcards: maxWildcards, poll: poll, maxAge: maxAge, done: done, logger: logger,
		reserved: make(map[uint64][]reservation), wake: make(chan struct{})}
}

// fingerprint identifies a request's items, to match a Pace with its Purge.
func fingerprint(items []string) uint64 {
	h := fnv.New64a()
	for _, it := range items {
		_, _ = h.Write([]byte(it))
		_, _ = h.Write([]byte{0})
	}
	return h.Sum64()
}

// signalLocked wakes every waiter.
func (b *budget) signalLocked() {
	close(b.wake)
	b.wake = make(chan struct{})
}

// take takes paths and wildcards from the budget, waiting while ctx lasts
// for the backend's earlier invalidations to complete when they do not fit.
func (b *budget) take(ctx context.Context, paths, wild int) error {
	if paths > b.maxPaths || wild > b.maxWildcards {
		return fmt.Errorf("cloudfront: %d paths and %d wildcard paths in one invalidation, more than the in-progress limits of %d and %d", paths, wild, b.maxPaths, b.maxWildcards)
	}
	logged := false
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("cloudfront: waiting for the in-progress limits: %w", context.Cause(ctx))
		}
		b.mu.Lock()
		now := time.Now()
		b.reclaimLocked(now)
		if wait := b.saturatedUntil.Sub(now); wait > 0 {
			b.mu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
			continue
		}
		if b.paths+paths <= b.maxPaths && b.wild+wild <= b.maxWildcards {
			b.paths += paths
			b.wild += wild
			b.mu.Unlock()
			return nil
		}
		if !logged {
			logged = true
			b.logger.Warn("cloudfront: in-progress limits reached, waiting for earlier invalidations to complete",
				slog.Int("paths", paths), slog.Int("wildcards", wild),
				slog.Int("pathsInProgress", b.paths), slog.Int("wildcardsInProgress", b.wild))
		}
		wake := b.wake
		if !b.polling && len(b.tracked) > 0 {
			b.polling = true
			b.mu.Unlock()
			err := b.pollOnce(ctx)
			b.mu.Lock()
			b.polling = false
			b.signalLocked()
			b.mu.Unlock()
			if err != nil {
				return err
			}
			continue
		}
		b.mu.Unlock()
		t := time.NewTimer(b.poll) // a stale reservation frees budget without a signal
		select {
		case <-wake:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
}

// pollOnce waits one poll interval, then asks CloudFront about the
// backend's invalidations in progress, oldest first, freeing the budget
// of each completed one, until one is still in progress. A failed check
// is backends.RetryAfter the poll interval, whatever its cause: the wait
// goes on (the dispatcher calls Pace again after it), and an invalidation
// CloudFront never tells about is freed at maxAge. One CloudFront does not
// know (NoSuchInvalidation) is freed at once.
func (b *budget) pollOnce(ctx context.Context) error {
	t := time.NewTimer(b.poll)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return fmt.Errorf("cloudfront: waiting for the in-progress limits: %w", context.Cause(ctx))
	}
	return b.check(ctx)
}

// check asks CloudFront about the backend's invalidations in progress, as
// pollOnce does, without waiting first.
func (b *budget) check(ctx context.Context) error {
	b.mu.Lock()
	ids := make([]string, len(b.tracked))
	for i, t := range b.tracked {
		ids[i] = t.id
	}
	b.mu.Unlock()
	for _, id := range ids {
		done, err := b.done(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("cloudfront: waiting for the in-progress limits: %w", context.Cause(ctx))
			}
			var ce *Error
			if errors.As(err, &ce) {
				switch ce.Code {
				case "NoSuchInvalidation":
					b.logger.Warn("cloudfront: CloudFront does not know an invalidation the backend counts as in progress: no longer counted",
						slog.String("id", id))
					b.complete(id)
					continue
				case "AccessDenied", "AccessDeniedException":
					b.deniedOnce.Do(func() {
						b.logger.Error("cloudfront: GetInvalidation was refused: grant the credentials cloudfront:GetInvalidation on the distribution; until then a purge that waits for the in-progress limits counts each invalidation as in progress for the maximum age",
							slog.String("id", id), slog.Duration("maxAge", b.maxAge), slog.Any("error", ce))
					})
				}
				err = ce // the wait goes on: not Permanent
			}
			return backends.RetryAfter(b.poll, fmt.Errorf("cloudfront: asking whether invalidation %s completed: %w", id, err))
		}
		if !done {
			return nil
		}
		b.complete(id)
	}
	return nil
}

// tryTake takes paths and wildcards from the budget if they fit now, and
// reports whether they did; it never waits.
func (b *budget) tryTake(paths, wild int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	b.reclaimLocked(now)
	if now.Before(b.saturatedUntil) || b.paths+paths > b.maxPaths || b.wild+wild > b.maxWildcards {
		return false
	}
	b.paths += paths
	b.wild += wild
	return true
}

// maxSaturationBackoff bounds the wait after TooManyInvalidationsInProgress
// refusals in a row.
const maxSaturationBackoff = 5 * time.Minute

// saturate records that CloudFront refused an invalidation with
// TooManyInvalidationsInProgress: take and tryTake let no invalidation
// through for the poll interval, doubled with each refusal in a row up to
// maxSaturationBackoff. It returns the wait.
func (b *budget) saturate() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.backoff == 0 {
		b.backoff = b.poll
	} else {
		b.backoff = min(2*b.backoff, max(maxSaturationBackoff, b.poll))
	}
	b.saturatedUntil = time.Now().Add(b.backoff)
	return b.backoff
}

// unsaturate records that CloudFront accepted an invalidation.
func (b *budget) unsaturate() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.backoff, b.saturatedUntil = 0, time.Time{}
}

// refresh asks CloudFront at once whether the backend's invalidations in
// progress have completed, unless a waiter is already asking. A failed
// check is left to the next.
func (b *budget) refresh(ctx context.Context) {
	b.mu.Lock()
	if b.polling || len(b.tracked) == 0 {
		b.mu.Unlock()
		return
	}
	b.polling = true
	b.mu.Unlock()
	err := b.check(ctx)
	b.mu.Lock()
	b.polling = false
	b.signalLocked()
	b.mu.Unlock()
	if err != nil {
		b.logger.Debug("cloudfront: status check failed", slog.Any("error", err))
	}
}

// reclaimLocked gives back reservations no Purge claimed in time, and the
// budget of invalidations older than maxAge, which CloudFront has
// completed by then even if the backend could not learn it.
func (b *budget) reclaimLocked(now time.Time) {
	kept := b.tracked[:0]
	for _, t := range b.tracked {
		if now.Sub(t.at) > b.maxAge {
			b.paths -= t.paths
			b.wild -= t.wild
			b.logger.Warn("cloudfront: invalidation not seen completed within the maximum age: no longer counted as in progress",
				slog.String("id", t.id), slog.Duration("maxAge", b.maxAge))
			continue
		}
		kept = append(kept, t)
	}
	b.tracked = kept
	for fp, rs := range b.reserved {
		kept := rs[:0]
		for _, r := range rs {
			if now.Sub(r.at) > reservationTTL {
				b.paths -= r.paths
				b.wild -= r.wild
				continue
			}
			kept = append(kept, r)
		}
		if len(kept) == 0 {
			delete(b.reserved, fp)
		} else {
			b.reserved[fp] = kept
		}
	}
}

// reserve records that the budget Pace took for a request with
// fingerprint fp waits for its Purge.
func (b *budget) reserve(fp uint64, paths, wild int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reserved[fp] = append(b.reserved[fp], reservation{paths: paths, wild: wild, at: time.Now()})
}

// claim takes over a reservation of Pace for fp, and reports whether there
// was one.
func (b *budget) claim(fp uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	rs := b.reserved[fp]
	if len(rs) == 0 {
		return false
	}
	if len(rs) == 1 {
		delete(b.reserved, fp)
	} else {
		b.reserved[fp] = rs[1:]
	}
	return true
}

// free gives back budget taken for an invalidation that was not created.
func (b *budget) free(paths, wild int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.paths -= paths
	b.wild -= wild
	b.signalLocked()
}

// track records a created invalidation, which holds its budget until
// CloudFront says it completed.
func (b *budget) track(id string, paths, wild int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tracked = append(b.tracked, tracked{id: id, paths: paths, wild: wild, at: time.Now()})
	b.signalLocked()
}

// complete frees the budget of the tracked invalidation id.
func (b *budget) complete(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, t := range b.tracked {
		if t.id == id {
			b.paths -= t.paths
			b.wild -= t.wild
			b.tracked = append(b.tracked[:i], b.tracked[i+1:]...)
			b.signalLocked()
			return
		}
	}
}

// inProgress returns the budget taken: paths and wildcard paths.
func (b *budget) inProgress() (paths, wild int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.paths, b.wild
}
