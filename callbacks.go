package gormpurge

import (
	"database/sql"
	"fmt"
	"reflect"
	"slices"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/gormpurge/gormpurge/backends"
)

// Callback names. Each runs inside GORM's implicit transaction, between the
// write and gorm:commit_or_rollback_transaction, except wrap_conn, which runs
// first.
const (
	cbWrapConn     = "gormpurge:wrap_conn"
	cbBeforeCreate = "gormpurge:before_create"
	cbAfterCreate  = "gormpurge:after_create"
	cbBeforeUpdate = "gormpurge:before_update"
	cbAfterUpdate  = "gormpurge:after_update"
	cbBeforeDelete = "gormpurge:before_delete"
	cbAfterDelete  = "gormpurge:after_delete"
	cbAfterQuery   = "gormpurge:after_query" // WithReadTags only
	cbAfterRow     = "gormpurge:after_row"   // WithReadTags only
)

func (p *Plugin) registerCallbacks(db *gorm.DB) error {
	cb := db.Callback()
	if cb.Create().Get(cbAfterCreate) != nil {
		return nil // already installed on this *gorm.DB
	}
	regs := []struct {
		proc interface {
			Register(string, func(*gorm.DB)) error
		}
		name string
		fn   func(*gorm.DB)
	}{
		{cb.Create().Before("gorm:begin_transaction"), cbWrapConn, p.wrapStatementConn},
		{cb.Create().Before("gorm:create").After("gorm:save_before_associations"), cbBeforeCreate, p.beforeCreate},
		{cb.Create().After("gorm:after_create").Before("gorm:commit_or_rollback_transaction"), cbAfterCreate, p.afterCreate},
		{cb.Update().Before("gorm:begin_transaction"), cbWrapConn, p.wrapStatementConn},
		{cb.Update().Before("gorm:update").After("gorm:save_before_associations"), cbBeforeUpdate, p.beforeUpdate},
		{cb.Update().After("gorm:after_update").Before("gorm:commit_or_rollback_transaction"), cbAfterUpdate, p.afterUpdate},
		{cb.Delete().Before("gorm:begin_transaction"), cbWrapConn, p.wrapStatementConn},
		{cb.Delete().Before("gorm:delete_before_associations").After("gorm:before_delete"), cbBeforeDelete, p.beforeDelete},
		{cb.Delete().After("gorm:after_delete").Before("gorm:commit_or_rollback_transaction"), cbAfterDelete, p.afterDelete},
	}
	if p.cfg.readTags {
		regs = append(regs, struct {
			proc interface {
				Register(string, func(*gorm.DB)) error
			}
			name string
			fn   func(*gorm.DB)
		}{cb.Query().After("gorm:query"), cbAfterQuery, p.afterQuery}, struct {
			proc interface {
				Register(string, func(*gorm.DB)) error
			}
			name string
			fn   func(*gorm.DB)
		}{cb.Row().After("gorm:row"), cbAfterRow, p.afterQuery})
	}
	for _, r := range regs {
		if err := r.proc.Register(r.name, r.fn); err != nil {
			return fmt.Errorf("gormpurge: registering callback %s: %w", r.name, err)
		}
	}
	return nil
}

// stmtState carries what a before-callback learnt to the after-callback of
// the same statement. Only strings and primary-key values are kept, never a
// reflect.Value of user memory.
type stmtState struct {
	old  acc           // targets of the rows as they were
	pks  [][]any       // primary keys of those rows, to re-read them afterwards
	rows reflect.Value // the rows read before an update, when they fit in one batch; the plugin's own memory
	// set is the SET clause the plugin had GORM build for an update (see
	// buildSet), nil when the statement came with one or GORM would build
	// none.
	set clause.Set
}

// watched returns what the plugin knows of the statement's model: a
// registered model, a join table between registered models, or neither. For
// models that are not registered this is one map lookup.
func (p *Plugin) watched(db *gorm.DB) (*modelInfo, *joinInfo) {
	if db.Error != nil || db.Statement.Schema == nil || db.DryRun {
		return nil, nil
	}
	s := db.Statement.Schema
	if m := (*p.models.Load())[s.ModelType]; m != nil {
		if m.schema.Load() == nil {
			m.schema.CompareAndSwap(nil, s) // read tags name its table
		}
		return m, nil
	}
	if s.ModelType.Name() != "" { // GORM's join tables are unnamed struct types
		return nil, nil
	}
	return nil, p.joinOf(s)
}

