package gormpurge

import (
	"context"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"gorm.io/gorm/schema"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/localcache"
)

// Read tags (WithReadTags): the middleware of TagReads puts a readSet in
// each request's context; the after-query callback adds to it a row tag
// ("{table}:{key}") for every row of a registered model the request's
// queries read, and the table's tag ("{table}") when a query could find
// other rows after a write (a list, a query by a non-unique column, or one
// that found nothing); the middleware sends them in the tag headers and
// gives them to the local cache. A commit purges the row tags of every row
// it wrote, old and new state, and its tables' tags.

// readSet is what one request's queries read: per table, the row tags, or
// only the table's tag once the page listed the table or read too many of
// its rows to name them.
type readSet struct {
	mu     sync.Mutex
	rows   map[string]map[string]struct{} // table -> row tags
	tables map[string]struct{}            // tables whose tag the page carries
	sent   bool                           // the response's headers were written
	late   int                            // tags added after that
}

// maxRowTagsPerTable bounds the row tags a request keeps of one table:
// past it, the page carries the table's tag instead, which covers them.
const maxRowTagsPerTable = 1000

type readSetKey struct{ p *Plugin }

func (p *Plugin) readSetOf(ctx context.Context) *readSet {
	if ctx == nil {
		return nil
	}
	rs, _ := ctx.Value(readSetKey{p}).(*readSet)
	return rs
}

// add records that the request read rows of table (their tags) and, when
// listed, that the page must carry the table's tag.
func (rs *readSet) add(table string, rowTags []string, listed bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.rows == nil {
		rs.rows, rs.tables = make(map[string]map[string]struct{}), make(map[string]struct{})
	}
	if _, whole := rs.tables[table]; whole {
		return
	}
	if listed {
		if rs.sent {
			rs.late++
		}
		rs.tables[table] = struct{}{}
		delete(rs.rows, table)
		return
	}
	set := rs.rows[table]
	if set == nil {
		set = make(map[string]struct{}, len(rowTags))
		rs.rows[table] = set
	}
	for _, t := range rowTags {
		if _, dup := set[t]; !dup && rs.sent {
			rs.late++
		}
		set[t] = struct{}{}
	}
	if len(set) > maxRowTagsPerTable {
		rs.tables[table] = struct{}{}
		delete(rs.rows, table)
	}
}

// whole reports whether the page carries table's tag already, which
// covers its rows.
func (rs *readSet) whole(table string) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	_, ok := rs.tables[table]
	return ok
}

// tags returns the tags, sorted, and collapses the tables with the most
// row tags into their table tags until fit accepts them. It returns false
// if even the table tags alone do not fit.
func (rs *readSet) tags(fit func([]string) bool) ([]string, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	whole := make(map[string]struct{}, len(rs.tables))
	for t := range rs.tables {
		whole[t] = struct{}{}
	}
	for {
		var out []string
		for t := range whole {
			out = append(out, backends.TableTag(t))
		}
		for t, set := range rs.rows {
			if _, ok := whole[t]; ok {
				continue
			}
			for tag := range set {
				out = append(out, tag)
			}
		}
		slices.Sort(out)
		if fit(out) {
			return out, true
		}
		biggest, n := "", 0
		for t, set := range rs.rows {
			if _, ok := whole[t]; !ok && len(set) > n {
				biggest, n = t, len(set)
			}
		}
		if n <= 1 {
			return out, false // collapsing saves nothing more
		}
		whole[biggest] = struct{}{}
	}
}

// all returns every tag, row tags uncollapsed, for the local cache.
func (rs *readSet) all() []string {
	out, _ := rs.tags(func([]string) bool { return true })
	return out
}

