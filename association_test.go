package gormpurge_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Semantics 8: association operations purge both sides of every link that
// changes, and has-many children and parents per their interfaces.
func TestAssociations(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		var ids struct{ post uint }
		comments := func() string { return fmt.Sprintf("/posts/%d/comments", ids.post) }
		for _, tc := range []struct {
			name  string
			write func(db *gorm.DB, p *Post) error
			want  func() []string
		}{
			{"nested create saves tags and comments", func(db *gorm.DB, _ *Post) error {
				p := &Post{Slug: "nested", Tags: []Tag{{Name: "rust"}, {Name: "new"}}, Comments: []Comment{{Body: "hi"}}}
				err := db.Create(p).Error
				ids.post = p.ID
				return err
			}, func() []string { return []string{"/", "/posts/nested", comments(), "/tags/new", "/tags/rust"} }},
			{"append a new tag", func(db *gorm.DB, p *Post) error {
				return db.Model(&Post{ID: p.ID}).Association("Tags").Append(&Tag{Name: "fresh"})
			}, func() []string { return []string{"/", "/posts/p", "/tags/fresh"} }},
			{"append to a loaded post re-saves the tags it holds", func(db *gorm.DB, p *Post) error {
				// GORM re-writes every link already on the instance (a
				// no-op in SQL); the plugin purges them too.
				return db.Model(p).Association("Tags").Append(&Tag{Name: "fresh"})
			}, func() []string { return []string{"/", "/posts/p", "/tags/db", "/tags/fresh", "/tags/go"} }},
			{"append an existing tag", func(db *gorm.DB, p *Post) error {
				var tag Tag
				require.NoError(t, db.Where("name = ?", "spare").First(&tag).Error)
				return db.Model(&Post{ID: p.ID}).Association("Tags").Append(&tag)
			}, func() []string { return []string{"/", "/posts/p", "/tags/spare"} }},
			{"replace tags", func(db *gorm.DB, p *Post) error {
				return db.Model(p).Association("Tags").Replace(&Tag{Name: "only"})
			}, func() []string { return []string{"/", "/posts/p", "/tags/db", "/tags/go", "/tags/only"} }},
			{"delete one tag link", func(db *gorm.DB, p *Post) error {
				var tag Tag
				require.NoError(t, db.Where("name = ?", "go").First(&tag).Error)
				return db.Model(&Post{ID: p.ID}).Association("Tags").Delete(&tag)
			}, func() []string { return []string{"/", "/posts/p", "/tags/go"} }},
			{"clear tags", func(db *gorm.DB, p *Post) error {
				return db.Model(p).Association("Tags").Clear()
			}, func() []string { return []string{"/", "/posts/p", "/tags/db", "/tags/go"} }},
			{"delete a link given only the tag's key", func(db *gorm.DB, p *Post) error {
				return db.Model(&Post{ID: p.ID}).Association("Tags").Delete(&Tag{ID: p.Tags[1].ID})
			}, func() []string { return []string{"/", "/posts/p", "/tags/db"} }},
			{"append a comment", func(db *gorm.DB, p *Post) error {
				return db.Model(p).Association("Comments").Append(&Comment{Body: "new"})
			}, func() []string { return []string{"/", "/posts/p", comments()} }},
			{"delete a comment link orphans it", func(db *gorm.DB, p *Post) error {
				return db.Model(p).Association("Comments").Delete(&p.Comments[0])
			}, func() []string { return []string{"/comments/orphans", comments()} }},
			{"clear comments", func(db *gorm.DB, p *Post) error {
				return db.Model(p).Association("Comments").Clear()
			}, func() []string { return []string{"/comments/orphans", comments()} }},
			{"replace comments", func(db *gorm.DB, p *Post) error {
				return db.Model(p).Association("Comments").Replace(&Comment{Body: "replacement"})
			}, func() []string { return []string{"/", "/comments/orphans", "/posts/p", comments()} }},
			{"select tags and delete the post", func(db *gorm.DB, p *Post) error {
				return db.Select("Tags").Delete(p).Error
			}, func() []string { return []string{"/", "/posts/p", "/tags/db", "/tags/go"} }},
			{"select associations and delete the post", func(db *gorm.DB, p *Post) error {
				return db.Select(clause.Associations).Delete(p).Error
			}, func() []string { return []string{"/", "/posts/p", comments(), "/tags/db", "/tags/go"} }},
			{"a rolled-back append purges nothing", func(db *gorm.DB, p *Post) error {
				err := db.Transaction(func(tx *gorm.DB) error {
					require.NoError(t, tx.Model(p).Association("Tags").Append(&Tag{Name: "ghost"}))
					return errors.New("roll back")
				})
				if err.Error() != "roll back" {
					return err
				}
				return nil
			}, func() []string { return nil }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				require.NoError(t, e.db.Exec("DELETE FROM post_tags").Error)
				for _, m := range []any{&Comment{}, &Post{}, &Tag{}} {
					require.NoError(t, e.db.Session(&gorm.Session{AllowGlobalUpdate: true}).Unscoped().Delete(m).Error)
				}
				p := &Post{Slug: "p", Tags: []Tag{{Name: "go"}, {Name: "db"}}, Comments: []Comment{{Body: "first"}}}
				require.NoError(t, e.db.Create(p).Error)
				require.NoError(t, e.db.Create(&Tag{Name: "spare"}).Error)
				ids.post = p.ID
				e.rec.Reset()
				require.NoError(t, tc.write(e.db, p))
				want := tc.want()
				slices.Sort(want)
				assert.Equal(t, want, e.rec.URLs())
				assert.Empty(t, e.errs.all())
			})
		}
	})
}
