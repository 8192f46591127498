package gormpurge_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/internal/testdb"
	"github.com/gormpurge/gormpurge/purgetest"
)

// The plugin's price, in statements that reach the database driver: for
// each common write shape, the plugin sends exactly as many statements as
// plain GORM plus extra (the read of the affected rows for updates and
// deletes; nothing for creates and for models that are not registered), on
// every database. A shape that gains a statement fails here.
func TestStatementCount(t *testing.T) {
	for _, kind := range testdb.Kinds {
		t.Run(kind, func(t *testing.T) {
			dsn := testdb.DSN(t, kind)
			plain, plainCount := testdb.OpenCounted(t, kind, dsn, nil)
			withPlugin, pluginCount := testdb.OpenCounted(t, kind, dsn, nil)
			rec := purgetest.NewRecorder()
			p := gormpurge.New(rec)
			require.NoError(t, p.Register(&Post{}, &Tag{}, &Comment{}))
			require.NoError(t, withPlugin.Use(p))
			require.NoError(t, plain.AutoMigrate(&Post{}, &Tag{}, &Comment{}, &Log{}))

			seq := 0
			for _, tc := range []struct {
				name   string
				write  func(db *gorm.DB, p *Post) error
				extra  int
				purges bool // the plugin hands off targets for this write
			}{
				{"create one", func(db *gorm.DB, _ *Post) error {
					seq++
					return db.Create(&Post{Slug: fmt.Sprint("new-", seq)}).Error
				}, 0, true},
				{"create in a transaction", func(db *gorm.DB, _ *Post) error {
					seq++
					return db.Transaction(func(tx *gorm.DB) error { return tx.Create(&Post{Slug: fmt.Sprint("tx-", seq)}).Error })
				}, 0, true},
				{"create slice", func(db *gorm.DB, _ *Post) error {
					seq++
					return db.Create(&[]Post{{Slug: fmt.Sprint("s1-", seq)}, {Slug: fmt.Sprint("s2-", seq)}}).Error
				}, 0, true},
				{"save an instance", func(db *gorm.DB, p *Post) error {
					p.Title = "saved"
					return db.Save(p).Error
				}, 1, true},
				{"updates struct by instance", func(db *gorm.DB, p *Post) error {
					return db.Model(p).Updates(Post{Title: "struct", Views: 3}).Error
				}, 1, true},
				{"updates map by instance", func(db *gorm.DB, p *Post) error {
					return db.Model(p).Updates(map[string]any{"title": "map", "views": 0}).Error
				}, 1, true},
				{"updates struct with select", func(db *gorm.DB, p *Post) error {
					return db.Model(p).Select("Title", "Views").Updates(Post{Title: "selected"}).Error
				}, 1, true},
				{"update by primary key", func(db *gorm.DB, p *Post) error {
					return db.Model(&Post{ID: p.ID}).Update("title", "by-key").Error
				}, 1, true},
				{"update by condition", func(db *gorm.DB, p *Post) error {
					return db.Model(&Post{}).Where("slug = ?", p.Slug).Update("title", "by-cond").Error
				}, 1, true},
				{"update column by condition", func(db *gorm.DB, p *Post) error {
					return db.Model(&Post{}).Where("id = ?", p.ID).UpdateColumn("title", "column").Error
				}, 1, true},
				{"updates in a transaction", func(db *gorm.DB, p *Post) error {
					return db.Transaction(func(tx *gorm.DB) error {
						return tx.Model(p).Updates(Post{Title: "in-tx"}).Error
					})
				}, 1, true},
				{"delete an instance", func(db *gorm.DB, p *Post) error {
					return db.Delete(p).Error
				}, 1, true},
				{"delete by primary key", func(db *gorm.DB, p *Post) error {
					return db.Delete(&Post{}, p.ID).Error
				}, 1, true},
				{"delete by condition", func(db *gorm.DB, p *Post) error {
					return db.Where("slug = ?", p.Slug).Delete(&Post{}).Error
				}, 1, true},
				{"unscoped delete by primary key", func(db *gorm.DB, p *Post) error {
					return db.Unscoped().Delete(&Post{}, p.ID).Error
				}, 1, true},
				{"create an unregistered model", func(db *gorm.DB, _ *Post) error {
					return db.Create(&Log{Msg: "m"}).Error
				}, 0, false},
				{"update an unregistered model", func(db *gorm.DB, _ *Post) error {
					return db.Model(&Log{}).Where("msg = ?", "m").Update("msg", "n").Error
				}, 0, false},
			} {
				t.Run(tc.name, func(t *testing.T) {
					run := func(db *gorm.DB, c *testdb.Counter) []string {
						seq++
						post := &Post{Slug: fmt.Sprint("p-", seq), Title: "t", Views: 1}
						require.NoError(t, plain.Create(post).Error)
						c.Reset()
						require.NoError(t, tc.write(db, post))
						return c.Statements()
					}
					want := run(plain, plainCount)
					rec.Reset()
					got := run(withPlugin, pluginCount)
					assert.Len(t, got, len(want)+tc.extra, "plain GORM:\n%s\nwith the plugin:\n%s",
						strings.Join(want, "\n"), strings.Join(got, "\n"))
					if tc.purges {
						assert.NotEmpty(t, rec.URLs(), "the plugin purged the write")
					}
				})
			}
		})
	}
}
