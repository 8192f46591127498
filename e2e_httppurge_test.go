package gormpurge_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/httppurge"
	"github.com/gormpurge/gormpurge/internal/cachetest"
)

// hpArticle is the model of the HTTP cache end-to-end test.
type hpArticle struct {
	ID    uint `gorm:"primaryKey"`
	Title string
}

func (a *hpArticle) AbsoluteURL() string { return fmt.Sprintf("/articles/%d", a.ID) }

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
			mux := http.NewServeMux()
			mux.HandleFunc("GET /articles/{id}", func(w http.ResponseWriter, r *http.Request) {
				var a hpArticle
				if err := db.WithContext(r.Context()).First(&a, r.PathValue("id")).Error; err != nil {
					http.Error(w, err.Error(), http.StatusNotFound)
					return
				}
				w.Header().Set("Cache-Control", "public, max-age=3600")
				_, _ = io.WriteString(w, a.Title)
			})
			cache := cachetest.Start(t, kind, cachetest.StartOrigin(t, mux))

			b, err := httppurge.New(
				httppurge.WithNodes(cache.URL),
				httppurge.WithSiteHost(site),
				httppurge.WithTagMode(httppurge.NoTags()),
				httppurge.WithLogger(quietLog))
			require.NoError(t, err)
			d := purgeThrough(t, db, []backends.Backend{b}, &hpArticle{})

			article := hpArticle{Title: "first"}
			require.NoError(t, db.Create(&article).Error)

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

			visit(false, "first")
			visit(true, "first")

			// Committed: the purge reaches the cache, and the next visitor
			// gets the new title from the origin.
			require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
				return tx.Model(&article).Update("title", "second").Error
			}))
			flush()
			visit(false, "second")
			visit(true, "second")

			// Rolled back: no purge; the cached page, still right, stays.
			errRollback := errors.New("roll back")
			require.ErrorIs(t, db.Transaction(func(tx *gorm.DB) error {
				if err := tx.Model(&article).Update("title", "third").Error; err != nil {
					return err
				}
				return errRollback
			}), errRollback)
			flush()
			visit(true, "second")

			s, _ := d.Stats().Backend(b.Name())
			require.Zero(t, s.Failed+s.Dropped, "every purge was delivered")
			require.Positive(t, s.Delivered)
		})
	}
}
