package gormpurge_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/httppurge"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/internal/cachetest"
	"github.com/gormpurge/gormpurge/warm"
)

// hpArticle is the model of the HTTP cache end-to-end test.
type hpArticle struct {
	ID    uint `gorm:"primaryKey"`
	Title string
}

func (a *hpArticle) AbsoluteURL() string { return fmt.Sprintf("/articles/%d", a.ID) }

// articlePages is the origin of the HTTP cache tests: each article's page,
// cacheable for an hour. It counts the pages it renders in renders, unless
// nil.
func articlePages(db *gorm.DB, renders *atomic.Int64) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /articles/{id}", func(w http.ResponseWriter, r *http.Request) {
		if renders != nil {
			renders.Add(1)
		}
		var a hpArticle
		if err := db.WithContext(r.Context()).First(&a, r.PathValue("id")).Error; err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = io.WriteString(w, a.Title)
	})
	return mux
}

// TestHTTPCachesEndToEnd runs a small net/http app on GORM and SQLite behind
// a real Varnish, nginx and Squid, with the plugin purging through the
// dispatcher and the httppurge backend: after a commit the next visitor
// gets a miss with the new content; after a rollback the page stays cached.
// It needs GORMPURGE_TEST_CACHES=1 and the caches installed (see
// internal/cachetest); it skips otherwise.
func TestHTTPCachesEndToEnd(t *testing.T) {
	t.Parallel()
	for _, kind := range cachetest.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			cachetest.Require(t, kind)
			const site = "www.example.test"
			quietLog := slog.New(slog.DiscardHandler)
			db := openSQLite(t, &hpArticle{})

			// The application: the origin the cache fetches from.
			cache := cachetest.Start(t, kind, cachetest.StartOrigin(t, articlePages(db, nil)))

			b, err := httppurge.New(
				httppurge.WithNodes(cache.URL),
				httppurge.WithSiteHost(site),
				httppurge.WithTagMode(httppurge.NoTags()),
				httppurge.WithLogger(quietLog))
			require.NoError(t, err)
			d := purgeThrough(t, db, []backends.Backend{b}, &hpArticle{})

			article := hpArticle{Title: "first"}
			require.NoError(t, db.Create(&article).Error)

			const miss, hit = false, true
			visit := func(wantHit bool, wantBody string) {
				t.Helper()
				page := cache.Get(t, site, article.AbsoluteURL())
				require.Equal(t, http.StatusOK, page.Status, page.Body)
				require.Equal(t, wantHit, page.Hit, "%s says hit=%v (%s: %q)", kind, page.Hit,
					kind.HitHeader(), page.Header.Get(kind.HitHeader()))
				require.Equal(t, wantBody, page.Body)
			}
			flush := func() {
				t.Helper()
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				require.NoError(t, d.Flush(ctx))
			}
			flush() // the Create's purge

			visit(miss, "first")
			visit(hit, "first")

			// Committed: the purge reaches the cache, and the next visitor
			// gets the new title from the origin.
			require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
				return tx.Model(&article).Update("title", "second").Error
			}))
			flush()
			visit(miss, "second")
			visit(hit, "second")

			// Rolled back: no purge; the cached page, still right, stays.
			errRollback := errors.New("roll back")
			require.ErrorIs(t, db.Transaction(func(tx *gorm.DB) error {
				if err := tx.Model(&article).Update("title", "third").Error; err != nil {
					return err
				}
				return errRollback
			}), errRollback)
			flush()
			visit(hit, "second")

			s, _ := d.Stats().Backend(b.Name())
			require.Zero(t, s.Failed+s.Dropped, "every purge was delivered")
			require.Positive(t, s.Delivered)
		})
	}
}

// TestWarmUpThroughHTTPCaches: after a commit purges a page from a real
// Varnish, nginx and Squid, the warmer fetches it once through the cache,
// so the first visitor gets a HIT with the new content and the origin
// renders once per change.
func TestWarmUpThroughHTTPCaches(t *testing.T) {
	t.Parallel()
	for _, kind := range cachetest.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			cachetest.Require(t, kind)
			const site = "www.example.test"
			quietLog := slog.New(slog.DiscardHandler)
			db := openSQLite(t, &hpArticle{})

			var renders atomic.Int64
			cache := cachetest.Start(t, kind, cachetest.StartOrigin(t, articlePages(db, &renders)))

			b, err := httppurge.New(httppurge.WithNodes(cache.URL), httppurge.WithSiteHost(site),
				httppurge.WithTagMode(httppurge.NoTags()), httppurge.WithLogger(quietLog))
			require.NoError(t, err)
			results := make(chan warm.Result, 10)
			w, err := warm.New(warm.WithBaseURL(cache.URL), warm.WithHeader("Host", site), warm.WithLogger(quietLog),
				warm.WithOnResult(func(r warm.Result) { results <- r }))
			require.NoError(t, err)
			d, err := dispatcher.New([]backends.Backend{b}, dispatcher.WithLogger(quietLog), dispatcher.WithWarmup(b.Name(), w))
			require.NoError(t, err)
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				require.NoError(t, d.Close(ctx)) // closes b too
				require.NoError(t, w.Close(ctx))
			})
			p := gormpurge.New(d, gormpurge.WithLogger(quietLog))
			require.NoError(t, p.Register(&hpArticle{}))
			require.NoError(t, db.Use(p))

			warmed := func() {
				t.Helper()
				select {
				case r := <-results:
					require.NoError(t, r.Err)
					require.Equal(t, http.StatusOK, r.Status)
				case <-time.After(10 * time.Second):
					require.Fail(t, "the page was not warmed")
				}
			}
			article := hpArticle{Title: "first"}
			require.NoError(t, db.Create(&article).Error)
			warmed()
			for _, title := range []string{"second", "third"} {
				require.NoError(t, db.Model(&article).Update("title", title).Error)
				warmed()
				page := cache.Get(t, site, article.AbsoluteURL())
				require.Equal(t, http.StatusOK, page.Status, page.Body)
				require.True(t, page.Hit, "%s: the first visitor after the edit gets a hit (%s: %q)",
					kind, kind.HitHeader(), page.Header.Get(kind.HitHeader()))
				require.Equal(t, title, page.Body, "with the new content")
			}
			require.Equal(t, int64(3), renders.Load(), "the origin rendered once per change, for the warm-up")
			require.Empty(t, results, "each purge warmed the page once")
		})
	}
}
