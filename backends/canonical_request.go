package backends

import (
	"errors"
	"fmt"
)

// ObjectError reports a URL or tag of a [Request] that has no canonical
// form. Object is redacted ([RedactURL]) so that it can be logged.
type ObjectError struct {
	Kind   string // "url" or "tag"
	Object string // the refused URL or tag, redacted
	Err    error  // wraps ErrInvalidURL or ErrInvalidTag
}

func (e *ObjectError) Error() string {
	return fmt.Sprintf("%s %q refused: %v", e.Kind, e.Object, e.Err)
}

// Unwrap returns the reason.
func (e *ObjectError) Unwrap() error { return e.Err }

// CanonicalRequest returns r with every URL and tag in its canonical form
// ([CanonicalURL], [CanonicalTag]), normalised as [NewRequest] does, and
// the objects that have none as one *ObjectError each, joined. The
// returned Request holds every valid object, so a caller purges it and
// reports the error. Sinks and backends that take requests from users'
// code call it, so that each backend receives the same names for the same
// page whoever built the request.
func CanonicalRequest(r Request) (Request, error) {
	if isCanonicalList(r.URLs, CanonicalURL) && isCanonicalList(r.Tags, CanonicalTag) {
		return r, nil // the common case: a request the plugin built
	}
	var errs []error
	urls := make([]string, 0, len(r.URLs))
	for _, u := range r.URLs {
		if u == "" {
			continue
		}
		c, err := CanonicalURL(u)
		if err != nil {
			errs = append(errs, &ObjectError{Kind: "url", Object: RedactURL(u), Err: err})
			continue
		}
		urls = append(urls, c)
	}
	tags := make([]string, 0, len(r.Tags))
	for _, t := range r.Tags {
		if t == "" {
			continue
		}
		c, err := CanonicalTag(t)
		if err != nil {
			errs = append(errs, &ObjectError{Kind: "tag", Object: t, Err: err})
			continue
		}
		tags = append(tags, c)
	}
	return Request{URLs: normalise(urls), Tags: normalise(tags)}, errors.Join(errs...)
}

// isCanonicalList reports whether list is sorted, free of duplicates and
// empty strings, and made of canonical values only.
func isCanonicalList(list []string, canonical func(string) (string, error)) bool {
	for i, s := range list {
		if s == "" || i > 0 && list[i-1] >= s {
			return false
		}
		if c, err := canonical(s); err != nil || c != s {
			return false
		}
	}
	return true
}
