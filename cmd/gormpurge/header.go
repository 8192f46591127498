package main

import "strings"

// parseHeader parses a --header value, "Name: value". Its errors never
// show the value, which may be a token.
func parseHeader(h string) (name, value string, err error) {
	name, value, ok := strings.Cut(h, ":")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	switch {
	case !ok && validHeaderName(name):
		return "", "", usageErrorf("--header %s: no colon; want 'Name: value'", name)
	case !ok || name == "":
		return "", "", usageErrorf("--header: want 'Name: value' (value not shown)")
	case !validHeaderName(name):
		return "", "", usageErrorf("--header: %q is not a valid header name; want 'Name: value'", name)
	case strings.ContainsFunc(value, func(r rune) bool { return r != '\t' && (r < ' ' || r == 0x7f) }):
		return "", "", usageErrorf("--header %s: the value holds a control character (value not shown)", name)
	}
	return name, value, nil
}

// validHeaderName reports whether s is an HTTP token, as header names are.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r >= 0x7f || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}
