package gormpurge

import (
	"errors"
	"reflect"
	"regexp"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"

	"github.com/gormpurge/gormpurge/backends"
)

// What a query read, for read tags. The rule, built to never under-purge:
// a page carries the row tag of every row of a registered model it read,
// and its table's tag unless the query's conditions pin down exactly which
// rows it can ever find: an equality (or IN list) on the table's own
// primary key or a unique column, every value of which found its row (a
// lookup by primary key is also tagged with the keys it asked for). Any
// OR, any condition on another table, a destination other than the model
// (Count, Pluck, Scan into another type) or a row asked for and not found
// makes the query a list. A join tags its rows, or its table when it found
// none; a join or condition the plugin cannot follow tags the tables it
// names.

// afterQuery is the after-query and after-row callback: it adds what the
// query read to the read set of the request whose context it ran with.
func (p *Plugin) afterQuery(db *gorm.DB) {
	stmt := db.Statement
	rs := p.readSetOf(stmt.Context)
	if rs == nil || db.Error != nil && !errors.Is(db.Error, gorm.ErrRecordNotFound) {
		return
	}
	if _, built := stmt.Clauses["FROM"]; !built && stmt.SQL.Len() > 0 {
		return // db.Raw(...): the plugin does not read SQL; it tags nothing
	}
	if stmt.Schema == nil {
		// db.Table("posts").Find(&maps): the table, if a registered
		// model's.
		if sch := p.registeredTable(stmt.Table); sch != nil {
			rs.add(sch.Table, nil, true)
		}
		return
	}
	q := query{p: p, rs: rs, stmt: stmt, sch: stmt.Schema, found: int(db.RowsAffected)}
	q.tag()
}

// query is one query being tagged.
type query struct {
	p     *Plugin
	rs    *readSet
	stmt  *gorm.Statement
	sch   *schema.Schema
	found int // rows found, when the destination holds the model's rows
}

func (q *query) tag() {
	m := (*q.p.models.Load())[q.sch.ModelType]
	inModel := q.stmt.Dest != nil && holdsRowsOf(q.stmt.ReflectValue, q.sch.ModelType)
	if m != nil && q.found > maxRowTagsPerTable && len(q.stmt.Joins) == 0 {
		// Too many rows to name: the table's tag, which add would
		// collapse them into anyway, without spelling each one; and the
		// tags of the other tables its conditions name.
		q.keyed(inModel)
		q.rs.add(q.sch.Table, nil, true)
		return
	}
	var (
		tags    []string
		keyless bool // a row read without its key (Select without it): only the table's tag covers it
	)
	if inModel && q.found > 0 && !(m != nil && q.rs.whole(q.sch.Table) && len(q.stmt.Joins) == 0) {
		eachRow(q.stmt.ReflectValue, q.sch.ModelType, func(row reflect.Value) {
			switch pk := primaryKey(q.stmt, row); {
			case m == nil:
			case pk != nil:
				tags = append(tags, backends.RowTag(q.sch.Table, pk...))
			default:
				keyless = true
			}
			for _, j := range q.stmt.Joins {
				q.tagJoined(j.Name, row)
			}
		}, nil)
	}
	for _, j := range q.stmt.Joins {
		path := relationPath(q.sch, j.Name)
		switch {
		case path == nil:
			q.tagTablesNamedIn(j.Name) // a join written in SQL
		case len(j.Conds) > 0 || j.On != nil || j.JoinType == clause.InnerJoin:
			// The join filters the rows found: a write to the joined
			// table may change which, also where it found none.
			for _, rel := range path {
				if (*q.p.models.Load())[rel.FieldSchema.ModelType] != nil {
					q.rs.add(rel.FieldSchema.Table, nil, true)
				}
			}
		}
	}
	// keyed also tags the other tables the conditions name, for a model
	// that is not registered too.
	if listed := q.keyed(inModel); m != nil {
		q.rs.add(q.sch.Table, tags, listed || keyless)
	}
}

// holdsRowsOf reports whether rv, a query's destination, holds structs of
// typ: a struct, or a slice or array of structs or pointers to them.
func holdsRowsOf(rv reflect.Value, typ reflect.Type) bool {
	if !rv.IsValid() {
		return false
	}
	t := rv.Type()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
		t = t.Elem()
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
	}
	return t == typ
}

