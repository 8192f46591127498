package gormpurge_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Semantics 6 and 7: every write path purges the rows it touches, old and new
// state alike, even when the caller holds only a primary key.
func TestWritePaths(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		for _, tc := range []struct {
			name     string
			write    func(db *gorm.DB, p *Post) error
			wantURLs []string
			wantTag  bool // the post's own tag, post-<id>
		}{
			{"create one", func(db *gorm.DB, _ *Post) error {
				return db.Create(&Post{Slug: "new"}).Error
			}, []string{"/", "/posts/new"}, false},
			{"create slice", func(db *gorm.DB, _ *Post) error {
				return db.Create(&[]Post{{Slug: "n1"}, {Slug: "n2"}}).Error
			}, []string{"/", "/posts/n1", "/posts/n2"}, false},
			{"create slice of pointers", func(db *gorm.DB, _ *Post) error {
				return db.Create([]*Post{{Slug: "n3"}, {Slug: "n4"}}).Error
			}, []string{"/", "/posts/n3", "/posts/n4"}, false},
			{"create in batches", func(db *gorm.DB, _ *Post) error {
				ps := []Post{{Slug: "b1"}, {Slug: "b2"}, {Slug: "b3"}, {Slug: "b4"}, {Slug: "b5"}}
				return db.CreateInBatches(&ps, 2).Error
			}, []string{"/", "/posts/b1", "/posts/b2", "/posts/b3", "/posts/b4", "/posts/b5"}, false},
			{"save new", func(db *gorm.DB, _ *Post) error {
				return db.Save(&Post{Slug: "saved"}).Error
			}, []string{"/", "/posts/saved"}, false},
			{"save existing with a new slug", func(db *gorm.DB, p *Post) error {
				p.Slug = "renamed"
				return db.Save(p).Error
			}, []string{"/", "/posts/p", "/posts/renamed"}, true},
			{"save with a primary key that is not in the table (upsert branch)", func(db *gorm.DB, p *Post) error {
				return db.Save(&Post{ID: p.ID + 1000, Slug: "ghost"}).Error
			}, []string{"/", "/posts/ghost"}, false},
			{"updates struct", func(db *gorm.DB, p *Post) error {
				return db.Model(p).Updates(Post{Slug: "s2"}).Error
			}, []string{"/", "/posts/p", "/posts/s2"}, true},
			{"updates map", func(db *gorm.DB, p *Post) error {
				return db.Model(p).Updates(map[string]any{"slug": "m2"}).Error
			}, []string{"/", "/posts/m2", "/posts/p"}, true},
			{"updates with select leaves other columns alone", func(db *gorm.DB, p *Post) error {
				return db.Model(p).Select("Title").Updates(Post{Title: "t", Slug: "not-written"}).Error
			}, []string{"/", "/posts/p"}, true},
			{"update by primary key only", func(db *gorm.DB, p *Post) error {
				return db.Model(&Post{ID: p.ID}).Update("title", "x").Error
			}, []string{"/", "/posts/p"}, true},
			{"update by condition, no instance", func(db *gorm.DB, _ *Post) error {
				return db.Model(&Post{}).Where("slug = ?", "p").Update("slug", "cond").Error
			}, []string{"/", "/posts/cond", "/posts/p"}, true},
			{"updates by condition with an omitted column", func(db *gorm.DB, _ *Post) error {
				return db.Model(&Post{}).Where("slug = ?", "p").Omit("slug").Updates(map[string]any{"slug": "omitted", "title": "x"}).Error
			}, []string{"/", "/posts/p"}, true},
			{"updates by condition with a SQL expression", func(db *gorm.DB, _ *Post) error {
				return db.Model(&Post{}).Where("slug = ?", "p").Update("slug", gorm.Expr("REPLACE(slug, ?, ?)", "p", "x")).Error
			}, []string{"/", "/posts/p", "/posts/x"}, true},
			{"update column by condition", func(db *gorm.DB, p *Post) error {
				return db.Model(&Post{}).Where("id = ?", p.ID).UpdateColumn("slug", "col").Error
			}, []string{"/", "/posts/col", "/posts/p"}, true},
			{"update columns by condition", func(db *gorm.DB, _ *Post) error {
				return db.Model(&Post{}).Where("slug IN ?", []string{"p", "other"}).UpdateColumns(map[string]any{"views": gorm.Expr("views + 1")}).Error
			}, []string{"/", "/posts/other", "/posts/p"}, true},
			{"update matching nothing", func(db *gorm.DB, _ *Post) error {
				return db.Model(&Post{}).Where("slug = ?", "nope").Update("title", "x").Error
			}, nil, false},
			{"delete by primary key only", func(db *gorm.DB, p *Post) error {
				return db.Delete(&Post{}, p.ID).Error
			}, []string{"/", "/posts/p"}, true},
			{"delete instance holding only the key", func(db *gorm.DB, p *Post) error {
				return db.Delete(&Post{ID: p.ID}).Error
			}, []string{"/", "/posts/p"}, true},
			{"delete by condition", func(db *gorm.DB, _ *Post) error {
				return db.Where("slug = ?", "p").Delete(&Post{}).Error
			}, []string{"/", "/posts/p"}, true},
			{"unscoped hard delete", func(db *gorm.DB, p *Post) error {
				return db.Unscoped().Delete(&Post{}, p.ID).Error
			}, []string{"/", "/posts/p"}, true},
			{"upsert on a unique column", func(db *gorm.DB, _ *Post) error {
				return db.Clauses(clause.OnConflict{
					Columns:   []clause.Column{{Name: "slug"}},
					DoUpdates: clause.AssignmentColumns([]string{"title"}),
				}).Create(&Post{Slug: "p", Title: "upserted"}).Error
			}, []string{"/", "/posts/p"}, true},
			{"upsert on the primary key changing the slug", func(db *gorm.DB, p *Post) error {
				return db.Clauses(clause.OnConflict{UpdateAll: true}).Create(&Post{ID: p.ID, Slug: "up"}).Error
			}, []string{"/", "/posts/p", "/posts/up"}, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				require.NoError(t, e.db.Session(&gorm.Session{AllowGlobalUpdate: true}).Unscoped().Where("1 = 1").Delete(&Post{}).Error)
				p := e.seedPost(t, "p")
				e.seedPost(t, "other")
				e.rec.Reset()
				require.NoError(t, tc.write(e.db, p))
				assert.Equal(t, tc.wantURLs, e.rec.URLs())
				if tc.wantTag {
					assert.Contains(t, e.rec.Tags(), fmt.Sprintf("post-%d", p.ID))
				}
				assert.Empty(t, e.errs.all())
			})
		}
	})
}

