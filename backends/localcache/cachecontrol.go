package localcache

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// cacheControl holds the response directives the middleware honours.
type cacheControl struct {
	noStore, noCache, private bool
	maxAge, sMaxAge           time.Duration
	hasMaxAge, hasSMaxAge     bool

	// Passed on to clients when [BrowserMaxAge] replaces the rest.
	mustRevalidate, proxyRevalidate, noTransform bool
}

// parseCacheControl reads every Cache-Control line of h. A malformed max-age
// or s-maxage counts as 0, and the smallest of repeated ones wins.
func parseCacheControl(h http.Header) cacheControl {
	var cc cacheControl
	for _, line := range h.Values("Cache-Control") {
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
	return cc
}

// smallest returns d, or old when there was one (has) and it is smaller.
func smallest(old time.Duration, has bool, d time.Duration) time.Duration {
	if has {
		return min(old, d)
	}
	return d
}

func seconds(v string) time.Duration {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	if n > int64(365*24*time.Hour/time.Second) {
		n = int64(365 * 24 * time.Hour / time.Second)
	}
	return time.Duration(n) * time.Second
}

// ttl returns how long a shared cache may keep the response, and false when
// it must not store it at all. def is the lifetime when the response names
// none. With untilPurged, only s-maxage bounds the lifetime and the result
// is 0, meaning until purged, when the response sets no s-maxage: max-age
// is left to browsers.
func (cc cacheControl) ttl(def time.Duration, untilPurged bool) (time.Duration, bool) {
	if cc.noStore || cc.noCache || cc.private {
		return 0, false
	}
	if untilPurged {
		if cc.hasSMaxAge {
			return cc.sMaxAge, cc.sMaxAge > 0
		}
		return 0, true
	}
	d := def
	switch {
	case cc.hasSMaxAge:
		d = cc.sMaxAge
	case cc.hasMaxAge:
		d = cc.maxAge
	}
	return d, d > 0
}

// browser returns the Cache-Control clients receive, in place of the
// handler's, for a response the middleware may store: max-age is the
// smaller of the handler's max-age, when it set one, and lifetime, or
// no-cache when lifetime is 0; must-revalidate, proxy-revalidate and
// no-transform are kept when the handler set them. Every other directive
// is dropped: s-maxage, which is the server's; public, which only matters
// for requests the middleware never answers; and those that would let
// clients keep the page longer, such as immutable or
// stale-while-revalidate.
func (cc cacheControl) browser(lifetime time.Duration) string {
	b := make([]byte, 0, 64)
	if lifetime == 0 {
		b = append(b, "no-cache"...)
	} else {
		if cc.hasMaxAge {
			lifetime = min(lifetime, cc.maxAge)
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
