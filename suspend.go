package gormpurge

import (
	"context"
	"log/slog"
	"sync"

	"github.com/gormpurge/gormpurge/backends"
)

// Suspension is a bulk job during which the plugin holds back what it would
// hand off, merges it, and hands it off once when the job ends. Start one
// with [Plugin.Suspend].
type Suspension struct {
	p      *Plugin
	parent context.Context
	done   chan struct{} // closed when Resume's handoff has returned

	mu        sync.Mutex
	settled   *sync.Cond // signalled when pending drops
	c         collector
	merged    int
	pending   int // commits under way that will join
	resumed   bool
	resumeErr error // set before done is closed
}

// suspensionKey finds a Plugin's Suspension in a context; one Plugin's
// suspension does not hold back another's.
type suspensionKey struct{ p *Plugin }

// Suspend starts a bulk job, for a data migration or an import that would
// otherwise purge page by page, thousands of times. Run the job's writes
// with the returned context (db.WithContext(ctx), or a session made from
// it): what their commits would hand off, and what Purge is given with the
// context, is merged instead, deduplicated, and handed off once by Resume.
// Rolled-back work is dropped as always.
//
//	ctx, job := plugin.Suspend(ctx)
//	defer job.Resume()
//	for _, row := range rows {
//		db.WithContext(ctx).Save(&row) // purges nothing yet
//	}
//
// Always call Resume, also when the job fails: what it committed must be
// purged. Until then the pages stay stale, and the merged request is held in
// memory (about the size of its URLs and tags); with the durable outbox, it
// is written as one row only at Resume, so a crash during the job loses
// it. Suspensions nest: an inner one's Resume merges into the outer one.
// Writes with the context after Resume are handed off as usual.
//
// Pair it with a dispatcher escalation (dispatcher.WithEscalation) so that
// the one large handoff becomes a purge of tags or of everything.
func (p *Plugin) Suspend(ctx context.Context) (context.Context, *Suspension) {
	if ctx == nil {
		ctx = context.Background()
	}
	s := &Suspension{p: p, parent: ctx, done: make(chan struct{})}
	s.settled = sync.NewCond(&s.mu)
	return context.WithValue(ctx, suspensionKey{p}, s), s
}

// Resume ends the suspension and hands off what it merged, once, after the
// commits already under way in it have finished. It returns the handoff's
// error, if any (also reported as the plugin reports every failed
// handoff); it never fails the writes the job made. Later and concurrent
// calls wait for the first one and return its error.
func (s *Suspension) Resume() error {
	s.mu.Lock()
	if s.resumed {
		s.mu.Unlock()
		<-s.done
		return s.resumeErr
	}
	s.resumed = true
	for s.pending > 0 {
		s.settled.Wait()
	}
	r := s.c.request()
	merged := s.merged
	s.c.reset()
	s.mu.Unlock()

	s.p.cfg.logger.LogAttrs(s.parent, slog.LevelInfo, "gormpurge: suspension resumed",
		slog.Int("handoffs_merged", merged), slog.Int("urls", len(r.URLs)), slog.Int("tags", len(r.Tags)))
	s.resumeErr = s.p.handoff(s.parent, r)
	close(s.done)
	return s.resumeErr
}

// Len returns how many distinct URLs and tags the suspension holds, for
// progress logs.
func (s *Suspension) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.c.urls) + len(s.c.tags)
}

// hold adds r to the suspension and reports whether it did: false once the
// suspension has resumed.
func (s *Suspension) hold(r backends.Request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.resumed {
		return false
	}
	s.c.add(r.URLs, r.Tags)
	s.merged++
	return true
}

// enter registers a commit that will join the suspension, and reports
// whether it may: false once the suspension has resumed. Each successful
// enter is followed by one leave.
func (s *Suspension) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.resumed {
		return false
	}
	s.pending++
	return true
}

// leave adds what a commit that entered produced (nothing when it failed)
// and lets a waiting Resume go on.
func (s *Suspension) leave(r backends.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !r.Empty() {
		s.c.add(r.URLs, r.Tags)
		s.merged++
	}
	s.pending--
	s.settled.Broadcast()
}

// enterSuspension enters the innermost suspension of p in ctx that has not
// resumed, and returns it, or nil when there is none.
func (p *Plugin) enterSuspension(ctx context.Context) *Suspension {
	for s := p.suspension(ctx); s != nil; s = p.suspension(ctx) {
		if s.enter() {
			return s
		}
	}
	return nil
}

// suspension returns the innermost suspension of p in ctx that has not
// resumed, or nil.
func (p *Plugin) suspension(ctx context.Context) *Suspension {
	for ctx != nil {
		s, _ := ctx.Value(suspensionKey{p}).(*Suspension)
		if s == nil {
			return nil
		}
		s.mu.Lock()
		resumed := s.resumed
		s.mu.Unlock()
		if !resumed {
			return s
		}
		ctx = s.parent
	}
	return nil
}
