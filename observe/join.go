package observe

import (
	"cmp"
	"context"
	"reflect"
)

// Join returns an Observer that passes everything to each of obs, in
// order: for example OpenTelemetry spans and a Prometheus collector. Nil
// observers, and nil pointers of a type that implements Observer, are
// skipped; with one left, Join returns it. The traceparent of a handoff is
// the first non-empty one. A panic in one observer does not keep the others
// from being called, nor the spans they started from being ended: it is
// raised again once they all were (for a start, by the function that ends
// it), for the component to log.
func Join(obs ...Observer) Observer {
	var list multi
	for _, o := range obs {
		if !isNil(o) {
			list = append(list, o)
		}
	}
	switch len(list) {
	case 0:
		return Nop{}
	case 1:
		return list[0]
	}
	return list
}

// isNil reports whether o is nil or holds a nil pointer, map, func or
// channel.
func isNil(o Observer) bool {
	if o == nil {
		return true
	}
	switch v := reflect.ValueOf(o); v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Chan, reflect.Interface, reflect.Slice:
		return v.IsNil()
	}
	return false
}

type multi []Observer

// each calls fn with each observer, recovering a panic in any, and
// returns the first panic's value once all were called.
func (m multi) each(fn func(i int, o Observer)) (panicked any) {
	for i, o := range m {
		func() {
			defer func() {
				if v := recover(); v != nil && panicked == nil {
					panicked = v
				}
			}()
			fn(i, o)
		}()
	}
	return panicked
}

// must raises v again, a panic each recovered, if there was one.
func must(v any) {
	if v != nil {
		panic(v)
	}
}

func (m multi) Watch(s Source) func() {
	stops := make([]func(), len(m))
	defer must(m.each(func(i int, o Observer) { stops[i] = o.Watch(s) }))
	return func() {
		must(m.each(func(i int, _ Observer) {
			if stops[i] != nil {
				stops[i]()
			}
		}))
	}
}

func (m multi) StartHandoff(ctx context.Context, h Handoff) (context.Context, string, func(HandoffEnd)) {
	ends := make([]func(HandoffEnd), len(m))
	var parent string
	started := m.each(func(i int, o Observer) {
		c, tp, end := o.StartHandoff(ctx, h)
		if c != nil {
			ctx = c
		}
		if parent == "" {
			parent = tp
		}
		ends[i] = end
	})
	return ctx, parent, func(e HandoffEnd) {
		ended := m.reversed(func(i int) {
			if ends[i] != nil {
				ends[i](e)
			}
		})
		must(cmp.Or(started, ended))
	}
}

func (m multi) StartAttempt(ctx context.Context, a Attempt) (context.Context, func(AttemptEnd)) {
	ends := make([]func(AttemptEnd), len(m))
	started := m.each(func(i int, o Observer) {
		c, end := o.StartAttempt(ctx, a)
		if c != nil {
			ctx = c
		}
		ends[i] = end
	})
	return ctx, func(e AttemptEnd) {
		ended := m.reversed(func(i int) {
			if ends[i] != nil {
				ends[i](e)
			}
		})
		must(cmp.Or(started, ended))
	}
}

// reversed calls fn with each index, last first, as each calls observers.
func (m multi) reversed(fn func(i int)) any {
	n := len(m)
	return m.each(func(i int, _ Observer) { fn(n - 1 - i) })
}

func (m multi) Settled(s Settled) {
	must(m.each(func(_ int, o Observer) { o.Settled(s) }))
}
