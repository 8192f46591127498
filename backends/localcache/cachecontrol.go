package localcache

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxLifetime bounds every lifetime the middleware reads from a response.
const maxLifetime = 365 * 24 * time.Hour

// cacheControl holds what the middleware reads from a response's
// Cache-Control, Expires, Date, Pragma and Age fields.
type cacheControl struct {
	noStore, noCache, private bool
	maxAge, sMaxAge           time.Duration
	hasMaxAge, hasSMaxAge     bool

	// expires is the lifetime Expires gives (Expires minus Date, or minus
	// now without a valid Date; 0 when already expired or invalid), used
	// only without max-age and s-maxage (RFC 9111, section 4.2.1).
	expires    time.Duration
	hasExpires bool

	// age is the response's Age: how old it already is.
	age time.Duration

	// Passed on to clients when [WithBrowserMaxAge] replaces the rest.
	mustRevalidate, proxyRevalidate, noTransform bool
}

// parseCacheControl reads the freshness fields of h, as a shared cache
// does (RFC 9111) at time now:
//
//   - every Cache-Control line; a malformed max-age or s-maxage counts as
//     0, and the smallest of repeated ones wins;
//   - Expires, an invalid one (such as "0") meaning already expired;
//   - Date, from which Expires counts (now when absent or invalid);
//   - Pragma: no-cache, which counts as Cache-Control: no-cache only when
//     the response has no Cache-Control field;
//   - Age, which the lifetimes are reduced by.
func parseCacheControl(h http.Header, now time.Time) cacheControl {
	var cc cacheControl
	lines := h.Values("Cache-Control")
	for _, line := range lines {
		for d := range strings.SplitSeq(line, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
			value = strings.Trim(strings.TrimSpace(value), `"`)
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store":
				cc.noStore = true
			case "no-cache":
				cc.noCache = true
			case "private":
				cc.private = true
			case "max-age":
				cc.maxAge, cc.hasMaxAge = smallest(cc.maxAge, cc.hasMaxAge, seconds(value)), true
			case "s-maxage":
				cc.sMaxAge, cc.hasSMaxAge = smallest(cc.sMaxAge, cc.hasSMaxAge, seconds(value)), true
			case "must-revalidate":
				cc.mustRevalidate = true
			case "proxy-revalidate":
				cc.proxyRevalidate = true
			case "no-transform":
				cc.noTransform = true
			}
		}
	}
	if _, ok := h["Cache-Control"]; !ok && pragmaNoCache(h.Values("Pragma")) {
		cc.noCache = true
	}
	if vs, ok := h["Expires"]; ok {
		cc.hasExpires = true
		cc.expires = expiresLifetime(vs, h.Values("Date"), now)
	}
	if vs := h.Values("Age"); len(vs) > 0 {
		if age, ok := deltaSeconds(strings.TrimSpace(vs[0])); ok {
			cc.age = age
		}
	}
	return cc
}

// pragmaNoCache reports whether Pragma field values list no-cache.
func pragmaNoCache(values []string) bool {
	for _, v := range values {
		for d := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d), "no-cache") {
				return true
			}
		}
	}
	return false
}

// expiresLifetime returns the lifetime that Expires field values give: the
// Expires date minus the Date field's, or minus now when Date is absent or
// invalid. An invalid Expires (such as "0"), or several that disagree,
// mean already expired: 0.
func expiresLifetime(expires, date []string, now time.Time) time.Duration {
	if len(expires) == 0 {
		return 0
	}
	for _, v := range expires[1:] {
		if v != expires[0] {
			return 0
		}
	}
	exp, err := http.ParseTime(strings.TrimSpace(expires[0]))
	if err != nil {
		return 0
	}
	if len(date) > 0 {
		if d, err := http.ParseTime(strings.TrimSpace(date[0])); err == nil {
			now = d
		}
	}
	d := exp.Sub(now) // saturates on overflow
	return min(max(d, 0), maxLifetime)
}

// smallest returns d, or old when there was one (has) and it is smaller.
func smallest(old time.Duration, has bool, d time.Duration) time.Duration {
	if has {
		return min(old, d)
	}
	return d
}

// seconds reads a max-age or s-maxage value: a malformed one counts as 0.
func seconds(v string) time.Duration {
	d, _ := deltaSeconds(v)
	return d
}

// deltaSeconds reads delta-seconds (RFC 9111, section 1.2.2): one or more
// digits. A value too large to represent counts as the largest lifetime the
// middleware keeps anything for, as the RFC asks, not as malformed.
func deltaSeconds(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	var n int64
	for _, c := range []byte(v) {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n <= int64(maxLifetime/time.Second) {
			n = n*10 + int64(c-'0')
		}
	}
	return min(time.Duration(n)*time.Second, maxLifetime), true
}

// lifetime says what bounds how long the middleware keeps a page whose
// response sets no s-maxage.
type lifetime int

const (
	// fromHeaders: max-age, else Expires, else the default TTL.
	fromHeaders lifetime = iota
	// keepUntilPurged: nothing; the page stays until a purge removes it
	// ([WithUntilPurged]).
	keepUntilPurged
)

// String returns the constant's name, for test failures.
func (l lifetime) String() string {
	if l == keepUntilPurged {
		return "keepUntilPurged"
	}
	return "fromHeaders"
}

// ttl returns how long a shared cache may keep the response, and false when
// it must not store it at all. def is the lifetime when the response names
// none. With keepUntilPurged, only s-maxage bounds the lifetime and the
// result is 0, meaning until purged, when the response sets no s-maxage:
// max-age and Expires are left to browsers. Otherwise the lifetime is the
// first of s-maxage, max-age, Expires and def that the response has, less
// its Age. The result is never negative.
func (cc cacheControl) ttl(def time.Duration, lt lifetime) (time.Duration, bool) {
	if cc.noStore || cc.noCache || cc.private {
		return 0, false
	}
	var d time.Duration
	switch {
	case cc.hasSMaxAge:
		d = cc.sMaxAge
	case lt == keepUntilPurged:
		return 0, true
	case cc.hasMaxAge:
		d = cc.maxAge
	case cc.hasExpires:
		d = cc.expires
	default:
		d = def
	}
	d -= cc.age
	if d <= 0 {
		return 0, false
	}
	return d, true
}

// browser returns the Cache-Control clients receive, in place of the
// handler's, for a response the middleware may store: max-age is the
// smaller of lifetime and what the handler gave browsers (its max-age, or
// without one its Expires, less its Age), or no-cache when lifetime is 0;
// must-revalidate, proxy-revalidate and no-transform are kept when the
// handler set them. Every other directive is dropped: s-maxage, which is
// the server's; public, which only matters for requests the middleware
// never answers; and those that would let clients keep the page longer,
// such as immutable or stale-while-revalidate.
func (cc cacheControl) browser(lifetime time.Duration) string {
	b := make([]byte, 0, 64)
	if lifetime == 0 {
		b = append(b, "no-cache"...)
	} else {
		switch {
		case cc.hasMaxAge:
			lifetime = min(lifetime, max(cc.maxAge-cc.age, 0))
		case cc.hasExpires:
			lifetime = min(lifetime, max(cc.expires-cc.age, 0))
		}
		b = append(b, "max-age="...)
		b = strconv.AppendInt(b, int64(lifetime/time.Second), 10)
	}
	if cc.mustRevalidate {
		b = append(b, ", must-revalidate"...)
	}
	if cc.proxyRevalidate {
		b = append(b, ", proxy-revalidate"...)
	}
	if cc.noTransform {
		b = append(b, ", no-transform"...)
	}
	return string(b)
}
