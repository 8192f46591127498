package gormpurge

import (
	"reflect"
	"slices"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
	"gorm.io/gorm/utils"
)

// Associations reach the plugin as ordinary statements: Append, Replace and
// association saves nested in Create/Save create or upsert the related rows
// (the create callbacks see them), has-many Replace/Delete/Clear unlink
// children with an update by condition (the update callbacks read the old and
// new rows), and Select("Rel").Delete deletes children by condition. What is
// left is the join table of a many-to-many relation: GORM writes it with a
// struct type of its own making, which nobody can register. The plugin
// recognises such a table by its two belongs-to relations and purges the
// registered rows on either side of every link added or removed.

// joinInfo describes a join table between registered models.
type joinInfo struct {
	sides []joinSide
}

// joinSide is one registered side of a join table.
type joinSide struct {
	model *modelInfo
	table string          // the side's table
	fks   []*schema.Field // the join table's columns that point at the side
	refs  []string        // the side's columns they point at
}

// joinOf returns what s joins, or nil when s is not a join table with a
// registered side. Results are cached per schema until the next Register.
func (p *Plugin) joinOf(s *schema.Schema) *joinInfo {
	registry := p.models.Load()
	if v, ok := p.schemas.Load(s); ok {
		if c := v.(joinCache); c.registry == registry {
			return c.join
		}
	}
	models := *registry
	var j *joinInfo
	names := make([]string, 0, len(s.Relationships.Relations))
	for name := range s.Relationships.Relations {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		rel := s.Relationships.Relations[name]
		if rel.Type != schema.BelongsTo || rel.FieldSchema == nil || len(rel.References) == 0 {
			continue
		}
		m := models[rel.FieldSchema.ModelType]
		if m == nil {
			continue
		}
		side := joinSide{model: m, table: rel.FieldSchema.Table}
		for _, ref := range rel.References {
			side.fks = append(side.fks, ref.ForeignKey)
			side.refs = append(side.refs, ref.PrimaryKey.DBName)
		}
		if j == nil {
			j = &joinInfo{}
		}
		j.sides = append(j.sides, side)
	}
	p.schemas.Store(s, joinCache{registry: registry, join: j})
	return j
}

// joinCache is what joinOf keeps per schema: the answer, and the registry it
// was worked out from, so that a Register racing with it cannot leave a stale
// answer behind.
type joinCache struct {
	registry *map[reflect.Type]*modelInfo
	join     *joinInfo
}

// joinTargets returns the targets of the registered rows that the join rows
// in rv link.
func (p *Plugin) joinTargets(db *gorm.DB, j *joinInfo, rv reflect.Value) acc {
	var out acc
	ctx := db.Statement.Context
	typ := db.Statement.Schema.ModelType
	for _, side := range j.sides {
		var keys [][]any
		seen := map[string]bool{}
		eachRow(rv, typ, func(row reflect.Value) {
			key := make([]any, 0, len(side.fks))
			for _, f := range side.fks {
				v, zero := f.ValueOf(ctx, row)
				if zero {
					return
				}
				key = append(key, v)
			}
			if k := utils.ToStringKey(key...); !seen[k] {
				seen[k] = true
				keys = append(keys, key)
			}
		}, nil)
		if len(keys) > 0 {
			out.merge(p.rowsByKey(db, side.model, side.table, side.refs, keys, "query rows linked by "+db.Statement.Table))
		}
	}
	return out
}

// joinRowsTargets reads the join rows a delete will remove and returns the
// targets of the registered rows they link.
func (p *Plugin) joinRowsTargets(db *gorm.DB, j *joinInfo, conds []clause.Expression) acc {
	stmt := db.Statement
	dest := reflect.New(reflect.SliceOf(stmt.Schema.ModelType))
	q := lookup(db, dest.Interface(), stmtTable)
	if len(conds) > 0 {
		q = q.Where(clause.Where{Exprs: conds})
	}
	if err := guarded(db, func() error { return q.Find(dest.Interface()).Error }); err != nil {
		p.report(stmt.Context, &ModelError{Model: stmt.Table, Op: "query links to delete", Err: err})
	}
	return p.joinTargets(db, j, dest.Elem())
}
