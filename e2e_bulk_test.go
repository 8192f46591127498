package gormpurge_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/warm"
)

// wArticle is the model of the warm-up and bulk-job tests: its own page
// and the index list it appears on.
type wArticle struct {
	ID    uint `gorm:"primaryKey"`
	Title string
}

func (a *wArticle) AbsoluteURL() string      { return fmt.Sprintf("/articles/%d", a.ID) }
func (a *wArticle) DependentPaths() []string { return []string{"/articles"} }

// site is a small blog on SQLite behind the local cache, counting how often
// each page is rendered.
type site struct {
	db    *gorm.DB
	store *localcache.MemoryStore
	srv   *httptest.Server

	mu      sync.Mutex
	renders map[string]int
}

func newSite(t *testing.T, opts ...localcache.Option) *site {
	t.Helper()
	store, err := localcache.NewMemoryStore()
	require.NoError(t, err)
	s := &site{db: openSQLite(t, &wArticle{}), store: store, renders: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /articles", func(w http.ResponseWriter, r *http.Request) {
		s.rendered(r)
		var all []wArticle
		if err := s.db.WithContext(r.Context()).Order("id").Find(&all).Error; err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		for _, a := range all {
			fmt.Fprintln(w, a.Title)
		}
	})
	mux.HandleFunc("GET /articles/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.rendered(r)
		var a wArticle
		if err := s.db.WithContext(r.Context()).First(&a, r.PathValue("id")).Error; err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		_, _ = io.WriteString(w, a.Title)
	})
	mux.HandleFunc("GET /about", func(w http.ResponseWriter, r *http.Request) {
		s.rendered(r)
		_, _ = io.WriteString(w, "about us")
	})
	opts = append([]localcache.Option{localcache.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	s.srv = httptest.NewServer(localcache.Middleware(s.store, opts...)(mux))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *site) rendered(r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.renders[r.URL.Path]++
}

func (s *site) renderCount(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.renders[path]
}

// visit fetches path as a visitor and returns X-Cache and the body.
func (s *site) visit(t *testing.T, path string) (string, string) {
	t.Helper()
	res, err := s.srv.Client().Get(s.srv.URL + path)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s: %s", path, body)
	return res.Header.Get(localcache.XCache), string(body)
}

// install puts the plugin on the site's database, purging through d.
func (s *site) install(t *testing.T, d *dispatcher.Dispatcher) *gormpurge.Plugin {
	t.Helper()
	p := gormpurge.New(d, gormpurge.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, p.Register(&wArticle{}))
	require.NoError(t, s.db.Use(p))
	return p
}

func closeDispatcher(t *testing.T, d *dispatcher.Dispatcher) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, d.Close(ctx))
	})
}

