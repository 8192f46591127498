package localcache

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// XCache is the response header the middleware sets to "HIT" or "MISS".
const XCache = "X-Cache"

// Middleware returns middleware that answers GET and HEAD requests from
// store and stores the 200 responses that may be shared; see the package
// documentation for the rules. A HEAD request is answered from the entry of
// the GET, but a HEAD miss is not stored.
//
// A GET miss that may be stored is rendered into a buffer of at most
// [WithMaxEntryBytes] and sent to its client once the handler returns; it is
// stored only if the handler returned normally before the request's
// context was done, the body has the length its Content-Length declares,
// and sending it succeeded. Concurrent misses of the page wait for that
// render and get the page without waiting for its client. A response that
// may not be stored streams through to its client as the handler writes
// it, and the requests waiting on it render their own: one whose status or
// headers say so (including Pragma: no-cache without Cache-Control, an
// Expires already past, Content-Type: text/event-stream, and trailers),
// one that grows past WithMaxEntryBytes, and one the handler flushes
// ([http.Flusher]) or hijacks ([http.Hijacker]) before it returns.
//
// Wrap the whole mux for one policy, or each route's handler with its own
// Middleware for per-route options; any number of them may share one
// Store, and a purge or clear of the store applies to all of them.
//
// Middleware panics if store is nil or an option is invalid, with a message
// saying how to fix it, as chi's middleware constructors do: it is meant for
// options written in code, whose mistakes show the first time the program
// starts, never at request time. When a setting comes from configuration
// (a flag, a file, the environment), use [NewMiddleware], which returns the
// error instead. Middleware is shorthand for NewMiddleware that panics on
// its error.
func Middleware(store Store, opts ...Option) func(http.Handler) http.Handler {
	mw, err := NewMiddleware(store, opts...)
	if err != nil {
		panic(err.Error())
	}
	return mw
}

// NewMiddleware is [Middleware] for options built at run time: it returns an
// error naming every invalid option, and how to fix it, instead of
// panicking.
func NewMiddleware(store Store, opts ...Option) (func(http.Handler) http.Handler, error) {
	if store == nil {
		return nil, errors.New("localcache: Middleware(nil): pass a Store, such as one from NewMemoryStore")
	}
	cfg := defaultConfig()
	for _, opt := range opts {
		opt(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("localcache: invalid configuration:\n%w", err)
	}
	cfg.browserPolicy()
	return func(next http.Handler) http.Handler {
		return &handler{next: next, store: store, cfg: &cfg}
	}, nil
}

type handler struct {
	next    http.Handler
	store   Store
	cfg     *config
	flights flights
}

// fill is what a miss produced, shared with the requests that waited on it.
type fill struct {
	key   string // the variant key the entry belongs under
	entry *Entry
}

// flights collapses concurrent misses of one key into one render: the
// first request leads, the others wait until it releases them.
type flights struct {
	mu    sync.Mutex
	calls map[string]*flight
}

// flight is one render that other requests may wait on.
type flight struct {
	done     chan struct{} // closed by release
	fill     *fill         // set before done closes; nil: render your own
	released bool          // guarded by flights.mu
}

// join returns the flight of key, and whether the caller leads it: then it
// must call release.
func (g *flights) join(key string) (*flight, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.calls[key]; ok {
		return c, false
	}
	if g.calls == nil {
		g.calls = make(map[string]*flight)
	}
	c := &flight{done: make(chan struct{})}
	g.calls[key] = c
	return c, true
}

// release ends the wait on c with f, and lets the next miss of key lead a
// flight of its own. Only the first call counts.
func (g *flights) release(key string, c *flight, f *fill) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c.released {
		return
	}
	c.released, c.fill = true, f
	close(c.done)
	if g.calls[key] == c {
		delete(g.calls, key)
	}
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
		h.next.ServeHTTP(&recorder{ResponseWriter: w, cfg: h.cfg, streaming: true}, r)
		return
	}

	c, leader := h.flights.join(key)
	if leader {
		// Whatever happens to the render (a panic, runtime.Goexit), the
		// requests waiting on it stop waiting.
		defer h.flights.release(key, c, nil)
		h.fill(w, r, base, func(f *fill) { h.flights.release(key, c, f) })
		return
	}
	select {
	case <-c.done:
		if f := c.fill; f != nil && varyKey(base, f.entry, r) == f.key {
			serve(w, r, f.entry)
			return
		}
	case <-ctx.Done():
		// This client left or timed out: render for it, as without the
		// cache (the response will not be stored).
	}
	// The response was personal, not cacheable, streamed, another
	// variant, or this request stopped waiting.
	h.fill(w, r, base, nil)
}

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

