package gormpurge_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/internal/testdb"
	"github.com/gormpurge/gormpurge/purgetest"
)

// RevPage is a registered model whose BeforeUpdate hook changes a column the
// update did not name, and whose URL depends on it.
type RevPage struct {
	ID    uint   `gorm:"primaryKey"`
	Slug  string `gorm:"size:191"`
	Title string `gorm:"size:191"`
	Rev   int
	Draft bool
}

func (p *RevPage) AbsoluteURL() string { return fmt.Sprintf("/pages/%s/r%d", p.Slug, p.Rev) }

// BeforeUpdate bumps the revision, through SetColumn so that GORM writes it
// whatever form the update takes.
func (p *RevPage) BeforeUpdate(tx *gorm.DB) error {
	tx.Statement.SetColumn("Rev", p.Rev+1)
	return nil
}

// The plugin works out the new state of updated rows without reading them
// again where it can (GORM's own SET clause applied to the rows read
// before): whatever the update's form, the URLs it purges are those of the
// rows as they were and as a fresh read finds them afterwards.
func TestUpdatePurgesTheNewStateAFreshReadFinds(t *testing.T) {
	for _, kind := range testdb.Kinds {
		t.Run(kind, func(t *testing.T) {
			dsn := testdb.DSN(t, kind)
			db := testdb.OpenDSN(t, kind, dsn, nil)
			other := testdb.OpenDSN(t, kind, dsn, nil)
			rec := purgetest.NewRecorder()
			p := gormpurge.New(rec)
			require.NoError(t, p.Register(&RevPage{}))
			require.NoError(t, db.Use(p))
			require.NoError(t, db.AutoMigrate(&RevPage{}))

			for _, tc := range []struct {
				name  string
				write func(db *gorm.DB, pg *RevPage) error
			}{
				{"updates struct", func(db *gorm.DB, pg *RevPage) error {
					return db.Model(pg).Updates(RevPage{Slug: "struct"}).Error
				}},
				{"updates struct skips zero values", func(db *gorm.DB, pg *RevPage) error {
					return db.Model(pg).Updates(RevPage{Title: "t2", Slug: ""}).Error
				}},
				{"updates struct with a selected zero value", func(db *gorm.DB, pg *RevPage) error {
					return db.Model(pg).Select("Slug", "Draft").Updates(RevPage{Title: "not written"}).Error
				}},
				{"updates struct with an omitted column", func(db *gorm.DB, pg *RevPage) error {
					return db.Model(pg).Omit("Slug").Updates(RevPage{Slug: "omitted", Title: "t3"}).Error
				}},
				{"updates map", func(db *gorm.DB, pg *RevPage) error {
					return db.Model(pg).Updates(map[string]any{"slug": "map", "draft": false}).Error
				}},
				{"updates map by field name", func(db *gorm.DB, pg *RevPage) error {
					return db.Model(pg).Updates(map[string]any{"Slug": "field-name"}).Error
				}},
				{"update one column", func(db *gorm.DB, pg *RevPage) error {
					return db.Model(pg).Update("slug", "one").Error
				}},
				{"update by condition", func(db *gorm.DB, pg *RevPage) error {
					return db.Model(&RevPage{}).Where("id = ?", pg.ID).Update("slug", "cond").Error
				}},
				{"update column skips the hook", func(db *gorm.DB, pg *RevPage) error {
					return db.Model(pg).UpdateColumn("slug", "no-hook").Error
				}},
				{"update with a SQL expression", func(db *gorm.DB, pg *RevPage) error {
					return db.Model(pg).Update("slug", gorm.Expr("title")).Error
				}},
				{"update with a SET clause built by hand", func(db *gorm.DB, pg *RevPage) error {
					return db.Model(&RevPage{}).Where("id = ?", pg.ID).Clauses(clause.Set{{Column: clause.Column{Name: "slug"}, Value: "by-hand"}}).
						Updates(map[string]any{"title": "ignored"}).Error
				}},
				{"save", func(db *gorm.DB, pg *RevPage) error {
					pg.Slug = "saved"
					return db.Save(pg).Error
				}},
				{"updates in a transaction", func(db *gorm.DB, pg *RevPage) error {
					return db.Transaction(func(tx *gorm.DB) error {
						return tx.Model(pg).Updates(RevPage{Slug: "in-tx"}).Error
					})
				}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					pg := &RevPage{Slug: "p", Title: "t", Rev: 1, Draft: true}
					require.NoError(t, other.Create(pg).Error)
					old := pg.AbsoluteURL()
					rec.Reset()
					require.NoError(t, tc.write(db, pg))

					var fresh RevPage
					require.NoError(t, other.First(&fresh, pg.ID).Error)
					want := []string{old, fresh.AbsoluteURL()}
					slices.Sort(want)
					assert.Equal(t, slices.Compact(want), rec.URLs(), "the old and the new state, as a fresh read finds it")
				})
			}

			t.Run("a statement reused for a second update builds its own SET clause", func(t *testing.T) {
				pg := &RevPage{Slug: "reuse", Title: "t"}
				require.NoError(t, other.Create(pg).Error)
				rec.Reset()
				q := db.Model(pg)
				require.NoError(t, q.Updates(RevPage{Slug: "first"}).Error)
				require.NoError(t, q.Updates(RevPage{Title: "second"}).Error)
				var fresh RevPage
				require.NoError(t, other.First(&fresh, pg.ID).Error)
				assert.Equal(t, "first", fresh.Slug)
				assert.Equal(t, "second", fresh.Title)
				assert.Contains(t, rec.URLs(), fresh.AbsoluteURL())
			})
		})
	}
}
