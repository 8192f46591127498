package localcache

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strconv"

	"golang.org/x/sync/singleflight"
)

// XCache is the response header the middleware sets to "HIT" or "MISS".
const XCache = "X-Cache"

// Middleware returns middleware that answers GET and HEAD requests from
// store and stores the 200 responses that may be shared; see the package
// documentation for the rules. A HEAD request is answered from the entry of
// the GET, but a HEAD miss is not stored.
//
// Middleware panics if an option is invalid, saying how to fix it.
func Middleware(store Store, opts ...Option) func(http.Handler) http.Handler {
	if store == nil {
		panic("localcache: Middleware(nil): pass a Store, such as NewMemoryStore()")
	}
	cfg := defaultConfig()
	for _, opt := range opts {
		opt(&cfg)
	}
	if err := cfg.validate(); err != nil {
		panic("localcache: invalid configuration:\n" + err.Error())
	}
	return func(next http.Handler) http.Handler {
		return &handler{next: next, store: store, cfg: &cfg}
	}
}

type handler struct {
	next   http.Handler
	store  Store
	cfg    *config
	flight singleflight.Group
}

// fill is what a miss produced, shared with the requests that waited on it.
type fill struct {
	key   string // the variant key the entry belongs under
	entry *Entry // nil when the response may not be shared
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || h.personal(r) {
		h.next.ServeHTTP(w, r)
		return
	}
	ctx := r.Context()
	p := pageOf(r)
	base := p.key()
	key, e := h.lookup(ctx, base, r)
	if e != nil {
		serve(w, r, e)
		return
	}
	if r.Method == http.MethodHead {
		w.Header().Set(XCache, "MISS")
		h.next.ServeHTTP(w, r)
		return
	}

	var (
		led      bool
		panicked any
	)
	v, _, _ := h.flight.Do(key, func() (any, error) {
		led = true
		defer func() {
			// Recover here so that the requests waiting on this one
			// render their own page instead of panicking too; the
			// panic goes on in this request below.
			panicked = recover()
		}()
		return h.fill(w, r, p, base), nil
	})
	if led {
		if panicked != nil {
			panic(panicked)
		}
		return
	}
	if f, _ := v.(*fill); f != nil && f.entry != nil && variantKey(base, f.entry.Vary, r) == f.key {
		serve(w, r, f.entry)
		return
	}
	// The response was personal, not cacheable, or another variant.
	h.fill(w, r, p, base)
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
		h.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "localcache: store get failed", slog.String("key", base), slog.Any("error", err))
		return base, nil
	}
	if !ok {
		return base, nil
	}
	if !e.VaryRecord {
		return base, e
	}
	key := variantKey(base, e.Vary, r)
	e, ok, err = h.store.Get(ctx, key)
	if err != nil {
		h.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "localcache: store get failed", slog.String("key", key), slog.Any("error", err))
		return key, nil
	}
	if !ok || e.VaryRecord {
		return key, nil
	}
	return key, e
}

// fill renders the page with the next handler, writing it to w as it
// comes, and stores it if it may be shared.
func (h *handler) fill(w http.ResponseWriter, r *http.Request, p page, base string) *fill {
	// Stores outlive the request: a client that leaves must not stop Set.
	ctx := context.WithoutCancel(r.Context())
	gen, genErr := h.store.Generation(ctx)
	w.Header().Set(XCache, "MISS")
	rec := &recorder{ResponseWriter: w, max: h.cfg.maxEntryBytes}
	h.next.ServeHTTP(rec, r)

	e := h.entry(rec, p)
	if e == nil {
		return nil
	}
	if genErr != nil {
		h.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "localcache: store generation failed", slog.Any("error", genErr))
		return nil
	}
	key := base
	if len(e.Vary) > 0 {
		key = variantKey(base, e.Vary, r)
		vr := &Entry{VaryRecord: true, Vary: e.Vary, Indexes: e.Indexes, TTL: e.TTL}
		if ok, err := h.set(ctx, base, vr, gen); !ok {
			return h.unstored(key, e, err)
		}
	}
	ok, err := h.set(ctx, key, e, gen)
	if !ok {
		return h.unstored(key, e, err)
	}
	return &fill{key: key, entry: e}
}

func (h *handler) set(ctx context.Context, key string, e *Entry, gen uint64) (bool, error) {
	ok, err := h.store.Set(ctx, key, e, gen)
	if err != nil {
		h.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "localcache: store set failed", slog.String("key", key), slog.Any("error", err))
	}
	return ok, err
}

// unstored decides whether waiting requests may share a response the store
// did not keep: yes if the store failed, no if a purge ran meanwhile (the
// page may have been rendered from data the purge replaced).
func (h *handler) unstored(key string, e *Entry, err error) *fill {
	if err != nil {
		return &fill{key: key, entry: e}
	}
	return nil
}

// entry returns the entry to store for what rec captured, or nil when the
// response must not be stored.
func (h *handler) entry(rec *recorder, p page) *Entry {
	if !rec.wroteHeader || rec.status != http.StatusOK || rec.overflow {
		return nil
	}
	hdr := rec.header
	if _, ok := hdr["Set-Cookie"]; ok {
		return nil
	}
	ttl, ok := parseCacheControl(hdr).ttl(h.cfg.ttl)
	if !ok {
		return nil
	}
	var vary []string
	for _, name := range splitList(hdr.Values("Vary")) {
		if name == "*" {
			return nil
		}
		vary = append(vary, http.CanonicalHeaderKey(name))
	}
	slices.Sort(vary)
	vary = slices.Compact(vary)

	stored := hdr.Clone()
	for _, k := range unstoredHeaders {
		delete(stored, k)
	}
	return &Entry{
		Header:  stored,
		Body:    bytes.Clone(rec.body.Bytes()),
		Vary:    vary,
		Indexes: p.indexes(splitList(hdr.Values(h.cfg.tagHeader))),
		TTL:     ttl,
	}
}

// unstoredHeaders are dropped from stored entries: hop-by-hop headers, and
// those serve sets itself.
var unstoredHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Content-Length", "Date", "Age", XCache,
}

// serve writes e as the response to r.
func serve(w http.ResponseWriter, r *http.Request, e *Entry) {
	h := w.Header()
	for k, vs := range e.Header {
		h[k] = slices.Clone(vs) // the entry is shared: never hand out its slices
	}
	h.Set(XCache, "HIT")
	h.Set("Content-Length", strconv.Itoa(len(e.Body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(e.Body)
	}
}

// recorder passes a response through to the client and keeps a copy of its
// status, headers and up to max bytes of body.
type recorder struct {
	http.ResponseWriter
	max         int
	wroteHeader bool
	status      int
	header      http.Header // as they were when the status was written
	body        bytes.Buffer
	overflow    bool // the body passed max: not kept
}

func (rec *recorder) WriteHeader(code int) {
	if !rec.wroteHeader && (code < 100 || code > 199 || code == http.StatusSwitchingProtocols) {
		rec.wroteHeader = true
		rec.status = code
		rec.header = rec.ResponseWriter.Header().Clone()
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	if !rec.overflow {
		if rec.body.Len()+len(b) > rec.max {
			rec.overflow = true
			rec.body = bytes.Buffer{}
		} else {
			rec.body.Write(b)
		}
	}
	return rec.ResponseWriter.Write(b)
}

// Flush lets streaming handlers flush through the middleware.
func (rec *recorder) Flush() {
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(rec.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }
