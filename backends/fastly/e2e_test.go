package fastly_test

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
	"github.com/gormpurge/gormpurge/backends/fastly"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/internal/testdb"
)

// product is the model of the end-to-end test: its page, the category
// listing it appears on, and a surrogate key.
type product struct {
	ID       uint `gorm:"primaryKey"`
	Category string
	Name     string
}

func (p *product) AbsoluteURL() string      { return fmt.Sprintf("/products/%d", p.ID) }
func (p *product) DependentPaths() []string { return []string{"/categories/" + p.Category} }
func (p *product) PurgeTags() []string      { return []string{fmt.Sprintf("product-%d", p.ID)} }

// TestEndToEnd runs GORM on SQLite with the plugin, the dispatcher and the
// Fastly backend against the fake: a committed transaction's pages and
// keys reach Fastly exactly once, the keys batched in one request; a
// rolled-back one sends nothing.
func TestEndToEnd(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	srv := newFake(t)
	b, err := fastly.New(
		fastly.WithEndpoint(srv.URL()),
		fastly.WithHTTPClient(srv.Client()),
		fastly.WithAPIToken(srv.Token()),
		fastly.WithServiceID(srv.ServiceID()),
		fastly.WithHostnames("www.example.com"),
		fastly.WithLogger(quiet),
	)
	require.NoError(t, err)

	db := testdb.OpenDSN(t, "sqlite", filepath.Join(t.TempDir(), "e2e.db"), nil)
	require.NoError(t, db.AutoMigrate(&product{}))
	d, err := dispatcher.New([]backends.Backend{b}, dispatcher.WithLogger(quiet))
	require.NoError(t, err)
	t.Cleanup(func() { // closes b too
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, d.Close(ctx))
	})
	p := gormpurge.New(d, gormpurge.WithLogger(quiet))
	require.NoError(t, p.Register(&product{}))
	require.NoError(t, db.Use(p))

	lamp, desk := product{Category: "lighting", Name: "Lamp"}, product{Category: "furniture", Name: "Desk"}
	require.NoError(t, db.Create(&lamp).Error)
	require.NoError(t, db.Create(&desk).Error)
	require.NoError(t, d.Flush(t.Context()))
	srv.Reset()

	// A transaction that changes both products: their pages and listings
	// go once, after the commit, and their keys in one batch.
	require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&lamp).Update("category", "furniture").Error; err != nil {
			return err
		}
		require.NoError(t, d.Flush(t.Context()))
		require.Empty(t, srv.Purges(), "nothing is purged before the commit")
		return tx.Model(&desk).Update("name", "Writing desk").Error
	}))
	require.NoError(t, d.Flush(t.Context()))
	assert.ElementsMatch(t, []string{
		"www.example.com/products/1",
		"www.example.com/products/2",
		"www.example.com/categories/lighting",
		"www.example.com/categories/furniture",
	}, srv.URLs(), "each page exactly once")
	var batches [][]string
	for _, p := range srv.Purges() {
		if p.Keys != nil {
			batches = append(batches, p.Keys)
		}
	}
	require.Len(t, batches, 1, "the keys in one batch request")
	assert.ElementsMatch(t, []string{"product-1", "product-2"}, batches[0])

	// A rolled-back transaction sends nothing.
	srv.Reset()
	errRollback := errors.New("roll back")
	require.ErrorIs(t, db.Transaction(func(tx *gorm.DB) error {
		require.NoError(t, tx.Model(&lamp).Update("name", "Floor lamp").Error)
		return errRollback
	}), errRollback)
	require.NoError(t, d.Flush(t.Context()))
	assert.Empty(t, srv.Purges())
	assert.Empty(t, srv.Responses(), "no request at all")
}
