package gormpurge_test

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/internal/testdb"
	"github.com/gormpurge/gormpurge/purgetest"
)

// pgPair opens a fresh PostgreSQL schema twice through counting drivers:
// once with plain GORM, once with the plugin (Post registered).
func pgPair(t *testing.T) (plain, withPlugin *gorm.DB, pluginCount *testdb.Counter, errs *errorLog) {
	t.Helper()
	dsn := testdb.DSN(t, "postgres")
	plain, _ = testdb.OpenCounted(t, "postgres", dsn, nil)
	withPlugin, pluginCount = testdb.OpenCounted(t, "postgres", dsn, nil)
	errs = &errorLog{ch: make(chan error, 100)}
	p := gormpurge.New(purgetest.NewRecorder(), gormpurge.WithErrorHandler(errs.handler), gormpurge.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, p.Register(&Post{}, &Tag{}, &Comment{}))
	require.NoError(t, withPlugin.Use(p))
	require.NoError(t, plain.AutoMigrate(&Post{}, &Tag{}, &Comment{}, &Log{}))
	return plain, withPlugin, pluginCount, errs
}

// On PostgreSQL the plugin reads the rows an update or delete touches
// without a savepoint when the read names nothing the statement does not
// (its table, its WHERE clause), and inside one when the statement has more
// than the read carries: only there could the read fail while the write
// succeeds.
func TestPostgresGuardsOnlyShapesTheReadCannotFollow(t *testing.T) {
	plain, db, count, _ := pgPair(t)
	require.NoError(t, plain.Exec("CREATE VIEW post_view AS SELECT * FROM posts").Error)
	require.NoError(t, plain.Create(&Tag{Name: "go"}).Error)
	for _, tc := range []struct {
		name    string
		write   func(db *gorm.DB, p *Post) error
		guarded bool
	}{
		{"update by instance", func(db *gorm.DB, p *Post) error {
			return db.Model(p).Updates(Post{Title: "x"}).Error
		}, false},
		{"update by condition with order and limit", func(db *gorm.DB, p *Post) error {
			return db.Model(&Post{}).Where("slug = ?", p.Slug).Order("id").Limit(1).Update("title", "x").Error
		}, false},
		{"update naming the model's own table", func(db *gorm.DB, p *Post) error {
			return db.Model(&Post{}).Table("posts").Where("id = ?", p.ID).Update("title", "x").Error
		}, false},
		{"update returning", func(db *gorm.DB, p *Post) error {
			return db.Model(p).Clauses(clause.Returning{}).Updates(Post{Title: "x"}).Error
		}, false},
		{"delete by primary key", func(db *gorm.DB, p *Post) error {
			return db.Delete(&Post{}, p.ID).Error
		}, false},
		{"update from another table", func(db *gorm.DB, p *Post) error {
			return db.Model(&Post{}).Clauses(clause.From{Tables: []clause.Table{{Name: "tags"}}}).
				Where("posts.id = ? AND tags.name = ?", p.ID, "go").Update("title", "x").Error
		}, true},
		{"update through a view", func(db *gorm.DB, p *Post) error {
			return db.Model(&Post{}).Table("post_view").Where("id = ?", p.ID).Update("title", "x").Error
		}, true},
		{"update with a locking clause", func(db *gorm.DB, p *Post) error {
			return db.Model(p).Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate}).Updates(Post{Title: "x"}).Error
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Post{Slug: "g-" + strings.ReplaceAll(tc.name, " ", "-"), Title: "t"}
			require.NoError(t, plain.Create(p).Error)
			count.Reset()
			require.NoError(t, tc.write(db, p))
			hasSavepoint := slices.ContainsFunc(count.Statements(), func(s string) bool { return strings.HasPrefix(s, "SAVEPOINT") })
			assert.Equal(t, tc.guarded, hasSavepoint, "statements:\n%s", strings.Join(count.Statements(), "\n"))
		})
	}
}

// An unguarded read fails only where the statement fails too, and then the
// caller gets the database's own error, as with plain GORM, not
// PostgreSQL's "current transaction is aborted"; nothing is reported as the
// plugin's failure.
func TestPostgresUnguardedReadFailsAsTheWriteWould(t *testing.T) {
	plain, db, _, errs := pgPair(t)
	p := &Post{Slug: "locked", Title: "t"}
	require.NoError(t, plain.Create(p).Error)

	sqlState := func(err error) string {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return pgErr.Code
		}
		return ""
	}
	t.Run("a condition on a column that does not exist", func(t *testing.T) {
		write := func(db *gorm.DB) error {
			return db.Model(&Post{}).Where("nope = ?", 1).Update("title", "x").Error
		}
		want, got := write(plain), write(db)
		require.Error(t, want)
		assert.Equal(t, sqlState(want), sqlState(got), "plain GORM: %v\nwith the plugin: %v", want, got)
		assert.Equal(t, "42703", sqlState(got))
	})
	t.Run("a row locked by another transaction", func(t *testing.T) {
		holder := plain.Begin()
		require.NoError(t, holder.Error)
		t.Cleanup(func() { holder.Rollback() })
		require.NoError(t, holder.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate}).First(&Post{}, p.ID).Error)
		write := func(db *gorm.DB) error {
			return db.Transaction(func(tx *gorm.DB) error {
				if err := tx.Exec("SET LOCAL lock_timeout = '50ms'").Error; err != nil {
					return err
				}
				return tx.Model(&Post{}).Where("id = ?", p.ID).Update("title", "x").Error
			})
		}
		want, got := write(plain), write(db)
		assert.Equal(t, "55P03", sqlState(want), "lock_not_available: %v", want)
		assert.Equal(t, sqlState(want), sqlState(got), "plain GORM: %v\nwith the plugin: %v", want, got)
	})
	assert.Empty(t, errs.all(), "the statement's own failure is not the plugin's")

	// And the transaction goes on after the plugin's read in a guarded shape
	// fails (see TestFailedLookupDoesNotFailTheWrite); in an unguarded one,
	// the caller's transaction is as usable as with plain GORM.
	err := db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(p).Updates(Post{Title: "in-tx"}).Error; err != nil {
			return err
		}
		return tx.Model(&Post{}).Where("id = ?", p.ID).Update("views", 2).Error
	})
	require.NoError(t, err)
	var fresh Post
	require.NoError(t, plain.First(&fresh, p.ID).Error)
	assert.Equal(t, "in-tx", fresh.Title)
	assert.Equal(t, 2, fresh.Views)
}
