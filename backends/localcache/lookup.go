package localcache

import (
	"context"
	"net/http"
	"slices"
)

// baseKey returns the key of r's page before Vary, or "" when a WithKeyFunc
// says not to cache r. The prefix of WithKeyFunc keys keeps them apart from
// default keys, which begin with the scheme.
func (h *handler) baseKey(r *http.Request) string {
	if h.cfg.keyFunc == nil {
		return pageOf(r).key()
	}
	k := h.cfg.keyFunc(r)
	if k == "" {
		return ""
	}
	return keyFuncPrefix + k
}

// personal reports whether r carries credentials or a session, so that the
// cache must neither answer nor store it.
func (h *handler) personal(r *http.Request) bool {
	if _, ok := r.Header["Authorization"]; ok {
		return true
	}
	if h.cfg.sessionCookies == nil {
		return r.Header.Get("Cookie") != ""
	}
	for _, c := range r.Cookies() {
		if slices.Contains(h.cfg.sessionCookies, c.Name) {
			return true
		}
	}
	return false
}

// lookup returns the entry for r, following a Vary record, and the key a
// miss should fill.
func (h *handler) lookup(ctx context.Context, base string, r *http.Request) (string, *Entry) {
	e, ok, err := h.store.Get(ctx, base)
	if err != nil {
		h.storeErrs.report(ctx, h.cfg.logger, "get", base, err)
		return base, nil
	}
	if !ok {
		return base, nil
	}
	if !e.VaryRecord {
		return base, e
	}
	key := variantKey(base, e.Vary, r, reducedEncoding)
	if v := h.variant(ctx, key); v != nil || !slices.Contains(e.Vary, "Accept-Encoding") {
		return key, v
	}
	// A variant in an encoding kept for one Accept-Encoding value.
	return key, h.variant(ctx, variantKey(base, e.Vary, r, exactEncoding))
}

// variant returns the variant stored under key, or nil.
func (h *handler) variant(ctx context.Context, key string) *Entry {
	e, ok, err := h.store.Get(ctx, key)
	if err != nil {
		h.storeErrs.report(ctx, h.cfg.logger, "get", key, err)
		return nil
	}
	if !ok || e.VaryRecord {
		return nil
	}
	return e
}
