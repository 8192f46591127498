package gormpurge

import (
	"context"
	"fmt"
	"reflect"

	"gorm.io/gorm"
	"gorm.io/gorm/schema"

	"github.com/gormpurge/gormpurge/backends"
)

// acc accumulates normalised targets.
type acc struct {
	urls, tags []string
	// sch is the schema of the statement that read or wrote the rows,
	// whose table read tags name: nil for the model's first seen.
	sch *schema.Schema
}

func (a *acc) merge(b acc) {
	a.urls = append(a.urls, b.urls...)
	a.tags = append(a.tags, b.tags...)
	if a.sch == nil {
		a.sch = b.sch
	}
}

// rowsTargets returns the normalised targets of every row of model m in rv:
// a struct, a pointer, or a slice or array of either.
func (p *Plugin) rowsTargets(stmt *gorm.Statement, m *modelInfo) acc {
	ctx := stmt.Context
	out := acc{sch: stmt.Schema}
	eachRow(stmt.ReflectValue, m.typ, func(row reflect.Value) {
		p.targets(ctx, m, row, &out)
	}, func(kind reflect.Kind) {
		p.report(ctx, &ModelError{Model: m.name, Op: "read written rows", Err: fmt.Errorf("cannot work out targets from a %s value: write models as structs, not maps", kind)})
	})
	return out
}

// eachRow calls fn for every struct of type typ in rv.
func eachRow(rv reflect.Value, typ reflect.Type, fn func(reflect.Value), unsupported func(reflect.Kind)) {
	rv = reflect.Indirect(rv)
	switch rv.Kind() {
	case reflect.Struct:
		if rv.Type() == typ {
			fn(rv)
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < rv.Len(); i++ {
			e := rv.Index(i)
			for e.Kind() == reflect.Pointer || e.Kind() == reflect.Interface {
				if e.IsNil() {
					break
				}
				e = e.Elem()
			}
			if e.Kind() == reflect.Struct && e.Type() == typ {
				fn(e)
			} else if e.Kind() == reflect.Map && unsupported != nil {
				unsupported(e.Kind())
				return
			}
		}
	case reflect.Map:
		if unsupported != nil {
			unsupported(rv.Kind())
		}
	}
}

// targets calls m's methods on one row, validates what they return and
// appends it to out. Rejected values are reported and left out.
func (p *Plugin) targets(ctx context.Context, m *modelInfo, row reflect.Value, out *acc) {
	for _, err := range p.rowTargets(m, row, out) {
		p.report(ctx, err)
	}
}

// rowTargets is targets without the reporting: it returns a *ModelError or
// *TargetError for each value it left out.
func (p *Plugin) rowTargets(m *modelInfo, row reflect.Value, out *acc) []error {
	t, err := m.targetsOf(row)
	if err != nil {
		return []error{&ModelError{Model: m.name, Op: "call URL and tag methods", Err: err}}
	}
	if p.cfg.readTags {
		sch := out.sch
		if sch == nil || sch.ModelType != m.typ {
			sch = p.schemaOf(m)
		}
		p.readTagsOf(context.Background(), sch, row, out)
	}
	var errs []error
	for _, u := range t.URLs {
		if u == "" {
			continue
		}
		if err := p.addURL(m.name, u, out); err != nil {
			errs = append(errs, err)
		}
	}
	for _, g := range t.Tags {
		if g == "" {
			continue
		}
		if err := addTag(m.name, g, out); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// addURL normalises u and appends it to out, or returns a *TargetError
// naming model (which may be empty) and u.
func (p *Plugin) addURL(model, u string, out *acc) error {
	n, err := p.urls.normalizeURL(u)
	if err != nil {
		return &TargetError{Model: model, Kind: "url", Value: backends.RedactURL(u), Err: err}
	}
	out.urls = append(out.urls, n)
	return nil
}

// addTag normalises g and appends it to out, or returns a *TargetError.
func addTag(model, g string, out *acc) error {
	n, err := normalizeTag(g)
	if err != nil {
		return &TargetError{Model: model, Kind: "tag", Value: g, Err: err}
	}
	out.tags = append(out.tags, n)
	return nil
}
