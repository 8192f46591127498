package cloudfront

import (
	"slices"
	"time"

	"github.com/gormpurge/gormpurge/backends"
)

// progress records the invalidations created for a request that Purge
// could not finish (the in-progress limits were full, or a later
// CreateInvalidation failed), so that the retry of the same request, which
// the dispatcher sends again whole, creates only the rest: a chunk is
// never paid for twice.
type progress struct {
	urls, tags []string // the request's own slices: its identity; held, they cannot be reused
	done       int      // chunks created
	ids        []string // their invalidation ids
	at         time.Time
}

// Bounds of the progress records: a record is dropped when its request
// is done, after progressTTL (the dispatcher's retries of a batch end
// well before), or, oldest first, beyond maxProgress records.
const (
	progressTTL = time.Hour
	maxProgress = 1024
)

// sameSlice reports whether a and b are the same slice: same array, same
// length.
func sameSlice(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// progressOf returns the chunks of r created by earlier calls, and their
// invalidation ids.
func (b *Backend) progressOf(r backends.Request) (done int, ids []string) {
	b.progMu.Lock()
	defer b.progMu.Unlock()
	now := time.Now()
	kept := b.progress[:0]
	for _, p := range b.progress {
		if now.Sub(p.at) <= progressTTL {
			kept = append(kept, p)
		}
	}
	clear(b.progress[len(kept):])
	b.progress = kept
	for _, p := range b.progress {
		if sameSlice(p.urls, r.URLs) && sameSlice(p.tags, r.Tags) {
			return p.done, slices.Clone(p.ids)
		}
	}
	return 0, nil
}

// setProgress records that the first done chunks of r were created, as
// ids; done 0 forgets r.
func (b *Backend) setProgress(r backends.Request, done int, ids []string) {
	b.progMu.Lock()
	defer b.progMu.Unlock()
	b.progress = slices.DeleteFunc(b.progress, func(p progress) bool {
		return sameSlice(p.urls, r.URLs) && sameSlice(p.tags, r.Tags)
	})
	if done == 0 || r.Empty() {
		return
	}
	if len(b.progress) >= maxProgress {
		b.progress = slices.Delete(b.progress, 0, len(b.progress)-maxProgress+1)
	}
	b.progress = append(b.progress, progress{urls: r.URLs, tags: r.Tags, done: done, ids: ids, at: time.Now()})
}
