package localcache

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// judge decides, from the status and headers a handler wrote, whether the
// response may be stored, for how long (0: until purged), and which request
// headers it varies on, and returns the Cache-Control it read. hdr's keys
// must be canonical (see canonicalKeys).
func (c *config) judge(status int, hdr http.Header, now time.Time) (ttl time.Duration, vary []string, cc cacheControl, ok bool) {
	if status != http.StatusOK || streamed(hdr) {
		return 0, nil, cc, false
	}
	if _, ok := hdr["Set-Cookie"]; ok {
		return 0, nil, cc, false
	}
	cc = parseCacheControl(hdr, now)
	ttl, ok = cc.ttl(c.ttl, c.lifetime)
	if !ok {
		return 0, nil, cc, false
	}
	for _, name := range splitList(hdr.Values("Vary")) {
		if name == "*" {
			return 0, nil, cc, false
		}
		vary = append(vary, http.CanonicalHeaderKey(name))
	}
	slices.Sort(vary)
	return ttl, slices.Compact(vary), cc, true
}

// streamed reports whether a response with header hdr cannot be kept whole:
// an event stream, which never ends, or one with trailers, which an entry
// does not hold.
func streamed(hdr http.Header) bool {
	if _, ok := hdr["Trailer"]; ok {
		return true
	}
	for k := range hdr {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	mt, _, _ := strings.Cut(hdr.Get("Content-Type"), ";")
	return strings.EqualFold(strings.TrimSpace(mt), "text/event-stream")
}

// canonicalKeys renames the keys of h that a handler wrote in another
// spelling than [http.CanonicalHeaderKey]'s (h["ETag"], h["set-cookie"]),
// merging their values into the canonical key's, so that the middleware
// finds them, and adds no second Cache-Control or ETag of its own.
func canonicalKeys(h http.Header) {
	for k, vs := range h {
		if ck := http.CanonicalHeaderKey(k); ck != k {
			delete(h, k)
			h[ck] = append(h[ck], vs...)
		}
	}
}

// unstoredHeaders are dropped from stored entries: hop-by-hop headers, and
// those replay sets itself.
var unstoredHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Content-Length", "Date", "Age", XCache,
}
