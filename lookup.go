package gormpurge

import (
	"errors"
	"reflect"
	"slices"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// readPhase says whether loadRows reads before the statement's write or
// after it.
type readPhase int

const (
	// beforeWrite honours the statement's Unscoped, reads in batches by
	// primary key, and, on PostgreSQL and MySQL inside a transaction, locks
	// the rows (FOR UPDATE) so that the state read is the state the write
	// replaces.
	beforeWrite readPhase = iota
	// afterWrite reads the rows as the conditions find them, in one query.
	afterWrite
)

// loadRows reads rows of model m on the statement's own connection, so inside
// its transaction, and adds each row's targets and primary key to st. scope
// adds the conditions; phase says whether the read comes before the write.
//
// A failed read is reported as a *ModelError; what was read is kept.
func (p *Plugin) loadRows(db *gorm.DB, m *modelInfo, op string, scope func(*gorm.DB) *gorm.DB, st *stmtState, phase readPhase) {
	stmt := db.Statement
	if st.old.sch == nil {
		st.old.sch = stmt.Schema
	}
	dest := reflect.New(reflect.SliceOf(m.typ))
	batches := 0
	collect := func() {
		batches++
		rows := dest.Elem()
		if batches == 1 && rows.Len() < lookupBatch {
			st.rows = rows // all of them, in memory the plugin owns
		} else {
			st.rows = reflect.Value{}
		}
		for i := 0; i < rows.Len(); i++ {
			row := rows.Index(i)
			p.targets(stmt.Context, m, row, &st.old)
			if pk := primaryKey(stmt, row); pk != nil {
				st.pks = append(st.pks, pk)
			}
		}
	}
	// Before the write, a read of the statement's own rows with its own
	// conditions fails only where the statement would fail too: it needs no
	// savepoint (see needsGuard). Reads after the write keep it.
	guard := phase == afterWrite || needsGuard(stmt)
	query := func() *gorm.DB {
		q := scope(lookup(db, dest.Interface(), stmtTable))
		if phase == beforeWrite {
			if stmt.Unscoped {
				q = q.Unscoped()
			}
			if _, inTx := stmt.ConnPool.(gorm.TxCommitter); inTx && locksRows(db) {
				q = q.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate})
			}
		}
		return q
	}
	var err error
	if pf := stmt.Schema.PrioritizedPrimaryField; phase == beforeWrite && pf != nil {
		err = guardedIf(db, guard, func() error { return findInBatches(stmt, query, pf, dest, collect) })
	} else {
		err = guardedIf(db, guard, func() error { return query().Find(dest.Interface()).Error })
		collect()
	}
	if err != nil {
		if !guard && abortedBy(db, err) {
			// The transaction is lost, and the statement would have failed
			// the same way: give the user the database's own error rather
			// than PostgreSQL's "current transaction is aborted".
			_ = db.AddError(err)
			return
		}
		p.report(stmt.Context, &ModelError{Model: m.name, Op: op, Err: err})
	}
}

// needsGuard reports whether a read of the rows a statement will touch (its
// table, its WHERE clause) could fail where the statement itself would
// succeed, so that on PostgreSQL it must run inside a savepoint: when the
// statement has clauses the read does not carry (FROM, USING, joins, locking,
// custom clauses), or runs on a table expression or a table other than the
// model's (perhaps a view). Otherwise the read names nothing the statement
// does not, and a failure (a bad condition, a lock timeout, a deadlock, a
// serialization failure) is one the statement would meet as well. The one
// exception, a role allowed to update columns it may not read, is a
// documented requirement.
func needsGuard(stmt *gorm.Statement) bool {
	if len(stmt.Joins) > 0 || stmt.Schema == nil || stmt.Table != stmt.Schema.Table {
		return true
	}
	if e := stmt.TableExpr; e != nil && (len(e.Vars) > 0 || e.SQL != stmt.Quote(stmt.Table)) {
		return true // not db.Table of the model's own table
	}
	for name := range stmt.Clauses {
		switch name {
		case "WHERE", "SET", "ORDER BY", "LIMIT", "RETURNING", "UPDATE", "DELETE":
		default:
			return true
		}
	}
	return false
}

// abortedBy reports whether err, returned by a read in db's transaction,
// aborted that transaction: an error of the database itself (one with an
// SQLSTATE) on PostgreSQL.
func abortedBy(db *gorm.DB, err error) bool {
	t := trackedTxOf(db.Statement.ConnPool)
	if t == nil || !t.pool.abortsOnError {
		return false
	}
	var coded interface{ SQLState() string }
	return errors.As(err, &coded)
}

