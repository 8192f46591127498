package gormpurge

import (
	"context"
	"errors"
	"fmt"
	"reflect"

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
	out, errs := p.argTargets(targets)
	if err := p.handoff(ctx, backends.NewRequest(out.urls, out.tags)); err != nil {
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
	out, errs := p.argTargets(targets)
	t.noteSuspension(tx.Statement.Context)
	t.c.add(out.urls, out.tags)
	return errors.Join(errs...)
}

// argTargets turns Purge's arguments into normalised URLs and tags, and
// returns an error for each value it left out.
func (p *Plugin) argTargets(args []any) (acc, []error) {
	var (
		out  acc
		errs []error
	)
	for i, a := range args {
		p.addArg(a, i, 0, &out, &errs)
	}
	return out, errs
}

// maxTargetDepth bounds how deep []any targets may nest, so that a slice
// that contains itself is an error, not a stack overflow.
const maxTargetDepth = 8

// addArg adds the targets of target to out: Purge's argument number arg,
// or a value depth slices deep inside it. It appends an error for each
// value it leaves out.
func (p *Plugin) addArg(target any, arg, depth int, out *acc, errs *[]error) {
	if depth > maxTargetDepth {
		*errs = append(*errs, fmt.Errorf("%w: argument %d nests slices more than %d deep (does a []any contain itself?)", ErrUnsupportedTarget, arg, maxTargetDepth))
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
			p.addArg(v, arg, depth+1, out, errs)
		}
		return
	}
	rv := reflect.ValueOf(target)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			*errs = append(*errs, fmt.Errorf("%w: argument %d is a nil %T", ErrUnsupportedTarget, arg, target))
			return
		}
		rv = rv.Elem()
	}
	if !p.addModels(rv, arg, depth, out, errs) {
		*errs = append(*errs, unsupportedArg(target, rv, arg))
	}
}

// addModels adds the targets of rv, when it is a registered model or a
// slice or array of them, or a slice or array of interfaces (each added as
// addArg adds it), and reports whether it was.
func (p *Plugin) addModels(rv reflect.Value, arg, depth int, out *acc, errs *[]error) bool {
	models := *p.models.Load()
	switch rv.Kind() {
	case reflect.Struct:
		if m := models[rv.Type()]; m != nil {
			*errs = append(*errs, p.rowTargets(m, rv, out)...)
			return true
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
			return true
		}
		if elem.Kind() == reflect.Interface {
			for i := 0; i < rv.Len(); i++ {
				p.addArg(rv.Index(i).Interface(), arg, depth+1, out, errs)
			}
			return true
		}
	}
	return false
}

// unsupportedArg says why target, in Purge's argument number arg, names
// nothing to purge, and how to fix it. rv is target without its pointers
// and interfaces.
func unsupportedArg(target any, rv reflect.Value, arg int) error {
	if target == nil {
		return fmt.Errorf("%w: argument %d is nil", ErrUnsupportedTarget, arg)
	}
	t := reflect.TypeOf(target)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		return fmt.Errorf("%w: argument %d: a %s: %s is not a registered model: register it with plugin.Register, or pass URLs (string, []string) or gormpurge.Targets", ErrUnsupportedTarget, arg, t, typeName(rv.Type().Elem()))
	case reflect.Struct:
		return fmt.Errorf("%w: argument %d: %s is not a registered model: register it with plugin.Register, or pass URLs (string, []string) or gormpurge.Targets", ErrUnsupportedTarget, arg, typeName(t))
	}
	return fmt.Errorf("%w: argument %d: cannot purge a %s: pass URLs (string, []string), registered models (or slices of them) or gormpurge.Targets", ErrUnsupportedTarget, arg, t)
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