// Warm-up after purge: an edit purges the article and the index, the
// warmer fetches each once through the cache, and the first real visitor
// gets a HIT with the new content: the page was rendered once per change.
func TestWarmUpAfterPurgeEndToEnd(t *testing.T) {
	s := newSite(t, localcache.WithUntilPurged())
	results := make(chan warm.Result, 100)
	w, err := warm.New(warm.WithBaseURL(s.srv.URL), warm.WithHTTPClient(s.srv.Client()), warm.WithConcurrency(2),
		warm.WithLogger(slog.New(slog.DiscardHandler)), warm.WithOnResult(func(r warm.Result) { results <- r }))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, w.Close(context.Background())) })
	local, err := localcache.NewBackend(s.store)
	require.NoError(t, err)
	d, err := dispatcher.New([]backends.Backend{local},
		dispatcher.WithLogger(slog.New(slog.DiscardHandler)), dispatcher.WithWarmup(localcache.BackendName, w))
	require.NoError(t, err)
	closeDispatcher(t, d)
	s.install(t, d)

	waitWarm := func(paths ...string) {
		t.Helper()
		var got []string
		for range paths {
			select {
			case r := <-results:
				require.NoError(t, r.Err)
				require.Equal(t, http.StatusOK, r.Status, r.URL)
				assert.Equal(t, "MISS", r.Cache, "the warm-up pays for the miss")
				got = append(got, strings.TrimPrefix(r.URL, s.srv.URL))
			case <-time.After(10 * time.Second):
				require.Fail(t, "warm-up did not fetch", "want %q, got %q", paths, got)
			}
		}
		assert.ElementsMatch(t, paths, got)
	}

	a := wArticle{Title: "first"}
	require.NoError(t, s.db.Create(&a).Error)
	waitWarm("/articles/1", "/articles")
	for _, path := range []string{"/articles/1", "/articles"} {
		cache, _ := s.visit(t, path)
		assert.Equal(t, "HIT", cache, "the first visitor of %s finds it warm", path)
	}

	require.NoError(t, s.db.Model(&a).Update("title", "second").Error)
	waitWarm("/articles/1", "/articles")
	cache, body := s.visit(t, "/articles/1")
	assert.Equal(t, "HIT", cache)
	assert.Equal(t, "second", body, "fresh content, from the cache")
	cache, body = s.visit(t, "/articles")
	assert.Equal(t, "HIT", cache)
	assert.Equal(t, "second\n", body)

	assert.Equal(t, 2, s.renderCount("/articles/1"), "rendered once per change, by the warm-up")
	assert.Equal(t, 2, s.renderCount("/articles"))
	assert.Empty(t, results, "each purged URL is fetched once")
	assert.Equal(t, uint64(4), w.Stats().Fetched)
}

// A data import under Suspend reaches the dispatcher as one handoff, which
// the escalation policy turns into one purge of everything instead of a
// purge per page.
func TestBulkImportEscalatesEndToEnd(t *testing.T) {
	s := newSite(t, localcache.WithUntilPurged())
	var reports []dispatcher.Report
	var mu sync.Mutex
	local, err := localcache.NewBackend(s.store)
	require.NoError(t, err)
	d, err := dispatcher.New([]backends.Backend{local},
		dispatcher.WithLogger(slog.New(slog.DiscardHandler)),
		dispatcher.WithEscalation(localcache.BackendName, dispatcher.Escalation{Above: 500, All: true}),
		dispatcher.WithOnResult(func(r dispatcher.Report) {
			mu.Lock()
			defer mu.Unlock()
			reports = append(reports, r)
		}))
	require.NoError(t, err)
	closeDispatcher(t, d)
	p := s.install(t, d)
	flush := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		require.NoError(t, d.Flush(ctx))
	}

	// A normal edit purges page by page.
	a := wArticle{Title: "before the import"}
	require.NoError(t, s.db.Create(&a).Error)
	flush()
	s.visit(t, "/about")
	s.visit(t, "/articles/1")
	cache, _ := s.visit(t, "/about")
	require.Equal(t, "HIT", cache)
	require.NoError(t, s.db.Model(&a).Update("title", "edited").Error)
	flush()
	cache, _ = s.visit(t, "/about")
	assert.Equal(t, "HIT", cache, "an edit of 2 pages is not escalated")

	// The import: 1,000 commits, one handoff of 1,001 URLs, one purge of
	// everything.
	ctx, job := p.Suspend(t.Context())
	for i := range 1000 {
		require.NoError(t, s.db.WithContext(ctx).Create(&wArticle{Title: fmt.Sprint("imported ", i)}).Error)
	}
	mu.Lock()
	reports = nil
	mu.Unlock()
	require.NoError(t, job.Resume())
	flush()

	st, _ := d.Stats().Backend(localcache.BackendName)
	assert.Equal(t, uint64(1), st.Escalated)
	assert.Equal(t, uint64(1001), st.EscalatedURLs)
	mu.Lock()
	require.Len(t, reports, 1, "one call to the cache for the whole import")
	assert.True(t, reports[0].All)
	assert.Equal(t, dispatcher.Delivered, reports[0].Outcome)
	mu.Unlock()
	assert.Zero(t, s.store.Len(), "everything was purged")
	cache, _ = s.visit(t, "/about")
	assert.Equal(t, "MISS", cache)
	_, body := s.visit(t, "/articles")
	assert.Contains(t, body, "imported 999")
}