func (p *Plugin) beforeCreate(db *gorm.DB) {
	m, _ := p.watched(db)
	if m == nil || untracked(db.Statement.ConnPool) { // afterCreate reports it
		return
	}
	if cols, ok := upsertColumns(db.Statement); ok {
		st := &stmtState{}
		vals := columnValues(db.Statement, cols)
		if len(vals) > 0 {
			p.loadRows(db, m, "query rows an upsert may overwrite", func(q *gorm.DB) *gorm.DB {
				return q.Where(inCondition(db.Statement.Table, cols, vals))
			}, st, beforeWrite)
		}
		setState(db, st)
	}
}

func (p *Plugin) afterCreate(db *gorm.DB) {
	m, j := p.watched(db)
	if (m != nil || j != nil) && untracked(db.Statement.ConnPool) {
		// Read nothing in a transaction the plugin cannot follow; report
		// what the rows in hand say.
		var out acc
		if m != nil {
			out = p.rowsTargets(db.Statement, m)
		}
		if len(out.urls)+len(out.tags) > 0 {
			p.collect(db, out)
		} else {
			p.reportedUntracked(db)
		}
		return
	}
	switch {
	case m != nil:
		var out acc
		if cols, ok := upsertColumns(db.Statement); ok {
			// The row may hold other values than the instance: read it back.
			if st := stateOf(db); st != nil {
				out.merge(st.old)
			}
			if vals := columnValues(db.Statement, cols); len(vals) > 0 {
				var st stmtState
				p.loadRows(db, m, "query rows after upsert", func(q *gorm.DB) *gorm.DB {
					return q.Unscoped().Where(inCondition(db.Statement.Table, cols, vals))
				}, &st, afterWrite)
				out.merge(st.old)
			} else {
				// No conflict key to read the rows back by: the instance
				// is the best account there is.
				out.merge(p.rowsTargets(db.Statement, m))
			}
		} else {
			out = p.rowsTargets(db.Statement, m)
		}
		p.collect(db, out)
	case j != nil:
		p.collect(db, p.joinTargets(db, j, db.Statement.ReflectValue))
	}
}

func (p *Plugin) beforeUpdate(db *gorm.DB) {
	m, _ := p.watched(db)
	if m == nil || p.reportedUntracked(db) {
		return
	}
	st := p.readAffected(db, m, byUpdate, "query old rows for update")
	if st != nil && !savesWholeRow(db.Statement) {
		st.set = buildSet(db)
	}
}

// readAffected reads, before an update or delete of model m, the rows it will
// touch, and keeps their targets and keys for the after-callback. It returns
// nil when the statement has no conditions (GORM refuses it).
func (p *Plugin) readAffected(db *gorm.DB, m *modelInfo, by affectedBy, op string) *stmtState {
	conds, ok := affectedConds(db.Statement, by)
	if !ok {
		return nil
	}
	st := &stmtState{}
	p.loadRows(db, m, op, func(q *gorm.DB) *gorm.DB {
		if len(conds) > 0 {
			q = q.Where(clause.Where{Exprs: conds})
		}
		return q
	}, st, beforeWrite)
	setState(db, st)
	return st
}

func (p *Plugin) afterUpdate(db *gorm.DB) {
	m, _ := p.watched(db)
	if m == nil && db.Error == nil {
		return // beforeUpdate kept nothing either
	}
	st := stateOf(db)
	if st == nil {
		return
	}
	if st.set != nil {
		// As gorm:update does with the clause it builds: a statement
		// reused for another update must build its own.
		delete(db.Statement.Clauses, "SET")
	}
	if m == nil {
		return
	}
	out := st.old
	hasKey := len(db.Statement.Schema.PrimaryFields) > 0
	switch {
	case hasKey && len(st.pks) == 0:
		// The update matched no row: nothing changed.
	case savesWholeRow(db.Statement):
		// Save wrote every column from the instance: it is the new state.
		out.merge(p.rowsTargets(db.Statement, m))
	case st.set != nil && st.rows.IsValid() && applySet(db.Statement, st.set, st.rows):
		// The rows read before, with the plain values GORM wrote applied,
		// are the new state: no need to read them again.
		for i := 0; i < st.rows.Len(); i++ {
			p.targets(db.Statement.Context, m, st.rows.Index(i), &out)
		}
	case hasKey:
		var next stmtState
		for chunk := range slices.Chunk(st.pks, lookupBatch) {
			p.loadRows(db, m, "query new rows after update", func(q *gorm.DB) *gorm.DB {
				return q.Unscoped().Where(inCondition(db.Statement.Table, db.Statement.Schema.PrimaryFieldDBNames, chunk))
			}, &next, afterWrite)
		}
		out.merge(next.old)
	default:
		// No primary key to read the rows back by: the instance is the
		// best account of the new state there is.
		out.merge(p.rowsTargets(db.Statement, m))
	}
	p.collect(db, out)
}

