package gormpurge

import (
	"reflect"

	"gorm.io/gorm"
	"gorm.io/gorm/callbacks"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// buildSet has GORM build the SET clause of an update now, with its own
// rules (zero values, Select and Omit, what BeforeUpdate hooks changed with
// SetColumn, the auto-update time), and puts it on the statement, where
// gorm:update finds and writes it instead of building another. It returns
// the clause, or nil when the statement came with a SET clause of its own,
// holds SQL already, or GORM found nothing to write. afterUpdate removes the
// clause again, as gorm:update would.
func buildSet(db *gorm.DB) clause.Set {
	stmt := db.Statement
	if db.Error != nil || stmt.SQL.Len() > 0 {
		return nil
	}
	if _, byHand := stmt.Clauses["SET"]; byHand {
		return nil
	}
	set := callbacks.ConvertToAssignments(stmt)
	if len(set) == 0 || db.Error != nil {
		return nil
	}
	stmt.AddClause(set)
	return set
}

// applySet applies set, the SET clause GORM wrote, to rows, the rows the
// update touched as they were before, and reports whether it could: only
// when every value is a plain value of a column the schema knows, not SQL
// (gorm.Expr, a subquery, a gorm.Valuer) whose result only the database
// knows.
func applySet(stmt *gorm.Statement, set clause.Set, rows reflect.Value) bool {
	for _, a := range set {
		switch a.Value.(type) {
		case clause.Expression, *gorm.DB, gorm.Valuer, []any: // []any: a subquery, as GORM wraps it
			return false
		}
		if a.Column.Raw {
			return false
		}
		if f := stmt.Schema.LookUpField(a.Column.Name); f == nil || f.DBName == "" {
			return false // a column the schema does not know
		}
	}
	for i := 0; i < rows.Len(); i++ {
		row := rows.Index(i)
		for _, a := range set {
			if err := stmt.Schema.LookUpField(a.Column.Name).Set(stmt.Context, row, a.Value); err != nil {
				return false
			}
		}
	}
	return true
}

// savesWholeRow reports whether the statement is a Save of one instance,
// which writes every column from it.
func savesWholeRow(stmt *gorm.Statement) bool {
	return len(stmt.Selects) == 1 && stmt.Selects[0] == "*" && len(stmt.Omits) == 0 &&
		stmt.Dest == stmt.Model && reflect.Indirect(stmt.ReflectValue).Kind() == reflect.Struct
}

// upsertColumns returns the conflict columns of an INSERT ... ON CONFLICT
// that updates existing rows (not DO NOTHING): the primary key when none are
// named.
func upsertColumns(stmt *gorm.Statement) ([]string, bool) {
	c, ok := stmt.Clauses["ON CONFLICT"]
	if !ok {
		return nil, false
	}
	oc, ok := c.Expression.(clause.OnConflict)
	if !ok || oc.DoNothing || (!oc.UpdateAll && len(oc.DoUpdates) == 0) {
		return nil, false
	}
	if len(oc.Columns) == 0 {
		return stmt.Schema.PrimaryFieldDBNames, len(stmt.Schema.PrimaryFieldDBNames) > 0
	}
	cols := make([]string, 0, len(oc.Columns))
	for _, col := range oc.Columns {
		cols = append(cols, col.Name)
	}
	return cols, true
}

// columnValues returns the values of cols in every row of the statement's
// value; rows with a zero value in any of them are left out.
func columnValues(stmt *gorm.Statement, cols []string) [][]any {
	fields := make([]*schema.Field, 0, len(cols))
	for _, c := range cols {
		f := stmt.Schema.LookUpField(c)
		if f == nil {
			return nil
		}
		fields = append(fields, f)
	}
	var out [][]any
	eachRow(stmt.ReflectValue, stmt.Schema.ModelType, func(row reflect.Value) {
		vals := make([]any, 0, len(fields))
		for _, f := range fields {
			v, zero := f.ValueOf(stmt.Context, row)
			if zero {
				return
			}
			vals = append(vals, v)
		}
		out = append(out, vals)
	}, nil)
	return out
}

// affectedBy says which kind of write affectedConds looks at.
type affectedBy int

const (
	byUpdate affectedBy = iota
	byDelete            // also keys on the model given to Delete beside the value
)

// affectedConds returns the conditions that select the rows an update or
// delete will touch: its WHERE clause plus the primary keys of the value in
// hand, as gorm:update and gorm:delete add them. ok is false when the
// statement has no conditions and would be refused as a global update.
func affectedConds(stmt *gorm.Statement, by affectedBy) (conds []clause.Expression, ok bool) {
	if c, found := stmt.Clauses["WHERE"]; found {
		if w, isWhere := c.Expression.(clause.Where); isWhere {
			conds = append(conds, w.Exprs...)
		}
	}
	if s := stmt.Schema; len(s.PrimaryFields) > 0 {
		add := func(v reflect.Value) {
			_, pks := schema.GetIdentityFieldValuesMap(stmt.Context, v, s.PrimaryFields)
			if len(pks) > 0 {
				col, vals := schema.ToQueryValues(stmt.Table, s.PrimaryFieldDBNames, pks)
				conds = append(conds, clause.IN{Column: col, Values: vals})
			}
		}
		add(stmt.ReflectValue)
		if by == byDelete && stmt.Model != nil && stmt.Dest != stmt.Model {
			add(reflect.ValueOf(stmt.Model))
		}
	}
	return conds, len(conds) > 0 || stmt.AllowGlobalUpdate
}

// inCondition is "(cols) IN (vals)" on table.
func inCondition(table string, cols []string, vals [][]any) clause.Expression {
	col, flat := schema.ToQueryValues(table, cols, vals)
	return clause.IN{Column: col, Values: flat}
}
