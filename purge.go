package gormpurge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"

	"gorm.io/gorm"

	"github.com/gormpurge/gormpurge/backends"
)

// Purge hands off the pages and tags that targets name, now, as a purge on
// demand: after a change the callbacks cannot see (a raw db.Exec, another
// service's write, an operator's request), or to purge by hand. Each target
// is one of:
//
//   - a URL or path, as a string, or several, as a []string;
//   - a registered model, as a pointer or a value, or a slice or array of
//     them: each row yields its URLs and tags exactly as the callbacks
//     would;
//   - a [Targets] value, to name cache tags as well as URLs;
//   - a []any holding any of these.
//
// URLs and tags are normalised and validated as the callbacks do (see
// [WithBaseURL] and [WithAllowedHosts]); empty ones are skipped, and nil
// pointers inside a slice of models too. What is valid is handed off in one
// request; what is not is returned as errors, each a *[TargetError] naming
// the URL or tag, a *[ModelError], or an error matching
// [ErrUnsupportedTarget] naming the target's type. The handoff's own
// failure is returned as a *[HandoffError], and also reported like the
// callbacks' (logger, error handler, [Stats]).
//
// Under [Plugin.Suspend], the request joins the suspension instead. Inside a
// transaction use [Plugin.PurgeTx]: Purge does not wait for a commit.
func (p *Plugin) Purge(ctx context.Context, targets ...any) error {
	if p.optErr != nil {
		return p.optErr
	}
	if ctx == nil {
		ctx = context.Background()
	}
	out, errs := p.resolve(targets)
	if err := p.deliver(ctx, backends.NewRequest(out.urls, out.tags)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// PurgeTx is Purge joined to the transaction tx belongs to: the targets are
// added to what the callbacks collect in it, handed off once it commits,
// dropped if it rolls back (or if the savepoint it was called in is rolled
// back), like the callbacks' own. tx is the *gorm.DB that db.Transaction
// passes to its function, or that db.Begin returns. Use it after a raw
// tx.Exec, whose rows the callbacks cannot see:
//
//	db.Transaction(func(tx *gorm.DB) error {
//		if err := tx.Exec("UPDATE posts SET views = views + 1 WHERE id = ?", id).Error; err != nil {
//			return err
//		}
//		return plugin.PurgeTx(tx, &post)
//	})
//
// It returns an error matching [ErrNoTransaction], and purges nothing, when
// tx is not inside a transaction begun through the plugin or the
// transaction has ended; one matching [ErrUntrackedTransaction] for a
// transaction the plugin cannot see commit. Invalid targets are returned as
// Purge returns them; the valid ones are still added.
func (p *Plugin) PurgeTx(tx *gorm.DB, targets ...any) error {
	if p.optErr != nil {
		return p.optErr
	}
	if tx == nil || tx.Statement == nil {
		return fmt.Errorf("%w: PurgeTx was given a nil *gorm.DB", ErrNoTransaction)
	}
	cp := tx.Statement.ConnPool
	t := trackedTxOf(cp)
	switch {
	case t == nil && untracked(cp):
		return fmt.Errorf("%w: PurgeTx was given a transaction begun on %T, whose commit the plugin cannot see (such as one begun inside db.Connection); call Purge after it commits, or begin it with db.Begin or db.Transaction on the *gorm.DB the plugin is installed on", ErrUntrackedTransaction, cp)
	case t == nil:
		return fmt.Errorf("%w: PurgeTx was given a *gorm.DB outside any transaction; pass the tx of db.Transaction or db.Begin, or call Purge", ErrNoTransaction)
	case t.pool.plugin != p:
		return fmt.Errorf("%w: the transaction was begun on a *gorm.DB that another gormpurge plugin is installed on", ErrNoTransaction)
	case t.done.Load():
		return fmt.Errorf("%w: the transaction has already committed or rolled back", ErrNoTransaction)
	}
	out, errs := p.resolve(targets)
	t.noteSuspension(tx.Statement.Context)
	t.c.add(out.urls, out.tags)
	return errors.Join(errs...)
}

// resolve turns Purge's targets into normalised URLs and tags, and returns
// an error for each value it left out.
func (p *Plugin) resolve(targets []any) (acc, []error) {
	var (
		out  acc
		errs []error
	)
	for i, t := range targets {
		p.resolveOne(t, i, 0, &out, &errs)
	}
	return out, errs
}

// maxTargetDepth bounds how deep []any targets may nest, so that a slice
// that contains itself is an error, not a stack overflow.
const maxTargetDepth = 8

func (p *Plugin) resolveOne(target any, arg, depth int, out *acc, errs *[]error) {
	add := func(err error) {
		if err != nil {
			*errs = append(*errs, err)
		}
	}
	if depth > maxTargetDepth {
		add(fmt.Errorf("%w: argument %d nests slices more than %d deep (does a []any contain itself?)", ErrUnsupportedTarget, arg, maxTargetDepth))
		return
	}
	switch t := target.(type) {
	case string:
		p.addTargets(Targets{URLs: []string{t}}, out, errs)
		return
	case []string:
		p.addTargets(Targets{URLs: t}, out, errs)
		return
	case Targets:
		p.addTargets(t, out, errs)
		return
	case *Targets:
		if t != nil {
			p.addTargets(*t, out, errs)
			return
		}
	case []any:
		for _, v := range t {
			p.resolveOne(v, arg, depth+1, out, errs)
		}
		return
	}
	rv := reflect.ValueOf(target)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			add(fmt.Errorf("%w: argument %d is a nil %T", ErrUnsupportedTarget, arg, target))
			return
		}
		rv = rv.Elem()
	}
	models := *p.models.Load()
	switch rv.Kind() {
	case reflect.Struct:
		if m := models[rv.Type()]; m != nil {
			*errs = append(*errs, p.rowTargets(m, rv, out)...)
			return
		}
	case reflect.Slice, reflect.Array:
		elem := rv.Type().Elem()
		for elem.Kind() == reflect.Pointer {
			elem = elem.Elem()
		}
		if m := models[elem]; m != nil {
			eachRow(rv, m.typ, func(row reflect.Value) {
				*errs = append(*errs, p.rowTargets(m, row, out)...)
			}, nil)
			return
		}
		if elem.Kind() == reflect.Interface {
			for i := 0; i < rv.Len(); i++ {
				p.resolveOne(rv.Index(i).Interface(), arg, depth+1, out, errs)
			}
			return
		}
	}
	if target == nil {
		add(fmt.Errorf("%w: argument %d is nil", ErrUnsupportedTarget, arg))
		return
	}
	t := reflect.TypeOf(target)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		add(fmt.Errorf("%w: argument %d: a %s: %s is not a registered model: register it with plugin.Register, or pass URLs (string, []string) or gormpurge.Targets", ErrUnsupportedTarget, arg, t, typeName(rv.Type().Elem())))
		return
	case reflect.Struct:
		add(fmt.Errorf("%w: argument %d: %s is not a registered model: register it with plugin.Register, or pass URLs (string, []string) or gormpurge.Targets", ErrUnsupportedTarget, arg, typeName(t)))
		return
	}
	add(fmt.Errorf("%w: argument %d: cannot purge a %s: pass URLs (string, []string), registered models (or slices of them) or gormpurge.Targets", ErrUnsupportedTarget, arg, t))
}

// addTargets adds t's URLs and tags, skipping empty ones as the callbacks
// do, and appends an error for each it rejects.
func (p *Plugin) addTargets(t Targets, out *acc, errs *[]error) {
	for _, u := range t.URLs {
		if u != "" {
			if err := p.addURL("", u, out); err != nil {
				*errs = append(*errs, err)
			}
		}
	}
	for _, g := range t.Tags {
		if g != "" {
			if err := addTag("", g, out); err != nil {
				*errs = append(*errs, err)
			}
		}
	}
}

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
	s.resumeErr = s.p.deliver(s.parent, r)
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
