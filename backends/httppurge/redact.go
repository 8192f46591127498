package httppurge

import (
	"net/url"
	"strings"
)

// redacted replaces a credential in messages.
const redacted = "xxxxx"

// RedactURL returns s, a URL or a node as [WithNodes] takes it, for a
// message or a log: with the credentials it may carry replaced by "xxxxx".
// Those are the password of its user information (all of the user
// information when it has no password, since a user name alone is often a
// token), every query value (a bare query word too) and the fragment. The
// rest is kept as given, so that the reader can tell which URL it was. When
// s does not parse, or parses as an opaque URL ("user:password@host"),
// everything before its last "@" is taken for user information. The errors
// and logs of this package show URLs only this way.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	// "user:password@host" parses as the scheme "user" and an opaque rest.
	return redact(s, err != nil || strings.Contains(u.Opaque, "@"))
}

// redactNode is [RedactURL] for a node, which has no path, query or
// fragment of its own: any "@" in it ends user information, even one that
// url.Parse reads as part of the path, query or fragment (a password that
// holds "/", "?" or "#").
func redactNode(s string) string {
	return redact(s, true)
}

// redact redacts s as RedactURL says. With lastAt, user information runs
// to the last "@" in s; otherwise to the last "@" before the authority
// ends, as url.Parse reads it.
func redact(s string, lastAt bool) string {
	var b strings.Builder
	rest := s
	if i := strings.Index(s, "://"); i >= 0 && !strings.ContainsAny(s[:i], "/?#@") {
		b.WriteString(s[:i+3])
		rest = s[i+3:]
	} else if strings.HasPrefix(s, "//") {
		b.WriteString("//")
		rest = s[2:]
	} else if !lastAt {
		// No authority: a path, or an opaque URL such as "mailto:x".
		rest, q, f := splitQueryFragment(s)
		b.WriteString(rest)
		writeQueryFragment(&b, q, f)
		return b.String()
	}
	at := -1
	if lastAt {
		at = strings.LastIndex(rest, "@")
	} else {
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		at = strings.LastIndex(rest[:end], "@")
	}
	if at >= 0 {
		user, pass, hasPass := strings.Cut(rest[:at], ":")
		if hasPass && pass != "" && !strings.ContainsAny(user, "/?#") {
			b.WriteString(user)
			b.WriteString(":")
		}
		b.WriteString(redacted)
		b.WriteString("@")
		rest = rest[at+1:]
	}
	hostPath, q, f := splitQueryFragment(rest)
	b.WriteString(hostPath)
	writeQueryFragment(&b, q, f)
	return b.String()
}

// splitQueryFragment splits s at its first "?" and first "#". query and
// fragment keep the "?" and "#"; each is "" when absent.
func splitQueryFragment(s string) (rest, query, fragment string) {
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s, fragment = s[:i], s[i:]
	}
	if i := strings.IndexByte(s, '?'); i >= 0 {
		s, query = s[:i], s[i:]
	}
	return s, query, fragment
}

// writeQueryFragment writes query ("?..." or "") with every value and bare
// word redacted, then fragment ("#..." or "") redacted.
func writeQueryFragment(b *strings.Builder, query, fragment string) {
	if query != "" {
		b.WriteByte('?')
		for i, pair := range strings.Split(query[1:], "&") {
			if i > 0 {
				b.WriteByte('&')
			}
			key, value, hasValue := strings.Cut(pair, "=")
			switch {
			case !hasValue && key != "":
				b.WriteString(redacted)
			case !hasValue:
			case value == "":
				b.WriteString(key + "=")
			default:
				b.WriteString(key + "=" + redacted)
			}
		}
	}
	if fragment != "" {
		b.WriteString("#" + redacted)
	}
}
