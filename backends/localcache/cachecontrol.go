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
}

// parseCacheControl reads every Cache-Control line of h. A malformed max-age
// counts as 0: the response is not stored.
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
				cc.maxAge, cc.hasMaxAge = seconds(value), true
			case "s-maxage":
				cc.sMaxAge, cc.hasSMaxAge = seconds(value), true
			}
		}
	}
	return cc
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
