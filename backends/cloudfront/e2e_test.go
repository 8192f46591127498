package cloudfront_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// product is the model of the end-to-end test: its page and the category
// listing it appears on.
type product struct {
	ID       uint `gorm:"primaryKey"`
	Category string
	Name     string
}

func (p *product) AbsoluteURL() string      { return fmt.Sprintf("/products/%d", p.ID) }
func (p *product) DependentPaths() []string { return []string{"/categories/" + p.Category} }

// TestEndToEnd runs GORM on SQLite with the plugin, the dispatcher and the
// backend against the fake: a committed transaction's pages reach
// CloudFront once, in one invalidation; a rolled-back one sends nothing.
func TestEndToEnd(t *testing.T) {
	srv := newFake(t)
	b := newBackend(t, srv)
	db, err := gorm.Open(sqlite.Open(filepath.Join(t.TempDir(), "e2e.db")), &gorm.Config{Logger: logger.Discard})
	require.NoError(t, err)
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	require.NoError(t, db.AutoMigrate(&product{}))
	d, err := dispatcher.New([]backends.Backend{b}, dispatcher.WithLogger(quiet))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, d.Close(ctx))
	})
	p := gormpurge.New(d, gormpurge.WithLogger(quiet))
	require.NoError(t, p.Register(&product{}))
	require.NoError(t, db.Use(p))

	lamp := product{Category: "lighting", Name: "Lamp"}
	require.NoError(t, db.Create(&lamp).Error)
	require.NoError(t, d.Flush(t.Context()))
	srv.Reset()

	require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&lamp).Update("category", "furniture").Error; err != nil {
			return err
		}
		require.NoError(t, d.Flush(t.Context()))
		require.Empty(t, srv.Invalidations(), "nothing is invalidated before the commit")
		return tx.Model(&lamp).Update("name", "Desk lamp").Error
	}))
	require.NoError(t, d.Flush(t.Context()))
	invs := srv.Invalidations()
	require.Len(t, invs, 1, "one invalidation for the transaction")
	assert.ElementsMatch(t, []string{"/products/1", "/categories/lighting", "/categories/furniture"}, invs[0].Items, "each page exactly once")

	srv.Reset()
	errRollback := errors.New("roll back")
	require.ErrorIs(t, db.Transaction(func(tx *gorm.DB) error {
		require.NoError(t, tx.Model(&lamp).Update("name", "Floor lamp").Error)
		return errRollback
	}), errRollback)
	require.NoError(t, d.Flush(t.Context()))
	assert.Empty(t, srv.Invalidations(), "a rolled-back transaction invalidates nothing")
}
