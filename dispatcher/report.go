package dispatcher

import (
	"context"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"time"

	"github.com/gormpurge/gormpurge/backends"
)

// Outcome is how a batch or a request ended.
type Outcome int

const (
	// Delivered means the backend accepted the batch.
	Delivered Outcome = iota + 1
	// Failed means the batch failed for good: the backend returned a
	// [backends.Permanent] error, the attempts or the elapsed time ran
	// out, or an object was larger than the backend's limits allow. When
	// the error names the objects that failed ([backends.Partial]), the
	// others were delivered.
	Failed
	// Dropped means the request never reached the backend: the full-queue
	// policy dropped or refused it, or Close ran out of time before it was
	// delivered.
	Dropped
)

// String returns "delivered", "failed" or "dropped", as used in log records.
func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case Failed:
		return "failed"
	case Dropped:
		return "dropped"
	default:
		return "unknown"
	}
}

// Report describes the end of one batch, or one dropped request. The
// [WithOnResult] hook receives one for each.
type Report struct {
	// Backend is the name of the backend the batch was for.
	Backend string
	// Outcome says how the batch ended. It is Failed also when only some
	// of the batch's objects failed.
	Outcome Outcome
	// Request is what the batch asked to purge: the whole batch, also when
	// only some of its objects failed; then [backends.FailedObjects] on Err
	// tells which.
	Request backends.Request
	// All is set when the batch purged everything the backend caches
	// ([WithEscalation] with All): Request lists what it subsumed, the
	// objects of every request merged with the escalated one, the
	// escalated handoff's URLs included.
	All bool
	// Result is the backend's answer to the last attempt; it is the zero
	// value when the backend was never called.
	Result backends.Result
	// Attempts is the number of calls made to the backend's Purge.
	Attempts int
	// Err is nil when the batch was delivered, else the last error: the
	// backend's, or one matching ErrQueueFull or ErrClosed for a drop.
	Err error
	// Elapsed is the time from the first attempt to the end, including
	// any time spent waiting for rate limits.
	Elapsed time.Duration
}

// Stats is a snapshot of the dispatcher's counters, one entry per backend in
// the order given to [New]. Counts are in objects (URLs plus tags) unless
// said otherwise.
type Stats struct {
	Backends []BackendStats
}

// Backend returns the counters of the backend named name, and whether there
// is one.
func (s Stats) Backend(name string) (BackendStats, bool) {
	for _, b := range s.Backends {
		if b.Backend == name {
			return b, true
		}
	}
	return BackendStats{}, false
}

// BackendStats holds one backend's counters. Queued and InFlight are gauges;
// the others only grow.
type BackendStats struct {
	// Backend is the backend's name.
	Backend string
	// Queued is the number of objects waiting in the queue now.
	Queued int
	// InFlight is the number of objects taken from the queue and not yet
	// settled: waiting for a worker, being purged, or waiting to retry.
	InFlight int
	// Enqueued is the number of objects accepted into the queue.
	Enqueued uint64
	// Coalesced is the number of accepted objects that were duplicates of
	// another in the same batch window, and so were purged once.
	Coalesced uint64
	// Delivered is the number of objects the backend accepted, including
	// those of a failed batch that its error does not name as failed
	// ([backends.Partial]) and those a purge of everything subsumed
	// ([Report.All]).
	Delivered uint64
	// Failed is the number of objects in batches that failed for good;
	// when a batch's error names the objects that failed
	// ([backends.Partial]), only those of them that the batch held. A
	// Partial naming none of the batch's objects counts the whole batch.
	Failed uint64
	// Dropped is the number of objects that never reached the backend:
	// dropped or refused by the full-queue policy, or left at Close.
	Dropped uint64
	// Retried is the number of calls to Purge that failed and were
	// followed by another attempt.
	Retried uint64
	// RetriedObjects is the number of objects those calls held: an object
	// tried three times before it was delivered counts two.
	RetriedObjects uint64

	// Escalated is the number of handoffs (calls to Enqueue or Submit)
	// that [WithEscalation] replaced, for this backend, with a purge of
	// tags or of everything, whatever became of them then. It counts
	// handoffs, not objects. A handoff escalated to tags counts its tags,
	// not its URLs, in the object counters above; one escalated to
	// everything counts its objects as the purge of everything fared.
	Escalated uint64
	// EscalatedURLs is the number of URLs those handoffs named, that were
	// not purged one by one.
	EscalatedURLs uint64
}

