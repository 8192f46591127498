package gormpurge

import (
	"fmt"
	"maps"
	"reflect"
	"runtime/debug"
	"sync/atomic"

	"gorm.io/gorm/schema"
)

// Targets is what one row says to purge: URLs (absolute http(s) URLs or
// site-relative paths) and cache tags. It is what a function given to
// [TargetsOf] returns.
type Targets struct {
	URLs []string
	Tags []string
}

// Registration is a model registered with a function instead of methods; make
// one with [TargetsOf] and pass it to [Plugin.Register].
type Registration struct {
	typ reflect.Type
	fn  func(ptr any) Targets
}

// TargetsOf registers T with fn, which returns the URLs and tags a row of T
// yields. Use it for models you cannot add methods to, such as types from
// another package:
//
//	p.Register(gormpurge.TargetsOf(func(u *auth.User) gormpurge.Targets {
//		return gormpurge.Targets{URLs: []string{"/users/" + u.Name}}
//	}))
//
// fn is called with a pointer to the row (old or new state) and must not
// keep it. A function registration replaces T's interface methods, if any.
func TargetsOf[T any](fn func(*T) Targets) Registration {
	return Registration{
		typ: reflect.TypeFor[T](),
		fn: func(ptr any) Targets {
			if fn == nil {
				return Targets{}
			}
			return fn(ptr.(*T))
		},
	}
}

// modelInfo is what the plugin knows about one registered model type.
type modelInfo struct {
	typ  reflect.Type
	name string // Go type name for errors and logs, such as "blog.Post"
	fn   func(ptr any) Targets
	// schema is the model's, once a statement showed it: read tags name
	// its table and primary key.
	schema atomic.Pointer[schema.Schema]
}

var (
	absoluteURLerType   = reflect.TypeFor[AbsoluteURLer]()
	purgeURLerType      = reflect.TypeFor[PurgeURLer]()
	dependentPatherType = reflect.TypeFor[DependentPather]()
	purgeTaggerType     = reflect.TypeFor[PurgeTagger]()
)

// Register tells the plugin to watch models. Each argument is a pointer to a
// struct whose pointer type implements at least one of [AbsoluteURLer],
// [PurgeURLer], [DependentPather] and [PurgeTagger] (any struct, with
// [WithReadTags]), or a [Registration] made with [TargetsOf]. Writes to models that are not registered are not
// looked at and cost one map lookup.
//
// Register may be called before or after db.Use, from any goroutine.
// Registering a type again replaces its earlier registration. If any argument
// is invalid, nothing is registered and the error names it.
func (p *Plugin) Register(models ...any) error {
	infos := make([]*modelInfo, 0, len(models))
	for i, m := range models {
		info, err := newModelInfo(m, p.cfg.readTags)
		if err != nil {
			return fmt.Errorf("%w: argument %d: %w", ErrNotRegistrable, i, err)
		}
		infos = append(infos, info)
	}
	p.regMu.Lock()
	defer p.regMu.Unlock()
	next := maps.Clone(*p.models.Load())
	for _, info := range infos {
		next[info.typ] = info
	}
	p.models.Store(&next)
	p.schemas.Clear() // cached join tables were worked out from the old registry
	return nil
}

func newModelInfo(m any, readTags bool) (*modelInfo, error) {
	if r, ok := m.(Registration); ok {
		if r.typ == nil || r.fn == nil {
			return nil, fmt.Errorf("zero Registration: make one with gormpurge.TargetsOf")
		}
		if r.typ.Kind() != reflect.Struct {
			return nil, fmt.Errorf("TargetsOf[%s]: the type argument must be a struct type", r.typ)
		}
		return &modelInfo{typ: r.typ, name: r.typ.String(), fn: r.fn}, nil
	}
	t := reflect.TypeOf(m)
	if t == nil {
		return nil, fmt.Errorf("nil is not a model: pass a pointer to a struct, such as &Post{}")
	}
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("%s is not a pointer to a struct: pass &%s{} or use gormpurge.TargetsOf", t, typeName(t))
	}
	var (
		hasAbs  = t.Implements(absoluteURLerType)
		hasURLs = t.Implements(purgeURLerType)
		hasDeps = t.Implements(dependentPatherType)
		hasTags = t.Implements(purgeTaggerType)
	)
	if !hasAbs && !hasURLs && !hasDeps && !hasTags && !readTags {
		return nil, fmt.Errorf("%s implements none of AbsoluteURL, PurgeURLs, DependentPaths or PurgeTags: add one of these methods or register it with gormpurge.TargetsOf", t)
	}
	fn := func(ptr any) (t Targets) {
		if hasAbs {
			t.URLs = append(t.URLs, ptr.(AbsoluteURLer).AbsoluteURL())
		}
		if hasURLs {
			t.URLs = append(t.URLs, ptr.(PurgeURLer).PurgeURLs()...)
		}
		if hasDeps {
			t.URLs = append(t.URLs, ptr.(DependentPather).DependentPaths()...)
		}
		if hasTags {
			t.Tags = ptr.(PurgeTagger).PurgeTags()
		}
		return t
	}
	return &modelInfo{typ: t.Elem(), name: t.Elem().String(), fn: fn}, nil
}

func typeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.String()
}

// targetsOf calls the model's methods or function on one row. row is a
// struct value of the model's type; it is read and never kept. A panic in
// user code is turned into an error.
func (m *modelInfo) targetsOf(row reflect.Value) (t Targets, err error) {
	var ptr any
	if row.CanAddr() {
		ptr = row.Addr().Interface()
	} else {
		c := reflect.New(m.typ)
		c.Elem().Set(row)
		ptr = c.Interface()
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in URL or tag method: %v\n%s", r, debug.Stack())
		}
	}()
	return m.fn(ptr), nil
}