// TagReads returns h wrapped in the middleware of read tags: the GORM
// queries that h's handlers run with the request's context
// (db.WithContext(r.Context())) tag the response with the rows and tables
// they read, in each tag header the plugin was given (WithTagHeaders;
// Surrogate-Key by default) and in the index of the local cache
// (backends/localcache) when it wraps the returned handler. Without
// WithReadTags it returns h.
//
// Tags must reach the headers before they are written: the middleware
// writes them when h first calls WriteHeader (with a final status), Write
// or Flush. Queries run after that tag the page for the local cache only
// (which stores a page after rendering it, unless the handler flushed it:
// then it stores nothing); they are logged at Debug and counted in
// [Stats.LateReadTags]. A page whose table tags alone
// exceed a header's limits is sent with "Cache-Control: no-store" and
// counted in [Stats.UntaggablePages]: a cache must not keep a page it
// cannot purge.
func (p *Plugin) TagReads(h http.Handler) http.Handler {
	if !p.cfg.readTags {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs := &readSet{}
		tw := &tagWriter{ResponseWriter: w, p: p, rs: rs}
		h.ServeHTTP(tw, r.WithContext(context.WithValue(r.Context(), readSetKey{p}, rs)))
		tw.writeTags() // for a handler that wrote nothing
		rs.mu.Lock()
		late := rs.late
		rs.mu.Unlock()
		if late > 0 {
			p.stats.lateReadTags.Add(uint64(late))
			p.cfg.logger.LogAttrs(r.Context(), slog.LevelDebug, "gormpurge: queries after the response's headers tagged the page for the local cache only",
				slog.Int("tags", late), slog.String("path", backends.RedactURL(r.URL.Path)))
		}
		localcache.AddTags(r.Context(), rs.all()...)
	})
}

// tagWriter writes the read tags into the headers just before they are
// sent.
type tagWriter struct {
	http.ResponseWriter
	p    *Plugin
	rs   *readSet
	done atomic.Bool
}

func (w *tagWriter) writeTags() {
	if w.done.Swap(true) {
		return
	}
	w.rs.mu.Lock()
	w.rs.sent = true
	w.rs.mu.Unlock()
	hdr := w.Header()
	for _, th := range w.p.cfg.tagHeaders {
		own := strings.FieldsFunc(strings.Join(hdr.Values(th.Name), " "), func(r rune) bool { return r == ' ' || r == ',' })
		var value string
		tags, ok := w.rs.tags(func(tags []string) bool {
			var fits bool
			value, fits = th.Fits(slices.Concat(own, tags)) // the handler's own tags stay
			return fits
		})
		if !ok {
			w.p.stats.untaggable.Add(1)
			uncacheable(hdr)
			continue
		}
		if len(tags) > 0 {
			hdr.Set(th.Name, value)
		}
	}
}

// uncacheable makes a page no cache may keep: a page nobody could purge.
// The headers CDNs prefer to Cache-Control go too.
func uncacheable(h http.Header) {
	for _, name := range []string{"Surrogate-Control", "CDN-Cache-Control", "Cloudflare-CDN-Cache-Control", "Edge-Control"} {
		h.Del(name)
	}
	h.Set("Cache-Control", "no-store")
}

// WriteHeader writes the tags, then the status; an informational status
// (1xx, such as 103 Early Hints) does not send the final headers, so the
// tags wait.
func (w *tagWriter) WriteHeader(code int) {
	if code >= 200 {
		w.writeTags()
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write writes the tags, if not yet written, then b.
func (w *tagWriter) Write(b []byte) (int, error) {
	w.writeTags()
	return w.ResponseWriter.Write(b)
}

// Flush writes the tags, then flushes, when the writer beneath can.
func (w *tagWriter) Flush() {
	w.writeTags()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap returns the writer beneath, for http.ResponseController.
func (w *tagWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// schemaOf returns m's schema: the one a statement showed, or else the one
// parsed with the naming strategy of the first *gorm.DB the plugin was
// installed on; nil before that.
func (p *Plugin) schemaOf(m *modelInfo) *schema.Schema {
	if sch := m.schema.Load(); sch != nil {
		return sch
	}
	namer := p.namer.Load()
	if namer == nil {
		return nil
	}
	sch, err := schema.Parse(reflect.New(m.typ).Interface(), &p.parsed, *namer)
	if err != nil {
		return nil
	}
	m.schema.CompareAndSwap(nil, sch)
	return m.schema.Load()
}

// readTagsOf adds to out the read tags of row, a row written (or purged)
// of the model whose schema, as the statement's database names it, is sch:
// its row tag and its table's tag. It does nothing without a schema or a
// primary key.
func (p *Plugin) readTagsOf(ctx context.Context, sch *schema.Schema, row reflect.Value, out *acc) {
	if sch == nil || len(sch.PrimaryFields) == 0 {
		return
	}
	pk := make([]any, 0, len(sch.PrimaryFields))
	for _, f := range sch.PrimaryFields {
		v, zero := f.ValueOf(ctx, row)
		if zero {
			return
		}
		pk = append(pk, v)
	}
	out.tags = append(out.tags, backends.RowTag(sch.Table, pk...), backends.TableTag(sch.Table))
}
