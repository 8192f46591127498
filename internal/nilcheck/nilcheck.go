// Package nilcheck tells whether a value given to a constructor or an
// option is nil, including a typed nil: a nil pointer, map, slice, function
// or channel held in an interface, which compares unequal to nil and
// crashes only when it is first used.
package nilcheck

import "reflect"

// IsNil reports whether v is nil, or holds a nil pointer, map, slice,
// function, channel or interface, such as (*T)(nil) passed as an interface.
func IsNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface, reflect.UnsafePointer:
		return rv.IsNil()
	}
	return false
}
