package localcache

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/gormpurge/gormpurge/internal/nilcheck"
)

// passAClearer is NewClearHandler's advice for a nil argument.
const passAClearer = "pass the Store given to Middleware, such as one from NewMemoryStore, or the Backend that purges it (with WithBus, to clear every instance)"

// A Clearer empties a cache and says how many entries it removed: a
// [Store] clears itself; a [Backend] with [WithBus] clears its store and
// every other instance's. Give either to [ClearHandler].
type Clearer interface {
	Clear(ctx context.Context) (int, error)
}

// ClearHandler returns an operator endpoint that empties store: a POST
// removes every entry and answers 200 with a text/plain body such as
// "removed 42 entries"; any other method gets 405 with Allow: POST. Each
// clear is logged with [slog.Default], at Info, or at Error with status 500
// when the store fails. Use it when pages are stale for a reason no purge
// covers, such as a deploy that changed templates, or data changed outside
// the application. When each instance keeps its own store, kept coherent by
// a [Bus], give it the [Backend] made with [WithBus] instead of the store:
// one POST then clears every instance.
//
// Anyone who can reach it can empty the cache and send every request to
// the database at once: mount it behind the application's admin
// authentication, never on the public mux unauthenticated:
//
//	admin := http.NewServeMux()
//	admin.Handle("/admin/cache/clear", localcache.ClearHandler(store))
//	mux.Handle("/admin/", requireStaff(admin)) // the application's own check
//
// Against cross-site request forgery, where another site's page makes a
// signed-in operator's browser send the POST with their cookies, the
// endpoint is wrapped in [http.CrossOriginProtection]: a POST that a
// browser marks as cross-origin, by its Sec-Fetch-Site header or else by
// an Origin whose host is not the request's Host, gets 403 Forbidden and
// clears nothing (and is logged at Warn). Same-origin POSTs, such as a
// form or fetch on the application's own admin pages, and requests without
// those headers, such as curl's or a deploy script's, are allowed. An admin
// page on another origin cannot use the endpoint.
//
// ClearHandler panics if store is nil, or a nil pointer (or other nil
// value) of a type that implements Store, such as (*MemoryStore)(nil), with
// a message saying how to fix it, as [Middleware] does: the store is
// written in code, and the mistake shows the first time the program starts,
// never at request time. [NewClearHandler] returns the error instead.
func ClearHandler(store Clearer) http.Handler {
	h, err := NewClearHandler(store)
	if err != nil {
		panic(err.Error())
	}
	return h
}

// NewClearHandler is [ClearHandler] returning an error, instead of
// panicking, if store is nil or a nil pointer (or other nil value) of a
// type that implements Clearer.
func NewClearHandler(store Clearer) (http.Handler, error) {
	switch {
	case store == nil:
		return nil, fmt.Errorf("localcache: ClearHandler(nil): %s", passAClearer)
	case nilcheck.IsNil(store):
		return nil, fmt.Errorf("localcache: ClearHandler((%T)(nil)): the Clearer is a nil %T: %s", store, store, passAClearer)
	}
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slog.Default().LogAttrs(r.Context(), slog.LevelWarn, "localcache: cross-origin clear refused",
			slog.String("remote_addr", r.RemoteAddr), slog.String("origin", r.Header.Get("Origin")),
			slog.String("sec_fetch_site", r.Header.Get("Sec-Fetch-Site")))
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "forbidden: cross-origin request; clear the cache from the same origin", http.StatusForbidden)
	}))
	return csrf.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed: POST to clear the cache", http.StatusMethodNotAllowed)
			return
		}
		ctx := r.Context()
		n, err := store.Clear(ctx)
		if err != nil {
			slog.Default().LogAttrs(ctx, slog.LevelError, "localcache: clear failed",
				slog.Int("removed", n), slog.String("remote_addr", r.RemoteAddr), slog.Any("error", err))
			http.Error(w, fmt.Sprintf("clear failed after removing %d entries: %v", n, err), http.StatusInternalServerError)
			return
		}
		slog.Default().LogAttrs(ctx, slog.LevelInfo, "localcache: cache cleared",
			slog.Int("removed", n), slog.String("remote_addr", r.RemoteAddr))
		_, _ = fmt.Fprintf(w, "removed %d entries\n", n)
	})), nil
}