func (p *Plugin) beforeDelete(db *gorm.DB) {
	m, j := p.watched(db)
	if (m == nil && j == nil) || p.reportedUntracked(db) {
		return
	}
	switch {
	case m != nil:
		p.readAffected(db, m, byDelete, "query rows to delete")
	case j != nil:
		conds, ok := affectedConds(db.Statement, byDelete)
		if !ok {
			return
		}
		setState(db, &stmtState{old: p.joinRowsTargets(db, j, conds)})
	}
}

func (p *Plugin) afterDelete(db *gorm.DB) {
	if m, j := p.watched(db); m == nil && j == nil {
		return
	}
	if st := stateOf(db); st != nil {
		p.collect(db, st.old)
	}
}

// stateKey keys a statement's stmtState in its Settings. Like
// db.InstanceSet, it names the statement, so that a session cloned from it
// does not inherit the state; unlike it, it costs no allocation.
type stateKey struct{ stmt *gorm.Statement }

// setState keeps st for the after-callback of db's statement.
func setState(db *gorm.DB, st *stmtState) {
	db.Statement.Settings.Store(stateKey{db.Statement}, st)
}

// stateOf returns, and forgets, what the before-callback of db's statement
// kept for it.
func stateOf(db *gorm.DB) *stmtState {
	v, ok := db.Statement.Settings.LoadAndDelete(stateKey{db.Statement})
	if !ok {
		return nil
	}
	st, _ := v.(*stmtState)
	return st
}

// collect adds the statement's targets to its transaction, or hands them off
// now when the statement ran outside any transaction.
func (p *Plugin) collect(db *gorm.DB, a acc) {
	if len(a.urls) == 0 && len(a.tags) == 0 {
		return
	}
	cp := db.Statement.ConnPool
	if t := trackedTxOf(cp); t != nil {
		t.noteSuspension(db.Statement.Context)
		t.c.add(a.urls, a.tags)
		return
	}
	r := backends.NewRequest(a.urls, a.tags)
	if untracked(cp) {
		p.stats.handoffErrors.Add(1)
		p.report(db.Statement.Context, &HandoffError{Request: r, Err: fmt.Errorf("%w: %s was written in a transaction begun on %T, whose commit the plugin cannot see; begin transactions with db.Begin or db.Transaction on the *gorm.DB the plugin is installed on", ErrUntrackedTransaction, db.Statement.Table, cp)})
		return
	}
	_ = p.handoff(db.Statement.Context, r) // reported
}

// reportedUntracked reports, as ErrUntrackedTransaction, a write of a watched
// model in a transaction the plugin cannot follow, and returns true then: the
// plugin reads nothing in such a transaction (on PostgreSQL a failed read
// would abort it) and its targets could only be sent before the commit.
func (p *Plugin) reportedUntracked(db *gorm.DB) bool {
	cp := db.Statement.ConnPool
	if !untracked(cp) {
		return false
	}
	p.stats.handoffErrors.Add(1)
	p.report(db.Statement.Context, &HandoffError{Err: fmt.Errorf("%w: %s was written in a transaction begun on %T, whose commit the plugin cannot see; begin transactions with db.Begin or db.Transaction on the *gorm.DB the plugin is installed on", ErrUntrackedTransaction, db.Statement.Table, cp)})
	return true
}

// untracked reports whether cp is a transaction the plugin did not begin.
func untracked(cp gorm.ConnPool) bool {
	_, isTx := cp.(gorm.TxCommitter)
	return isTx && trackedTxOf(cp) == nil
}

// wrapStatementConn wraps the raw *sql.Conn that db.Connection puts on the
// statement, so that GORM's implicit transaction on it is tracked like any
// other. It runs before gorm:begin_transaction.
func (p *Plugin) wrapStatementConn(db *gorm.DB) {
	if conn, ok := db.Statement.ConnPool.(*sql.Conn); ok {
		db.Statement.ConnPool = p.wrapConn(conn, db.Dialector.Name())
	}
}