// findInBatches reads the rows query finds into dest, a pointer to a slice,
// lookupBatch at a time in the order of the primary key pf, and calls collect
// after each batch. It is db.FindInBatches made cheaper for the common case:
// the first batch is one plain query, and only a full one makes it read on.
func findInBatches(stmt *gorm.Statement, query func() *gorm.DB, pf *schema.Field, dest reflect.Value, collect func()) error {
	byKey := clause.Column{Table: clause.CurrentTable, Name: clause.PrimaryKey}
	if err := query().Order(clause.OrderByColumn{Column: byKey}).Limit(lookupBatch).Find(dest.Interface()).Error; err != nil {
		return err
	}
	collect()
	rows := dest.Elem()
	if rows.Len() < lookupBatch {
		return nil
	}
	last, _ := pf.ValueOf(stmt.Context, rows.Index(rows.Len()-1))
	return query().Where(clause.Gt{Column: byKey, Value: last}).FindInBatches(dest.Interface(), lookupBatch, func(*gorm.DB, int) error {
		collect()
		return nil
	}).Error
}

// lookupTable says which table a lookup queries.
type lookupTable int

const (
	stmtTable lookupTable = iota // the statement's table (and alias)
	destTable                    // the default table of dest's model
)

// lookup starts a query for rows into dest on the statement's own connection,
// so inside its transaction when there is one, on the table that table
// names.
func lookup(db *gorm.DB, dest any, table lookupTable) *gorm.DB {
	stmt := db.Statement
	q := db.Session(&gorm.Session{NewDB: true, Context: stmt.Context}).Model(dest)
	if table == stmtTable {
		q.Statement.Table, q.Statement.TableExpr = stmt.Table, stmt.TableExpr
	}
	// With gorm.io/plugin/dbresolver, read from the source database, never
	// from a replica that may lag behind the write.
	q.Statement.Settings.Store("gorm:db_resolver:write", true)
	return q
}

// guarded runs fn, which queries through the statement's connection, so that
// its failure cannot abort the user's transaction (see trackedTx.guard).
func guarded(db *gorm.DB, fn func() error) error { return guardedIf(db, true, fn) }

// guardedIf runs fn guarded when guard is true, else as it is.
func guardedIf(db *gorm.DB, guard bool, fn func() error) error {
	if guard {
		if t := trackedTxOf(db.Statement.ConnPool); t != nil {
			return t.guard(db.Statement.Context, fn)
		}
	}
	return fn()
}

// locksRows reports whether the dialect supports SELECT ... FOR UPDATE.
func locksRows(db *gorm.DB) bool {
	switch db.Dialector.Name() {
	case "postgres", "mysql":
		return true
	}
	return false
}

// primaryKey returns row's primary key values, or nil when any is zero.
func primaryKey(stmt *gorm.Statement, row reflect.Value) []any {
	fields := stmt.Schema.PrimaryFields
	if len(fields) == 0 {
		return nil
	}
	pk := make([]any, 0, len(fields))
	for _, f := range fields {
		v, zero := f.ValueOf(stmt.Context, row)
		if zero {
			return nil
		}
		pk = append(pk, v)
	}
	return pk
}

// rowsByKey reads the rows of model m whose columns cols match vals, on the
// statement's connection, including soft-deleted rows, and returns their
// targets.
func (p *Plugin) rowsByKey(db *gorm.DB, m *modelInfo, table string, cols []string, vals [][]any, op string) acc {
	var st stmtState
	for chunk := range slices.Chunk(vals, lookupBatch) {
		p.loadModelRows(db, m, table, op, func(q *gorm.DB) *gorm.DB {
			return q.Unscoped().Where(inCondition(table, cols, chunk))
		}, &st)
	}
	return st.old
}

// loadModelRows is loadRows for a model other than the statement's own, such
// as one side of a join table.
func (p *Plugin) loadModelRows(db *gorm.DB, m *modelInfo, table, op string, scope func(*gorm.DB) *gorm.DB, st *stmtState) {
	ctx := db.Statement.Context
	dest := reflect.New(reflect.SliceOf(m.typ))
	q := scope(lookup(db, dest.Interface(), destTable).Table(table))
	err := guarded(db, func() error { return q.Find(dest.Interface()).Error })
	if sch := q.Statement.Schema; sch != nil && sch.ModelType == m.typ {
		st.old.sch = sch // the other side, as this database names it
	}
	rows := dest.Elem()
	for i := 0; i < rows.Len(); i++ {
		p.targets(ctx, m, rows.Index(i), &st.old)
	}
	if err != nil {
		p.report(ctx, &ModelError{Model: m.name, Op: op, Err: err})
	}
}

// lookupBatch is how many rows one lookup query reads at a time.
const lookupBatch = 500
