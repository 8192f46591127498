package cloudflare_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/internal/testdb"
)

// article is a model with a page of its own and a cache tag.
type article struct {
	ID   uint
	Slug string
}

func (a *article) AbsoluteURL() string      { return "/articles/" + a.Slug }
func (a *article) DependentPaths() []string { return []string{"/articles"} }
func (a *article) PurgeTags() []string      { return []string{"articles"} }

// A committed GORM change reaches Cloudflare once, batched; a rolled-back
// one never does.
func TestDispatcherEndToEnd(t *testing.T) {
	srv := newServer(t)
	b := newBackend(t, srv)
	d, err := dispatcher.New([]backends.Backend{b},
		dispatcher.WithLogger(slog.New(slog.DiscardHandler)),
		dispatcher.WithLinger(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		assert.NoError(t, d.Close(ctx))
	})

	db := testdb.OpenDSN(t, "sqlite", filepath.Join(t.TempDir(), "e2e.db"), nil)
	p := gormpurge.New(d, gormpurge.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, p.Register(&article{}))
	require.NoError(t, db.Use(p))
	require.NoError(t, db.AutoMigrate(&article{}))

	require.Error(t, db.Transaction(func(tx *gorm.DB) error {
		require.NoError(t, tx.Create(&article{Slug: "rolled-back"}).Error)
		return errors.New("undo")
	}))
	require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
		for i := range 150 {
			if err := tx.Create(&article{Slug: fmt.Sprintf("a%03d", i)}).Error; err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(t, d.Flush(t.Context()))

	files := srv.Files()
	assert.Len(t, files, 151, "150 pages and the list, once each")
	assert.NotContains(t, files, "https://www.example.com/articles/rolled-back")
	assert.Contains(t, files, "https://www.example.com/articles/a149")
	assert.Equal(t, []string{"articles"}, srv.Tags())
	assert.Len(t, srv.Purges(), 3, "two requests of URLs (100 and 51), one of tags")
	for _, p := range srv.Purges() {
		assert.LessOrEqual(t, len(p.Files), 100)
	}
	s, ok := d.Stats().Backend("cloudflare")
	require.True(t, ok)
	assert.Zero(t, s.Failed)
}
