package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/gormpurge/gormpurge/backends"
)

// workLoop is one of the lane's workers: it delivers batches until the
// dispatcher stops.
func (l *lane) workLoop() {
	for {
		select {
		case b := <-l.work:
			l.deliver(b)
		case <-l.d.lc.Done():
			return
		}
	}
}

// deliver calls the backend until b is delivered, fails for good, or the
// dispatcher stops, then settles b.
func (l *lane) deliver(b *batch) {
	if b.err != nil {
		l.finish(b, Report{Backend: l.name, Outcome: Failed, Request: b.req, All: b.all, Err: b.err})
		return
	}
	ctx := l.d.lc.Context()
	// Time spent waiting for rate limits and the backend's pacing does not
	// count against MaxElapsed: a batch that waits its turn for ten minutes
	// behind a bulk change has not been failing for ten minutes.
	start := time.Now()
	var paced time.Duration
	rep := Report{Backend: l.name, Request: b.req, All: b.all}
	origins := b.origins()
	for {
		waited, err := l.waitTurn(ctx, b)
		paced += waited
		if err != nil {
			if ctx.Err() != nil {
				l.abandon(b, rep)
				return
			}
			rep.Outcome, rep.Err, rep.Elapsed = Failed, err, time.Since(start)
			break
		}
		rep.Attempts++
		actx, obs := l.startAttempt(ctx, b, rep.Attempts, origins)
		res, err := l.call(actx, b)
		rep.Result, rep.Err, rep.Elapsed = res, err, time.Since(start)
		if err == nil {
			obs.ended(ctx, res, nil, false)
			rep.Outcome = Delivered
			break
		}
		if ctx.Err() != nil {
			obs.ended(ctx, res, err, false)
			l.abandon(b, rep)
			return
		}
		wait, final := l.retryWait(rep.Attempts, err, start, paced)
		obs.ended(ctx, res, err, final == nil)
		if final != nil {
			rep.Outcome, rep.Err = Failed, final
			break
		}
		l.n.retried.Add(1)
		l.n.retriedObjects.Add(uint64(b.req.Len()))
		l.logRetry(ctx, b, rep, wait)
		if !sleep(ctx, wait) {
			l.abandon(b, rep)
			return
		}
	}
	l.finish(b, rep)
}

// waitTurn waits until the rate limits and the backend's pacing allow a
// call with b, coming back later when the backend asks to
// ([backends.RetryAfter]). It returns the time spent in the limiters and
// the pacer, and an error if the backend cannot pace b or ctx ended.
func (l *lane) waitTurn(ctx context.Context, b *batch) (time.Duration, error) {
	var waited time.Duration
	for {
		start := time.Now()
		err := l.waitRate(ctx, b)
		waited += time.Since(start)
		if err == nil || ctx.Err() != nil {
			return waited, err
		}
		d, ok := backends.RetryDelay(err)
		if !ok {
			return waited, err
		}
		// The backend cannot pace this now: come back later.
		if !sleep(ctx, d) {
			return waited, ctx.Err()
		}
	}
}

// retryWait returns how long to wait before trying b again after attempts
// calls, the last of which failed with err; or, when b must not be tried
// again, the error it fails with. start is when b's first attempt began;
// paced, the time spent since then waiting for its turn.
func (l *lane) retryWait(attempts int, err error, start time.Time, paced time.Duration) (time.Duration, error) {
	p := &l.d.cfg.retry
	if backends.IsPermanent(err) {
		return 0, err
	}
	if attempts >= p.MaxAttempts {
		return 0, fmt.Errorf("dispatcher: gave up after %s: %w", attemptsText(attempts), err)
	}
	wait := p.Backoff(attempts)
	if d, ok := backends.RetryDelay(err); ok {
		wait = d
	}
	if p.MaxElapsed > 0 && time.Since(start)-paced+wait > p.MaxElapsed {
		return 0, fmt.Errorf("dispatcher: gave up after %s in %v: %w",
			attemptsText(attempts), time.Since(start).Round(time.Millisecond), err)
	}
	return wait, nil
}

// attemptsText is "1 attempt" or "n attempts".
func attemptsText(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

// logRetry logs, at Warn, that b's last attempt failed and will be retried
// after wait.
func (l *lane) logRetry(ctx context.Context, b *batch, rep Report, wait time.Duration) {
	attrs := []slog.Attr{
		slog.String("backend", l.name),
		slog.Int("attempt", rep.Attempts),
		slog.Int("objects", b.req.Len()),
		slog.String("outcome", "retry"),
		slog.Duration("wait", wait),
		idsAttr(rep.Result.IDs),
		slog.Any("error", rep.Err),
	}
	if b.all {
		attrs = append(attrs, slog.Bool("all", true))
	}
	l.d.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "dispatcher: purge failed, will retry", attrs...)
}

// call makes one attempt at b with its own deadline: Purge, or PurgeAll
// for a batch that purges everything. A panicking backend fails the batch
// for good instead of crashing the program.
func (l *lane) call(ctx context.Context, b *batch) (res backends.Result, err error) {
	ctx, cancel := context.WithTimeout(ctx, l.d.cfg.attemptTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			err = backends.Permanent(fmt.Errorf("dispatcher: backend %q panicked: %v\n%s", l.name, p, debug.Stack()))
		}
	}()
	switch {
	case b.all && l.purgeAller == nil: // New refuses an escalation to All for such a backend
		err = backends.Permanent(fmt.Errorf("dispatcher: backend %q cannot purge everything", l.name))
	case b.all:
		res, err = l.purgeAller.PurgeAll(ctx)
	default:
		res, err = l.backend.Purge(ctx, b.req)
		if res.Objects == 0 {
			res.Objects = b.req.Len()
		}
	}
	if res.Backend == "" {
		res.Backend = l.name
	}
	return res, err
}

// waitRate waits for the lane's rate limits, then the backend's own pacing
// (backends.Pacer), to allow a call with b. A purge of everything counts
// as one object, paced by the backend's backends.AllPacer when it is one.
func (l *lane) waitRate(ctx context.Context, b *batch) error {
	n := b.req.Len()
	if b.all {
		n = 1
	}
	if l.pace.requests != nil {
		if err := l.pace.requests.Wait(ctx); err != nil {
			return err
		}
	}
	if l.pace.objects != nil {
		if err := l.pace.objects.WaitN(ctx, n); err != nil {
			return err
		}
	}
	if l.pace.pacer != nil && !b.all {
		if err := l.pace.pacer.Pace(ctx, b.req); err != nil {
			return fmt.Errorf("dispatcher: backend %q cannot pace this batch: %w", l.name, err)
		}
	}
	if l.pace.allPacer != nil && b.all {
		if err := l.pace.allPacer.PaceAll(ctx); err != nil {
			return fmt.Errorf("dispatcher: backend %q cannot pace its purge of everything: %w", l.name, err)
		}
	}
	return nil
}

// sleep waits for d and reports whether ctx was still live at the end.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// finish counts and reports b's outcome, tells the lane's observers, then
// settles b: by the time Flush sees b settled, or a ticket done, the hook
// and the observers have run. When the error of a failed batch names the
// objects that failed (backends.Partial), only those count as failed, the
// others as delivered; a failed purge of everything fails all its objects.
func (l *lane) finish(b *batch, rep Report) {
	end := batchEnd{req: b.req, outcome: rep.Outcome, err: rep.Err, attempts: rep.Attempts, result: rep.Result}
	n := b.req.Len()
	failed := 0
	if rep.Outcome == Failed {
		failed = n
		if objs, ok := backends.FailedObjects(rep.Err); ok && !b.all {
			if f := intersect(b.req, objs); !f.Empty() {
				end.failed, end.partial = f, true
				failed = f.Len()
			}
		}
	}
	l.n.delivered.Add(uint64(n - failed))
	l.n.failed.Add(uint64(failed))
	l.d.report(rep)
	for _, o := range l.observers {
		o.batchEnded(b, &end)
	}
	l.endOrigins(b, &end)
	l.settle(b, end)
}
