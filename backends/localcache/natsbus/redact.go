package natsbus

import (
	"net/url"
	"strings"

	"github.com/gormpurge/gormpurge/backends"
)

// RedactServers returns servers, a NATS server list as nats.Connect takes
// it (one URL, or several separated by commas, such as
// "nats://u:p@h1:4222,nats://u:p@h2:4222"), with the user information of
// every URL replaced by "REDACTED" as [backends.RedactURL] does: the
// password, and the user name too, since a NATS token travels as the user
// ("nats://TOKEN@host"). Query values are redacted as well. An element that
// does not parse as a URL loses everything before its last "@". Use it
// wherever a NATS server list from configuration reaches a log line or an
// error; the list itself is kept readable (hosts, ports, order).
func RedactServers(servers string) string {
	parts := strings.Split(servers, ",")
	for i, p := range parts {
		parts[i] = redactServer(p)
	}
	return strings.Join(parts, ",")
}

// redactServer redacts one element of a server list, keeping the white
// space around it.
func redactServer(s string) string {
	trimmed := strings.TrimSpace(s)
	if trimmed == "" {
		return s
	}
	lead := s[:strings.Index(s, trimmed)]
	trail := s[len(lead)+len(trimmed):]
	if _, err := url.Parse(trimmed); err != nil {
		if at := strings.LastIndexByte(trimmed, '@'); at >= 0 {
			trimmed = "REDACTED" + trimmed[at:]
		}
	}
	return lead + backends.RedactURL(trimmed) + trail
}
