package localcache

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzParseCacheControl feeds the freshness parser arbitrary Cache-Control,
// Expires, Date, Pragma and Age fields (an empty string leaves the field
// out) and checks that it never panics and that what the middleware
// decides from it holds together.
// It is long because its seeds are a table and its checks one list of
// properties.
func FuzzParseCacheControl(f *testing.F) {
	f.Add("max-age=60", "", "", "", "")
	f.Add("public, s-maxage=10, max-age=100", "0", "", "no-cache", "3")
	f.Add("", "Thu, 01 Jan 2099 00:00:00 GMT", "Wed, 31 Dec 2098 23:00:00 GMT", "", "")
	f.Add("", "Sun, 06 Nov 1994 08:49:37 GMT", "", "", "")
	f.Add("", "", "", "no-cache", "")
	f.Add("no-store, max-age=600", "", "", "", "")
	f.Add(`private="Set-Cookie", max-age="30"`, "", "", "", "")
	f.Add("max-age=99999999999999999999999, MAX-AGE=5", "", "", "", "99999999999999999999")
	f.Add("max-age=+5, s-maxage=-1", "-1", "garbage", "x-foo", "abc")

	now := time.Date(2030, time.March, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, cacheControl, expires, date, pragma, age string) {
		h := http.Header{}
		for k, v := range map[string]string{"Cache-Control": cacheControl, "Expires": expires, "Date": date, "Pragma": pragma, "Age": age} {
			if v != "" {
				h.Set(k, v)
			}
		}
		cc := parseCacheControl(h, now)

		for _, lt := range []lifetime{fromHeaders, keepUntilPurged} {
			ttl, ok := cc.ttl(DefaultTTL, lt)
			switch {
			case ttl < 0:
				t.Fatalf("ttl(%v) = %v: negative", lt, ttl)
			case !ok && ttl != 0:
				t.Fatalf("ttl(%v) = %v, false: a lifetime for a response not stored", lt, ttl)
			case ok && lt == fromHeaders && ttl == 0:
				t.Fatalf("ttl(fromHeaders) = 0, true: stored until purged on a TTL route")
			case ttl > max(DefaultTTL, maxLifetime):
				t.Fatalf("ttl(%v) = %v: longer than any lifetime", lt, ttl)
			case ok && cc.hasSMaxAge && ttl > cc.sMaxAge:
				t.Fatalf("ttl(%v) = %v: longer than s-maxage %v", lt, ttl, cc.sMaxAge)
			}
			for _, d := range directives(cacheControl) {
				if ok && (d == "no-store" || d == "no-cache" || d == "private") {
					t.Fatalf("ttl(%v): stored despite %s", lt, d)
				}
			}
			if ok && cacheControl == "" && pragma != "" && containsFold(strings.Split(pragma, ","), "no-cache") {
				t.Fatalf("ttl(%v): stored despite Pragma: no-cache and no Cache-Control", lt)
			}
			if cc.hasMaxAge || cc.hasSMaxAge {
				// Expires counts only without max-age and s-maxage.
				without := h.Clone()
				without.Del("Expires")
				ttl2, ok2 := parseCacheControl(without, now).ttl(DefaultTTL, lt)
				if ttl2 != ttl || ok2 != ok {
					t.Fatalf("ttl(%v) = %v, %v with Expires, %v, %v without", lt, ttl, ok, ttl2, ok2)
				}
			}
		}

		if got := cc.browser(0); !strings.HasPrefix(got, "no-cache") {
			t.Fatalf("browser(0) = %q: want no-cache", got)
		}
		got := cc.browser(DefaultBrowserMaxAge)
		first, _, _ := strings.Cut(got, ",")
		secs, err := strconv.ParseInt(strings.TrimPrefix(first, "max-age="), 10, 64)
		if !strings.HasPrefix(first, "max-age=") || err != nil {
			t.Fatalf("browser(60s) = %q: want max-age=<seconds> first", got)
		}
		maxAge := time.Duration(secs) * time.Second
		switch {
		case maxAge < 0 || maxAge > DefaultBrowserMaxAge:
			t.Fatalf("browser(60s) = %q: outside 0 to 60 seconds", got)
		case cc.hasMaxAge && maxAge > cc.maxAge:
			t.Fatalf("browser(60s) = %q: looser than the handler's max-age %v", got, cc.maxAge)
		case !cc.hasMaxAge && cc.hasExpires && maxAge > cc.expires:
			t.Fatalf("browser(60s) = %q: looser than the handler's Expires, %v", got, cc.expires)
		}
		for _, d := range directives(got) {
			switch d {
			case "max-age", "must-revalidate", "proxy-revalidate", "no-transform":
			default:
				t.Fatalf("browser(60s) = %q: passes on %q", got, d)
			}
		}
	})
}

// directives returns the lower-case names of the directives in a
// Cache-Control value.
func directives(v string) []string {
	var names []string
	for d := range strings.SplitSeq(v, ",") {
		name, _, _ := strings.Cut(strings.TrimSpace(d), "=")
		if name = strings.ToLower(strings.TrimSpace(name)); name != "" {
			names = append(names, name)
		}
	}
	return names
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(strings.TrimSpace(v), s) {
			return true
		}
	}
	return false
}
