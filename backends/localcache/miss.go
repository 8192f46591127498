package localcache

import (
	"bytes"
	"context"
	"net/http"
)

// miss renders the page with the next handler and stores it if it may be
// shared. While the response may still be stored, it is kept in a buffer,
// and reaches w only once the handler has returned, release has been
// called with what the waiting requests may share, and the entry is
// known; as soon as it may not be stored (its status or headers say so,
// it grows past WithMaxEntryBytes, or the handler flushes or hijacks), release
// is called with nil and the response streams through to w. release may
// be nil.
//
// A response is stored only when the handler returned normally, the
// request's context was not done by then, the body has the length its
// Content-Length declares, writing it to w succeeded and no purge ran
// since gen, the store's generation read before the render (genErr when
// reading it failed), began.
func (h *handler) miss(w http.ResponseWriter, r *http.Request, base string, gen uint64, genErr error, release func(*fill)) {
	if release == nil {
		release = func(*fill) {}
	}
	// Stores outlive the request: a client that leaves must not stop Set.
	ctx := context.WithoutCancel(r.Context())
	w.Header().Set(XCache, "MISS")
	rec := &recorder{ResponseWriter: w, cfg: h.cfg, max: h.cfg.maxEntryBytes, release: release}
	added := &addedTags{}
	r = r.WithContext(withAddedTags(r.Context(), added))
	h.next.ServeHTTP(rec, r)

	if !rec.buffered() {
		release(nil) // streamed or hijacked, or nothing written
		return
	}
	e := h.entry(rec, r, added.list())
	if genErr != nil {
		h.storeErrs.report(ctx, h.cfg.logger, "generation", "", genErr)
		e = nil
	}
	if r.Context().Err() != nil {
		// The handler may have stopped rendering half way.
		e = nil
	}
	if e == nil {
		release(nil)
		_ = rec.send()
		return
	}
	key := base
	if len(e.Vary) > 0 {
		key = varyKey(base, e, r)
	}
	// Waiting requests may share the page unless a purge ran meanwhile (it
	// may have been rendered from data the purge replaced).
	if h.unpurged(ctx, gen) {
		release(&fill{key: key, entry: e, gen: gen})
	} else {
		release(nil)
	}
	if err := rec.send(); err != nil {
		return // this client may not have the page: do not store it either
	}
	if len(e.Vary) > 0 {
		vr := &Entry{VaryRecord: true, Vary: e.Vary, Indexes: e.Indexes, TTL: e.TTL}
		if !h.save(ctx, base, vr, gen) {
			return
		}
	}
	if h.save(ctx, key, e, gen) {
		h.count.stored()
	}
}

// save stores e under key with the store's Set, which refuses it when a
// purge ran since gen, and logs the store's error. It reports whether e
// was stored.
func (h *handler) save(ctx context.Context, key string, e *Entry, gen uint64) bool {
	ok, err := h.store.Set(ctx, key, e, gen)
	if err != nil {
		h.storeErrs.report(ctx, h.cfg.logger, "set", key, err)
	}
	return ok
}

// entry returns the entry to store for what rec buffered, indexed by the
// tags of its tag header and the added ones (AddTags), or nil when the
// response must not be stored: its body's length is not the Content-Length
// the handler declared.
func (h *handler) entry(rec *recorder, r *http.Request, added []string) *Entry {
	if !rec.lengthAgrees() {
		return nil
	}
	stored := rec.header.Clone()
	for _, k := range unstoredHeaders {
		delete(stored, k)
	}
	body := bytes.Clone(rec.body.Bytes())
	if _, ok := stored["Etag"]; !ok {
		stored["Etag"] = []string{computeETag(body)}
	}
	return &Entry{
		Header:  stored,
		Body:    body,
		Vary:    rec.vary,
		Indexes: pageOf(r).indexes(append(splitList(stored.Values(h.cfg.tagHeader)), added...)),
		TTL:     rec.ttl,
	}
}
