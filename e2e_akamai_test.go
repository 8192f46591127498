package gormpurge_test

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/akamai"
	"github.com/gormpurge/gormpurge/backends/akamai/akamaitest"
)

// akProduct is the model of the Akamai end-to-end test: its page, the
// category listing it appears on, and a cache tag.
type akProduct struct {
	ID       uint `gorm:"primaryKey"`
	Category string
	Name     string
}

func (p *akProduct) AbsoluteURL() string      { return fmt.Sprintf("/products/%d", p.ID) }
func (p *akProduct) DependentPaths() []string { return []string{"/categories/" + p.Category} }
func (p *akProduct) PurgeTags() []string      { return []string{fmt.Sprintf("product-%d", p.ID)} }

// TestAkamaiEndToEnd runs GORM on SQLite with the plugin, the dispatcher and
// the Akamai backend against the fake Fast Purge API: a committed
// transaction's pages and tags reach Akamai exactly once, a rolled-back one
// sends nothing.
func TestAkamaiEndToEnd(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	srv := akamaitest.NewServer()
	t.Cleanup(srv.Close)
	edgerc := filepath.Join(t.TempDir(), ".edgerc")
	require.NoError(t, srv.WriteEdgerc(edgerc, "ccu"))

	b, err := akamai.New(
		akamai.WithEdgerc(edgerc, "ccu"),
		akamai.WithHTTPClient(srv.Client()),
		akamai.WithHostnames("www.example.com"),
		akamai.WithLogger(quiet),
	)
	require.NoError(t, err)
	db := openSQLite(t, &akProduct{})
	d := purgeThrough(t, db, []backends.Backend{b}, &akProduct{})

	lamp := akProduct{Category: "lighting", Name: "Lamp"}
	require.NoError(t, db.Create(&lamp).Error)
	require.NoError(t, d.Flush(t.Context()))
	srv.Reset()

	// A transaction that moves the lamp to another category: both listings
	// and the lamp's page go, once, after the commit.
	require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&lamp).Update("category", "furniture").Error; err != nil {
			return err
		}
		require.NoError(t, d.Flush(t.Context()))
		require.Empty(t, srv.Purges(), "nothing is purged before the commit")
		return tx.Model(&lamp).Update("name", "Desk lamp").Error
	}))
	require.NoError(t, d.Flush(t.Context()))
	assert.ElementsMatch(t, []string{
		"https://www.example.com/products/1",
		"https://www.example.com/categories/lighting",
		"https://www.example.com/categories/furniture",
	}, srv.Objects(akamai.KindURL), "each page exactly once")
	assert.Equal(t, []string{"product-1"}, srv.Objects(akamai.KindTag))

	// A rolled-back transaction sends nothing.
	srv.Reset()
	errRollback := errors.New("roll back")
	require.ErrorIs(t, db.Transaction(func(tx *gorm.DB) error {
		require.NoError(t, tx.Model(&lamp).Update("name", "Floor lamp").Error)
		return errRollback
	}), errRollback)
	require.NoError(t, d.Flush(t.Context()))
	assert.Empty(t, srv.Purges())
}
