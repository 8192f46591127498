package gormpurge_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/localcache"
)

// lcArticle is the model of the local-cache end-to-end test.
type lcArticle struct {
	ID    uint `gorm:"primaryKey"`
	Title string
}

func (a *lcArticle) AbsoluteURL() string { return fmt.Sprintf("/articles/%d", a.ID) }

// TestLocalCacheEndToEnd runs a small net/http app on GORM and SQLite behind
// the local cache, with the plugin purging through the dispatcher: a
// committed update is seen by the next visitor, a rolled-back one is not.
func TestLocalCacheEndToEnd(t *testing.T) {
	quietLog := slog.New(slog.DiscardHandler)
	db := openSQLite(t, &lcArticle{})
	store, err := localcache.NewMemoryStore(localcache.WithMaxBytes(1 << 20))
	require.NoError(t, err)
	local, err := localcache.NewBackend(store)
	require.NoError(t, err)
	d := purgeThrough(t, db, []backends.Backend{local}, &lcArticle{})

	article := lcArticle{Title: "first"}
	require.NoError(t, db.Create(&article).Error)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /articles/{id}", func(w http.ResponseWriter, r *http.Request) {
		var a lcArticle
		if err := db.WithContext(r.Context()).First(&a, r.PathValue("id")).Error; err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		_, _ = io.WriteString(w, a.Title)
	})
	srv := httptest.NewServer(localcache.Middleware(store, localcache.WithLogger(quietLog))(mux))
	t.Cleanup(srv.Close)

	visit := func(wantCache, wantBody string) {
		t.Helper()
		res, err := srv.Client().Get(srv.URL + article.AbsoluteURL())
		require.NoError(t, err)
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, wantCache, res.Header.Get("X-Cache"), "X-Cache")
		require.Equal(t, wantBody, string(body))
	}
	flush := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		require.NoError(t, d.Flush(ctx))
	}
	flush() // the Create's purge

	visit("MISS", "first")
	visit("HIT", "first")

	// Committed: the purge reaches the cache and the next visitor sees the
	// new title.
	require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
		return tx.Model(&article).Update("title", "second").Error
	}))
	flush()
	visit("MISS", "second")
	visit("HIT", "second")

	// Rolled back: no purge; the cached page, still right, keeps being
	// served.
	errRollback := errors.New("roll back")
	require.ErrorIs(t, db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&article).Update("title", "third").Error; err != nil {
			return err
		}
		return errRollback
	}), errRollback)
	flush()
	visit("HIT", "second")

	s, _ := d.Stats().Backend(localcache.BackendName)
	require.Zero(t, s.Failed+s.Dropped, "every purge was delivered")
}
