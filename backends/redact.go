package backends

import "strings"

// RedactURL returns s with anything that may be a secret replaced by
// "REDACTED": the user information of a URL (a user name, which may be a
// token, and a password) and the value of every query parameter; the
// fragment is dropped. It works on strings that do not parse as URLs, and
// errs on the side of hiding more, so that an error or a log line about a
// malformed URL never quotes a credential. Use it wherever a URL that came
// from configuration or from a model reaches an error, a log line or a
// panic message.
func RedactURL(s string) string {
	// User information ends at the last "@": a careless password may hold
	// "/", "?" or "#", so the "@" is looked for before anything is cut.
	start := -1 // where user information could begin
	if i := strings.Index(s, "//"); i >= 0 {
		start = i + 2
	} else if !strings.HasPrefix(s, "/") {
		start = 0 // "user:password@host" without a scheme
	}
	if start >= 0 {
		if at := strings.LastIndexByte(s[start:], '@'); at >= 0 {
			s = s[:start] + "REDACTED" + s[start+at:]
		}
	}
	head, query, hasQuery := strings.Cut(s, "?")
	if i := strings.IndexByte(head, '#'); i >= 0 {
		head, query, hasQuery = head[:i], "", false
	}
	if !hasQuery {
		return head
	}
	query, _, _ = strings.Cut(query, "#")
	if query == "" {
		return head + "?"
	}
	parts := strings.Split(query, "&")
	for i, p := range parts {
		if name, _, ok := strings.Cut(p, "="); ok {
			parts[i] = name + "=REDACTED"
		} else if p != "" {
			parts[i] = "REDACTED"
		}
	}
	return head + "?" + strings.Join(parts, "&")
}

// redactScheme keeps an error about an unsupported scheme from quoting a
// credential when the value was "user:password@host" without a scheme.
func redactScheme(s string) string {
	if len(s) > 16 || strings.ContainsAny(s, "@:/") {
		return "…"
	}
	return s
}
