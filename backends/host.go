package backends

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// CanonicalHost returns the canonical form of a URL's host and optional
// port, as [CanonicalURL] writes it for scheme ("http" or "https"):
// lower-case, punycode for an internationalised name, no trailing dot, no
// default port. An IPv6 literal keeps its brackets. Errors wrap
// [ErrInvalidURL] and do not quote hostport.
func CanonicalHost(scheme, hostport string) (string, error) {
	name, port := hostport, ""
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", fmt.Errorf("%w: host: unclosed IPv6 literal", ErrInvalidURL)
		}
		name, port = hostport[:end+1], hostport[end+1:]
		if port != "" && port[0] != ':' {
			return "", fmt.Errorf("%w: host: text after the IPv6 literal", ErrInvalidURL)
		}
		addr, err := netip.ParseAddr(name[1 : len(name)-1])
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return "", fmt.Errorf("%w: host: not an IPv6 address", ErrInvalidURL)
		}
		name = "[" + addr.String() + "]"
	} else {
		if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
			name, port = hostport[:i], hostport[i:]
		}
		var err error
		if name, err = canonicalHostName(name); err != nil {
			return "", err
		}
	}
	if port != "" {
		digits := port[1:]
		if digits == "" { // "host:" is "host"
			port = ""
		} else {
			n, err := strconv.Atoi(digits)
			if err != nil || n < 1 || n > 65535 || strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
				return "", fmt.Errorf("%w: port: not a number from 1 to 65535", ErrInvalidURL)
			}
			port = ":" + strconv.Itoa(n)
			if scheme == "http" && n == 80 || scheme == "https" && n == 443 {
				port = ""
			}
		}
	}
	return name + port, nil
}

// canonicalHostName lower-cases a host name, converts an internationalised
// one to punycode and drops a trailing dot. An ASCII name is only checked
// for characters that cannot be in a host: IDNA's stricter rules would
// refuse real names such as "my_host".
func canonicalHostName(name string) (string, error) {
	name = strings.TrimSuffix(name, ".")
	if name == "" {
		return "", fmt.Errorf("%w: no host", ErrInvalidURL)
	}
	if !isASCII(name) {
		a, err := idna.Lookup.ToASCII(name)
		if err != nil {
			return "", fmt.Errorf("%w: host: not a valid internationalised name", ErrInvalidURL)
		}
		name = strings.TrimSuffix(a, ".")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(isAlnum(c) || c == '-' || c == '.' || c == '_') {
			return "", fmt.Errorf("%w: host: character %q is not allowed", ErrInvalidURL, c)
		}
	}
	if name == "" || name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, "..") {
		return "", fmt.Errorf("%w: host: an empty label", ErrInvalidURL)
	}
	return strings.ToLower(name), nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