func TestSoftDelete(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seedPost(t, "soft")
		require.NoError(t, e.db.Delete(p).Error)
		assert.Equal(t, []string{"/", "/posts/soft"}, e.rec.URLs())
		var n int64
		require.NoError(t, e.other.Unscoped().Model(&Post{}).Where("slug = ?", "soft").Count(&n).Error)
		assert.Equal(t, int64(1), n, "the row is soft-deleted, not gone")

		e.rec.Reset()
		require.NoError(t, e.db.Delete(&Post{}, p.ID).Error)
		assert.Empty(t, e.rec.Requests(), "deleting an already soft-deleted row changes nothing")

		require.NoError(t, e.db.Unscoped().Delete(&Post{}, p.ID).Error)
		assert.Equal(t, []string{"/", "/posts/soft"}, e.rec.URLs(), "a hard delete of a soft-deleted row purges it as it was")
	})
}

// Bulk updates read rows in batches: every row is purged.
func TestBulkUpdateByCondition(t *testing.T) {
	e := newEnv(t, "sqlite", &gorm.Config{})
	const n = 1234
	posts := make([]Post, n)
	for i := range posts {
		posts[i].Slug = fmt.Sprintf("bulk-%04d", i)
	}
	require.NoError(t, e.db.CreateInBatches(&posts, 200).Error)
	e.rec.Reset()
	require.NoError(t, e.db.Model(&Post{}).Where("slug LIKE ?", "bulk-%").Update("slug", gorm.Expr("slug || '-x'")).Error)
	urls := e.rec.URLs()
	assert.Len(t, urls, 2*n+1)
	assert.Contains(t, urls, "/posts/bulk-0000")
	assert.Contains(t, urls, "/posts/bulk-1233-x")
}