// relationPath returns the relationship a join name ("Author",
// "Author.Company") follows from sch, or nil.
func relationPath(sch *schema.Schema, name string) []*schema.Relationship {
	var path []*schema.Relationship
	for part := range strings.SplitSeq(name, ".") {
		rel := sch.Relationships.Relations[part]
		if rel == nil || rel.Field == nil {
			return nil
		}
		path = append(path, rel)
		sch = rel.FieldSchema
	}
	return path
}

// tagJoined adds the rows a join named name loaded into row: each one's
// row tag, or the table's tag where the join found none (a row created
// later may be joined, and only the table's tag says so).
func (q *query) tagJoined(name string, row reflect.Value) {
	v := row
	for _, rel := range relationPath(q.sch, name) {
		v = reflect.Indirect(rel.Field.ReflectValueOf(q.stmt.Context, v))
		fs := rel.FieldSchema
		registered := (*q.p.models.Load())[fs.ModelType] != nil
		if !v.IsValid() || v.Kind() != reflect.Struct {
			if registered {
				q.rs.add(fs.Table, nil, true)
			}
			return
		}
		pk := make([]any, 0, len(fs.PrimaryFields))
		for _, f := range fs.PrimaryFields {
			val, zero := f.ValueOf(q.stmt.Context, v)
			if zero {
				if registered {
					q.rs.add(fs.Table, nil, true)
				}
				return
			}
			pk = append(pk, val)
		}
		if registered {
			q.rs.add(fs.Table, []string{backends.RowTag(fs.Table, pk...)}, false)
		}
	}
}

// sqlTables matches the tables a join or condition written in SQL names.
var sqlTables = regexp.MustCompile("(?i)(?:join|from)\\s+[`\"]?(\\w+)")

// tagTablesNamedIn adds the tags of the registered tables sql names.
func (q *query) tagTablesNamedIn(sql string) {
	for _, m := range sqlTables.FindAllStringSubmatch(sql, -1) {
		if sch := q.p.registeredTable(m[1]); sch != nil {
			q.rs.add(sch.Table, nil, true)
		}
	}
}

// keyed says whether the query's conditions leave the page needing the
// table's tag (see the rule above). inModel says whether the destination
// holds the model's rows, which found counts.
func (q *query) keyed(inModel bool) (listed bool) {
	c, ok := q.stmt.Clauses["WHERE"]
	if !ok {
		return true
	}
	where, ok := c.Expression.(clause.Where)
	if !ok {
		return true
	}
	listed = true
	for _, e := range where.Exprs {
		if _, or := e.(clause.OrConditions); or {
			return true
		}
	}
	for _, e := range where.Exprs {
		qualifier, col, vals, ok := equality(e)
		if !ok {
			q.otherTables(e)
			continue
		}
		if !q.ownTable(qualifier) {
			q.tagQualifier(qualifier)
			return true // a condition on another table: a list
		}
		f := fieldOf(q.sch, col)
		switch {
		case f == nil:
		case f.PrimaryKey && len(q.sch.PrimaryFields) == 1, q.p.uniqueColumn(q.sch, f):
			// Every value asked for found its row (a repeated value
			// makes this look false: the table's tag, which is safe):
			// the rows' tags pin the page down. Otherwise a create,
			// or a key spelled another way ("07", 'ADA'), may change
			// what it finds: the table's tag.
			if inModel && q.distinctFound(f) >= len(vals) {
				listed = false
			}
		}
	}
	return listed
}

// distinctFound returns how many different values of f the rows found
// hold: a join may return one row several times.
func (q *query) distinctFound(f *schema.Field) int {
	if q.found == 0 {
		return 0
	}
	seen := make(map[string]struct{}, q.found)
	eachRow(q.stmt.ReflectValue, q.sch.ModelType, func(row reflect.Value) {
		if v, zero := f.ValueOf(q.stmt.Context, row); !zero {
			seen[backends.RowTag("", v)] = struct{}{}
		}
	}, nil)
	return len(seen)
}

// ownTable reports whether a condition's qualifier names the query's own
// table: none, the current table, or its name.
func (q *query) ownTable(qualifier string) bool {
	return qualifier == "" || qualifier == clause.CurrentTable || qualifier == q.stmt.Table || qualifier == q.sch.Table
}

// tagQualifier adds the tag of the table a condition's qualifier names: a
// relation joined by name ("Author") or a registered table.
func (q *query) tagQualifier(qualifier string) {
	if path := relationPath(q.sch, qualifier); path != nil {
		fs := path[len(path)-1].FieldSchema
		if (*q.p.models.Load())[fs.ModelType] != nil {
			q.rs.add(fs.Table, nil, true)
		}
		return
	}
	if sch := q.p.registeredTable(qualifier); sch != nil {
		q.rs.add(sch.Table, nil, true)
	}
}

// otherTables adds the tags of the registered tables a condition the
// plugin does not parse names with a qualifier ("authors.name = ?") or in a
// subquery written in SQL.
func (q *query) otherTables(e clause.Expression) {
	x, ok := e.(clause.Expr)
	if !ok {
		return
	}
	for _, m := range qualifiers.FindAllStringSubmatch(x.SQL, -1) {
		if !q.ownTable(m[1]) {
			q.tagQualifier(m[1])
		}
	}
	q.tagTablesNamedIn(x.SQL)
}

// qualifiers matches the table qualifiers of columns in SQL: "authors.name".
var qualifiers = regexp.MustCompile("[`\"]?(\\w+)[`\"]?\\.[`\"]?\\w+")

// fieldOf returns the field of sch a condition's column names.
func fieldOf(sch *schema.Schema, col string) *schema.Field {
	if col == clause.PrimaryKey {
		return sch.PrioritizedPrimaryField
	}
	return sch.LookUpField(col)
}

// exprEquality matches the conditions GORM builds from strings such as
// "slug = ?", "`posts`.`id` = ?" or "id IN ?".
var exprEquality = regexp.MustCompile("^\\s*(?:[`\"]?(\\w+)[`\"]?\\.)?[`\"]?(\\w+)[`\"]?\\s*(?:=|(?i:in))\\s*\\(?\\s*\\?\\s*\\)?\\s*$")

// equality returns the table qualifier, column and values of a condition
// that is an equality or an IN list of plain values.
func equality(e clause.Expression) (qualifier, col string, vals []any, ok bool) {
	switch e := e.(type) {
	case clause.Eq:
		if c, isCol := e.Column.(clause.Column); isCol && plain(e.Value) {
			return c.Table, c.Name, []any{e.Value}, true
		}
		if s, isStr := e.Column.(string); isStr && plain(e.Value) {
			return "", s, []any{e.Value}, true
		}
	case clause.IN:
		if c, isCol := e.Column.(clause.Column); isCol {
			if vals := plainValues(e.Values); vals != nil {
				return c.Table, c.Name, vals, true
			}
		}
	case clause.Expr:
		if len(e.Vars) == 1 {
			if m := exprEquality.FindStringSubmatch(e.SQL); m != nil {
				if vals := plainValues([]any{e.Vars[0]}); vals != nil {
					return m[1], m[2], vals, true
				}
			}
		}
	}
	return "", "", nil, false
}

// plainValues returns vals with slices spread out, or nil if one is not a
// plain value (SQL, a subquery).
func plainValues(vals []any) []any {
	var out []any
	for _, v := range vals {
		rv := reflect.ValueOf(v)
		if rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() != reflect.Uint8 {
			for i := range rv.Len() {
				if !plain(rv.Index(i).Interface()) {
					return nil
				}
				out = append(out, rv.Index(i).Interface())
			}
			continue
		}
		if !plain(v) {
			return nil
		}
		out = append(out, v)
	}
	return out
}

// plain reports whether v is a value, not SQL nor a nil pointer.
func plain(v any) bool {
	switch v.(type) {
	case nil, clause.Expression, *gorm.DB:
		return false
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
		return false
	}
	return true
}

// uniqueColumn reports whether f is unique in sch on its own: a unique
// field, or the only field of a unique index.
func (p *Plugin) uniqueColumn(sch *schema.Schema, f *schema.Field) bool {
	if f.Unique {
		return true
	}
	v, ok := p.uniques.Load(sch)
	if !ok {
		set := map[string]bool{}
		for _, idx := range sch.ParseIndexes() {
			if (idx.Class == "UNIQUE" || idx.Option == "UNIQUE") && len(idx.Fields) == 1 {
				set[idx.Fields[0].DBName] = true
			}
		}
		v, _ = p.uniques.LoadOrStore(sch, set)
	}
	return v.(map[string]bool)[f.DBName]
}

// registeredTable returns the schema of the registered model whose table
// is table, or nil.
func (p *Plugin) registeredTable(table string) *schema.Schema {
	for _, m := range *p.models.Load() {
		if sch := p.schemaOf(m); sch != nil && sch.Table == table {
			return sch
		}
	}
	return nil
}
