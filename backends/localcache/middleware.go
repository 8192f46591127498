package localcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sync/singleflight"
)

// XCache is the response header the middleware sets to "HIT" or "MISS".
const XCache = "X-Cache"

// Middleware returns middleware that answers GET and HEAD requests from
// store and stores the 200 responses that may be shared; see the package
// documentation for the rules. A HEAD request is answered from the entry of
// the GET, but a HEAD miss is not stored.
//
// Wrap the whole mux for one policy, or each route's handler with its own
// Middleware for per-route options; any number of them may share one
// Store, and a purge or clear of the store applies to all of them.
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
	cfg.browserPolicy()
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
	base := h.baseKey(r)
	if base == "" {
		h.next.ServeHTTP(w, r)
		return
	}
	ctx := r.Context()
	key, e := h.lookup(ctx, base, r)
	if e != nil {
		serve(w, r, e)
		return
	}
	if r.Method == http.MethodHead {
		// Not stored, but with the headers a GET would have.
		w.Header().Set(XCache, "MISS")
		h.next.ServeHTTP(&recorder{ResponseWriter: w, cfg: h.cfg}, r)
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
		return h.fill(w, r, base), nil
	})
	if led {
		if panicked != nil {
			panic(panicked)
		}
		return
	}
	if f, _ := v.(*fill); f != nil && f.entry != nil && varyKey(base, f.entry, r) == f.key {
		serve(w, r, f.entry)
		return
	}
	// The response was personal, not cacheable, or another variant.
	h.fill(w, r, base)
}

// baseKey returns the key of r's page before Vary, or "" when a KeyFunc
// says not to cache r. The prefix of KeyFunc keys keeps them apart from
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
		h.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "localcache: store get failed", slog.String("key", base), slog.Any("error", err))
		return base, nil
	}
	if !ok {
		return base, nil
	}
	if !e.VaryRecord {
		return base, e
	}
	key := variantKey(base, e.Vary, r, false)
	if v := h.variant(ctx, key); v != nil || !slices.Contains(e.Vary, "Accept-Encoding") {
		return key, v
	}
	// A variant in an encoding kept for one Accept-Encoding value.
	return key, h.variant(ctx, variantKey(base, e.Vary, r, true))
}

// variant returns the variant stored under key, or nil.
func (h *handler) variant(ctx context.Context, key string) *Entry {
	e, ok, err := h.store.Get(ctx, key)
	if err != nil {
		h.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "localcache: store get failed", slog.String("key", key), slog.Any("error", err))
		return nil
	}
	if !ok || e.VaryRecord {
		return nil
	}
	return e
}

// fill renders the page with the next handler, writing it to w as it
// comes, and stores it if it may be shared.
func (h *handler) fill(w http.ResponseWriter, r *http.Request, base string) *fill {
	// Stores outlive the request: a client that leaves must not stop Set.
	ctx := context.WithoutCancel(r.Context())
	gen, genErr := h.store.Generation(ctx)
	w.Header().Set(XCache, "MISS")
	rec := &recorder{ResponseWriter: w, cfg: h.cfg, max: h.cfg.maxEntryBytes}
	h.next.ServeHTTP(rec, r)

	e := h.entry(rec, r)
	if e == nil {
		return nil
	}
	if genErr != nil {
		h.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "localcache: store generation failed", slog.Any("error", genErr))
		return nil
	}
	key := base
	if len(e.Vary) > 0 {
		key = varyKey(base, e, r)
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
func (h *handler) entry(rec *recorder, r *http.Request) *Entry {
	if !rec.storable || rec.overflow {
		return nil
	}
	stored := rec.header // rec's own copy
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
		Indexes: pageOf(r).indexes(splitList(stored.Values(h.cfg.tagHeader))),
		TTL:     rec.ttl,
	}
}

// judge decides, from the status and headers a handler wrote, whether the
// response may be stored, for how long (0: until purged), and which request
// headers it varies on, and returns the Cache-Control it read. hdr's keys
// must be canonical (see canonicalKeys).
func (c *config) judge(status int, hdr http.Header) (ttl time.Duration, vary []string, cc cacheControl, ok bool) {
	if status != http.StatusOK {
		return 0, nil, cc, false
	}
	if _, ok := hdr["Set-Cookie"]; ok {
		return 0, nil, cc, false
	}
	cc = parseCacheControl(hdr)
	ttl, ok = cc.ttl(c.ttl, c.untilPurged)
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

// computeETag returns a strong ETag for body: the first 128 bits of its
// SHA-256, in hex, quoted. It is the same in every process, so instances
// behind one load balancer agree.
func computeETag(body []byte) string {
	sum := sha256.Sum256(body)
	b := make([]byte, 0, 2+2*16)
	b = append(b, '"')
	b = hex.AppendEncode(b, sum[:16])
	b = append(b, '"')
	return string(b)
}

// unstoredHeaders are dropped from stored entries: hop-by-hop headers, and
// those serve sets itself.
var unstoredHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Content-Length", "Date", "Age", XCache,
}

// serve writes e as the response to r: 304 Not Modified when r's
// If-None-Match matches e's ETag, else the full page with status 200.
func serve(w http.ResponseWriter, r *http.Request, e *Entry) {
	if inm, ok := r.Header["If-None-Match"]; ok {
		if etag := e.Header["Etag"]; len(etag) > 0 && etagListMatches(inm, etag[0]) {
			// RFC 9110, section 15.4.5: the headers a 200 would have
			// sent that a cache needs to update what it holds.
			n := 1 // X-Cache
			for _, k := range notModifiedHeaders {
				n += len(e.Header[k])
			}
			h, hv := w.Header(), newHeaderValues(n)
			for _, k := range notModifiedHeaders {
				if vs, ok := e.Header[k]; ok {
					hv.set(h, k, vs...)
				}
			}
			hv.set(h, XCache, "HIT")
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	n := 2 // X-Cache and Content-Length
	for _, vs := range e.Header {
		n += len(vs)
	}
	h, hv := w.Header(), newHeaderValues(n)
	for k, vs := range e.Header {
		hv.set(h, k, vs...) // the entry is shared: never hand out its slices
	}
	hv.set(h, XCache, "HIT")
	hv.set(h, "Content-Length", strconv.Itoa(len(e.Body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(e.Body)
	}
}

// headerValues copies header values into one allocation for a response.
type headerValues []string

func newHeaderValues(n int) headerValues { return make(headerValues, 0, n) }

// set sets h[k] to a copy of vs. k must be canonical. Each value slice is
// capped, so that appending to one never overwrites the next.
func (hv *headerValues) set(h http.Header, k string, vs ...string) {
	start := len(*hv)
	*hv = append(*hv, vs...)
	h[k] = (*hv)[start:len(*hv):len(*hv)]
}

// notModifiedHeaders are the stored headers a 304 repeats.
var notModifiedHeaders = []string{"Cache-Control", "Content-Location", "Etag", "Expires", "Vary"}

// recorder passes a response through to the client and keeps a copy of its
// status, headers and up to max bytes of body. When the response may be
// stored, it gives the client the Cache-Control of [BrowserMaxAge] before
// passing the headers on. It spells the handler's header keys canonically.
type recorder struct {
	http.ResponseWriter
	cfg         *config
	max         int
	wroteHeader bool
	storable    bool          // by status and headers; the body may still overflow
	ttl         time.Duration // when storable
	vary        []string      // when storable
	header      http.Header   // when storable: as sent to the client
	body        bytes.Buffer
	overflow    bool // the body is not kept: too large, or not storable
}

func (rec *recorder) WriteHeader(code int) {
	if !rec.wroteHeader && (code < 100 || code > 199 || code == http.StatusSwitchingProtocols) {
		rec.wroteHeader = true
		hdr := rec.ResponseWriter.Header()
		canonicalKeys(hdr)
		var cc cacheControl
		rec.ttl, rec.vary, cc, rec.storable = rec.cfg.judge(code, hdr)
		if rec.storable {
			if rec.cfg.browser {
				hdr["Cache-Control"] = []string{cc.browser(rec.cfg.browserLifetime)}
				delete(hdr, "Expires")
				delete(hdr, "Age")
			}
			rec.header = hdr.Clone()
		}
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	if !rec.overflow {
		if rec.body.Len()+len(b) > rec.max || !rec.storable {
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