// fill renders the page with the next handler and stores it if it may be
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
// since the render began.
func (h *handler) fill(w http.ResponseWriter, r *http.Request, base string, release func(*fill)) {
	if release == nil {
		release = func(*fill) {}
	}
	// Stores outlive the request: a client that leaves must not stop Set.
	ctx := context.WithoutCancel(r.Context())
	gen, genErr := h.store.Generation(ctx)
	w.Header().Set(XCache, "MISS")
	rec := &recorder{ResponseWriter: w, cfg: h.cfg, max: h.cfg.maxEntryBytes, release: release}
	h.next.ServeHTTP(rec, r)

	if !rec.buffered() {
		release(nil) // streamed or hijacked, or nothing written
		return
	}
	e := h.entry(rec, r)
	if genErr != nil {
		h.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "localcache: store generation failed", slog.Any("error", genErr))
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
	if now, err := h.store.Generation(ctx); err == nil && now == gen {
		release(&fill{key: key, entry: e})
	} else {
		release(nil)
	}
	if err := rec.send(); err != nil {
		return // this client may not have the page: do not store it either
	}
	if len(e.Vary) > 0 {
		vr := &Entry{VaryRecord: true, Vary: e.Vary, Indexes: e.Indexes, TTL: e.TTL}
		if !h.set(ctx, base, vr, gen) {
			return
		}
	}
	h.set(ctx, key, e, gen)
}

func (h *handler) set(ctx context.Context, key string, e *Entry, gen uint64) bool {
	ok, err := h.store.Set(ctx, key, e, gen)
	if err != nil {
		h.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "localcache: store set failed", slog.String("key", key), slog.Any("error", err))
	}
	return ok
}

// entry returns the entry to store for what rec buffered, or nil when the
// response must not be stored: its body's length is not the Content-Length
// the handler declared.
func (h *handler) entry(rec *recorder, r *http.Request) *Entry {
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
		Indexes: pageOf(r).indexes(splitList(stored.Values(h.cfg.tagHeader))),
		TTL:     rec.ttl,
	}
}

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

// recorder stands between the handler and the client's ResponseWriter. It
// judges the response by its status and headers when the handler writes
// them, and gives the client the Cache-Control of [WithBrowserMaxAge] when the
// response may be stored. It spells the handler's header keys
// canonically.
//
// While the response may be stored, the recorder buffers it: nothing
// reaches the client until send. As soon as it may not (by its status or
// headers, a body larger than max, a flush or a hijack), it calls release
// with nil and streams: what it buffered, then every write, go straight
// through. A recorder created streaming only judges and passes through.
type recorder struct {
	http.ResponseWriter
	cfg     *config
	max     int
	release func(*fill) // called once the response streams, when not nil

	wroteHeader bool
	status      int
	streaming   bool          // passing writes through to the client
	hijacked    bool          // the handler took the connection
	ttl         time.Duration // while buffered
	vary        []string      // while buffered
	header      http.Header   // while buffered: as the client is to receive it
	body        bytes.Buffer  // while buffered
}

// buffered reports whether the handler wrote a response that is still
// buffered, and so may be stored.
func (rec *recorder) buffered() bool {
	return rec.wroteHeader && !rec.streaming && !rec.hijacked
}

func (rec *recorder) WriteHeader(code int) {
	if rec.hijacked {
		return
	}
	if rec.wroteHeader {
		if rec.streaming {
			rec.ResponseWriter.WriteHeader(code) // net/http says it is superfluous
		}
		return
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		rec.ResponseWriter.WriteHeader(code) // informational: sent now
		return
	}
	rec.wroteHeader, rec.status = true, code
	hdr := rec.ResponseWriter.Header()
	canonicalKeys(hdr)
	ttl, vary, cc, storable := rec.cfg.judge(code, hdr, time.Now())
	if storable && rec.cfg.browser {
		hdr["Cache-Control"] = []string{cc.browser(rec.cfg.browserLifetime)}
		delete(hdr, "Expires")
		delete(hdr, "Age")
	}
	if rec.streaming {
		rec.ResponseWriter.WriteHeader(code)
		return
	}
	if !storable {
		rec.stream()
		return
	}
	rec.ttl, rec.vary, rec.header = ttl, vary, hdr.Clone()
}

// stream makes the response unstorable: it releases the waiting requests
// and sends the client the status and what was buffered.
func (rec *recorder) stream() {
	if rec.streaming {
		return
	}
	rec.streaming = true
	if rec.release != nil {
		rec.release(nil)
	}
	if !rec.wroteHeader || rec.hijacked {
		return
	}
	if rec.header != nil {
		rec.restoreHeader()
	}
	rec.ResponseWriter.WriteHeader(rec.status)
	if rec.body.Len() > 0 {
		_, _ = rec.ResponseWriter.Write(rec.body.Bytes())
	}
	rec.body = bytes.Buffer{}
	rec.header = nil
}

// restoreHeader gives the client's header map the values the handler had
// written when it called WriteHeader: as with net/http, later changes do
// not count. X-Cache is kept.
func (rec *recorder) restoreHeader() {
	hdr := rec.ResponseWriter.Header()
	for k := range hdr {
		if _, ok := rec.header[k]; !ok {
			delete(hdr, k)
		}
	}
	for k, vs := range rec.header {
		hdr[k] = slices.Clone(vs)
	}
}

// lengthAgrees reports whether the buffered body has the length the
// handler's Content-Length declares, if it declared one.
func (rec *recorder) lengthAgrees() bool {
	cl, ok := rec.header["Content-Length"]
	if !ok {
		return true
	}
	if len(cl) != 1 {
		return false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(cl[0]), 10, 64)
	return err == nil && n == int64(rec.body.Len())
}

// send writes the buffered response to the client, with its
// Content-Length, and flushes it, returning the first error. The
// connection may still fail afterwards; an error means the client surely
// did not get the whole response.
func (rec *recorder) send() error {
	rec.restoreHeader()
	hdr := rec.ResponseWriter.Header()
	if _, ok := hdr["Content-Length"]; !ok {
		if _, ok := hdr["Transfer-Encoding"]; !ok {
			hdr["Content-Length"] = []string{strconv.Itoa(rec.body.Len())}
		}
	}
	rec.streaming = true
	rec.ResponseWriter.WriteHeader(rec.status)
	if _, err := rec.ResponseWriter.Write(rec.body.Bytes()); err != nil {
		return fmt.Errorf("localcache: writing the response: %w", err)
	}
	if err := http.NewResponseController(rec.ResponseWriter).Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("localcache: flushing the response: %w", err)
	}
	return nil
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.hijacked {
		return 0, http.ErrHijacked
	}
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	if !rec.streaming && (rec.body.Len()+len(b) > rec.max || rec.exceedsLength(len(b))) {
		rec.stream()
	}
	if rec.streaming {
		return rec.ResponseWriter.Write(b)
	}
	return rec.body.Write(b)
}

// exceedsLength reports whether n more bytes make the buffered body longer
// than the Content-Length the handler declared.
func (rec *recorder) exceedsLength(n int) bool {
	cl, ok := rec.header["Content-Length"]
	if !ok || len(cl) != 1 {
		return false
	}
	declared, err := strconv.ParseInt(strings.TrimSpace(cl[0]), 10, 64)
	return err == nil && int64(rec.body.Len()+n) > declared
}

// Flush sends the response so far to the client: a response flushed
// before it ends is a stream, and is not stored.
func (rec *recorder) Flush() { _ = rec.FlushError() }

// FlushError is Flush, returning the client's error; http.ResponseController
// calls it.
func (rec *recorder) FlushError() error {
	if rec.hijacked {
		return http.ErrHijacked
	}
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	rec.stream()
	return http.NewResponseController(rec.ResponseWriter).Flush()
}

// Hijack hands the connection to the handler, after what was buffered;
// the response is not stored.
func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	rec.stream()
	conn, rw, err := http.NewResponseController(rec.ResponseWriter).Hijack()
	if err == nil {
		rec.hijacked = true
	}
	return conn, rw, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }
