package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
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
	cfg := &l.d.cfg
	// Time spent waiting for rate limits and the backend's pacing does not
	// count against MaxElapsed: a batch that waits its turn for ten minutes
	// behind a bulk change has not been failing for ten minutes.
	start := time.Now()
	var paced time.Duration
	rep := Report{Backend: l.name, Request: b.req, All: b.all}
	for {
		waitStart := time.Now()
		err := l.waitRate(ctx, b)
		paced += time.Since(waitStart)
		if err != nil {
			if ctx.Err() != nil {
				l.abandon(b, rep)
				return
			}
			if d, ok := backends.RetryDelay(err); ok {
				// The backend cannot pace this now: come back later.
				if !sleep(ctx, d) {
					l.abandon(b, rep)
					return
				}
				continue
			}
			rep.Outcome, rep.Err, rep.Elapsed = Failed, err, time.Since(start)
			break
		}
		rep.Attempts++
		res, err := l.call(ctx, b)
		rep.Result, rep.Err, rep.Elapsed = res, err, time.Since(start)
		if err == nil {
			rep.Outcome = Delivered
			break
		}
		if ctx.Err() != nil {
			l.abandon(b, rep)
			return
		}
		if backends.IsPermanent(err) {
			rep.Outcome = Failed
			break
		}
		if rep.Attempts >= cfg.retry.MaxAttempts {
			rep.Outcome = Failed
			rep.Err = fmt.Errorf("dispatcher: gave up after %d attempts: %w", rep.Attempts, err)
			break
		}
		wait := cfg.retry.Backoff(rep.Attempts)
		if d, ok := backends.RetryDelay(err); ok {
			wait = d
		}
		if cfg.retry.MaxElapsed > 0 && time.Since(start)-paced+wait > cfg.retry.MaxElapsed {
			rep.Outcome = Failed
			rep.Err = fmt.Errorf("dispatcher: gave up after %d attempts in %v: %w",
				rep.Attempts, time.Since(start).Round(time.Millisecond), err)
			break
		}
		l.retried.Add(1)
		attrs := []slog.Attr{
			slog.String("backend", l.name),
			slog.Int("attempt", rep.Attempts),
			slog.Int("objects", b.req.Len()),
			slog.String("outcome", "retry"),
			slog.Duration("wait", wait),
			idsAttr(res.IDs),
			slog.Any("error", err),
		}
		if b.all {
			attrs = append(attrs, slog.Bool("all", true))
		}
		l.d.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "dispatcher: purge failed, will retry", attrs...)
		if !sleep(ctx, wait) {
			l.abandon(b, rep)
			return
		}
	}
	l.finish(b, rep)
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
	if b.all {
		res, err = l.esc.purgeAller.PurgeAll(ctx)
	} else {
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
// as one object and is not paced: PurgeAll paces itself.
func (l *lane) waitRate(ctx context.Context, b *batch) error {
	n := b.req.Len()
	if b.all {
		n = 1
	}
	if l.reqLimit != nil {
		if err := l.reqLimit.Wait(ctx); err != nil {
			return err
		}
	}
	if l.objLimit != nil {
		if err := l.objLimit.WaitN(ctx, n); err != nil {
			return err
		}
	}
	if l.pacer != nil && !b.all {
		if err := l.pacer.Pace(ctx, b.req); err != nil {
			return fmt.Errorf("dispatcher: backend %q cannot pace this batch: %w", l.name, err)
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

// finish counts and reports b's outcome, hands what it delivered to the
// lane's Warmer, then settles b: by the time Flush sees b settled, or a
// ticket done, the hook and the Warmer have run. When the error of a failed
// batch names the objects that failed (backends.Partial), only those count
// as failed, the others as delivered; a failed purge of everything fails
// all its objects.
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
	l.delivered.Add(uint64(n - failed))
	l.failed.Add(uint64(failed))
	l.report(rep)
	if l.warmer != nil {
		if urls := l.warmURLs(b, &end); len(urls) > 0 {
			l.callWarmer(urls)
		}
	}
	l.settle(b, end)
}

// warmURLs returns the URLs that b, which ended as end says, purged and
// that should be warmed: all of its own, and what b.warm keeps of the
// handoffs it purged by tags, but none that failed. For a purge of
// everything, b.warm holds them all: at most Above URLs per escalated
// handoff, and those of the others.
func (l *lane) warmURLs(b *batch, end *batchEnd) []string {
	switch {
	case end.outcome == Delivered && b.all:
		return b.warm
	case end.outcome == Delivered:
	case end.outcome == Failed && end.partial:
		var urls []string
		for _, u := range b.req.URLs {
			if !end.fails(objKey{s: u}) {
				urls = append(urls, u)
			}
		}
		if len(b.warm) > 0 && !slices.ContainsFunc(l.esc.tags, func(t string) bool {
			_, held := slices.BinarySearch(b.req.Tags, t)
			return held && end.fails(objKey{tag: true, s: t})
		}) {
			urls = append(urls, b.warm...)
		}
		return backends.NewRequest(urls, nil).URLs
	default:
		return nil
	}
	if len(b.warm) == 0 {
		return b.req.URLs
	}
	return backends.NewRequest(slices.Concat(b.req.URLs, b.warm), nil).URLs
}

// callWarmer hands urls to the lane's Warmer; a panic in it is logged, as
// one in the OnResult hook is.
func (l *lane) callWarmer(urls []string) {
	defer func() {
		if v := recover(); v != nil {
			l.d.cfg.logger.LogAttrs(context.Background(), slog.LevelError, "dispatcher: Warmer panicked",
				slog.String("backend", l.name), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
		}
	}()
	l.warmer.Enqueue(urls...)
}

// report logs rep and passes it to the OnResult hook.
func (l *lane) report(rep Report) {
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
	l.d.cfg.logger.LogAttrs(context.Background(), level, "dispatcher: purge "+rep.Outcome.String(), attrs...)
	if l.d.cfg.onResult != nil {
		l.callOnResult(rep)
	}
}

// callOnResult runs the user's hook; a panic in it is logged, never allowed
// to kill a worker and with it the process.
func (l *lane) callOnResult(rep Report) {
	defer func() {
		if v := recover(); v != nil {
			l.d.cfg.logger.LogAttrs(context.Background(), slog.LevelError, "dispatcher: OnResult hook panicked",
				slog.String("backend", rep.Backend), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
		}
	}()
	l.d.cfg.onResult(rep)
}

// idsAttr groups a backend's result IDs under "ids", in a stable order.
func idsAttr(ids map[string]string) slog.Attr {
	attrs := make([]any, 0, len(ids))
	for _, k := range slices.Sorted(maps.Keys(ids)) {
		attrs = append(attrs, slog.String(k, ids[k]))
	}
	return slog.Group("ids", attrs...)
}