// report logs rep, at Debug for a delivered batch, and passes it to the
// OnResult hook.
func (d *Dispatcher) report(rep Report) {
	level := slog.LevelDebug // success: a library logs it only when asked
	switch rep.Outcome {
	case Failed:
		level = slog.LevelError
	case Dropped:
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("backend", rep.Backend),
		slog.Int("attempt", rep.Attempts),
		slog.Int("objects", rep.Request.Len()),
		slog.String("outcome", rep.Outcome.String()),
		slog.Duration("elapsed", rep.Elapsed),
	}
	if rep.All {
		attrs = append(attrs, slog.Bool("all", true))
	}
	if len(rep.Result.IDs) > 0 {
		attrs = append(attrs, idsAttr(rep.Result.IDs))
	}
	if rep.Err != nil {
		attrs = append(attrs, slog.Any("error", rep.Err))
	}
	d.cfg.logger.LogAttrs(context.Background(), level, "dispatcher: purge "+rep.Outcome.String(), attrs...)
	if d.cfg.onResult != nil {
		d.callOnResult(rep)
	}
}

// callOnResult runs the user's hook; a panic in it is logged, never allowed
// to kill a worker and with it the process.
func (d *Dispatcher) callOnResult(rep Report) {
	defer func() {
		if v := recover(); v != nil {
			d.cfg.logger.LogAttrs(context.Background(), slog.LevelError, "dispatcher: OnResult hook panicked",
				slog.String("backend", rep.Backend), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
		}
	}()
	d.cfg.onResult(rep)
}

// idsAttr groups a backend's result IDs under "ids", in a stable order,
// at most maxLoggedIDs of them.
func idsAttr(ids map[string]string) slog.Attr {
	keys := slices.Sorted(maps.Keys(ids))
	attrs := make([]any, 0, min(len(keys), maxLoggedIDs)+1)
	for _, k := range keys[:min(len(keys), maxLoggedIDs)] {
		attrs = append(attrs, slog.String(k, ids[k]))
	}
	if len(keys) > maxLoggedIDs {
		// A backend may answer an id per object (Fastly: up to 500):
		// a log record names the first few and counts the rest.
		attrs = append(attrs, slog.Int("more", len(keys)-maxLoggedIDs))
	}
	return slog.Group("ids", attrs...)
}

// maxLoggedIDs bounds the ids of a Result a log record lists.
const maxLoggedIDs = 10

// stats returns the lane's counters, and those its layers keep.
func (l *lane) stats() BackendStats {
	l.mu.Lock()
	queued, inFlight := l.queuedObjs, l.inFlight
	l.mu.Unlock()
	s := BackendStats{
		Backend:        l.name,
		Queued:         queued,
		InFlight:       inFlight,
		Enqueued:       l.n.enqueued.Load(),
		Coalesced:      l.n.coalesced.Load(),
		Delivered:      l.n.delivered.Load(),
		Failed:         l.n.failed.Load(),
		Dropped:        l.n.dropped.Load(),
		Retried:        l.n.retried.Load(),
		RetriedObjects: l.n.retriedObjects.Load(),
	}
	for _, a := range l.admitters {
		if c, ok := a.(counter); ok {
			c.count(&s)
		}
	}
	for _, o := range l.observers {
		if c, ok := o.(counter); ok {
			c.count(&s)
		}
	}
	return s
}
