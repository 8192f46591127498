package gormpurge_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	"gorm.io/plugin/dbresolver"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/purgetest"
)

// transactionSuite exercises the transaction semantics through db, which may
// be a session of e.db.
func transactionSuite(t *testing.T, e *env, db *gorm.DB) {
	t.Helper()
	require.NoError(t, e.other.Session(&gorm.Session{AllowGlobalUpdate: true}).Unscoped().Delete(&Post{}).Error)
	e.rec.Reset()
	require.NoError(t, db.Create(&Post{Slug: "one"}).Error)
	require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
		require.NoError(t, tx.Model(&Post{}).Where("slug = ?", "one").Update("slug", "two").Error)
		_ = tx.Transaction(func(tx2 *gorm.DB) error {
			require.NoError(t, tx2.Create(&Post{Slug: "dropped"}).Error)
			return errors.New("roll back the savepoint")
		})
		return tx.Create(&Post{Slug: "three"}).Error
	}))
	tx := db.Begin()
	require.NoError(t, tx.Delete(&Post{}, "slug = ?", "three").Error)
	require.NoError(t, tx.Rollback().Error)
	require.NoError(t, db.Where("slug = ?", "two").Delete(&Post{}).Error)
	assert.Equal(t, [][]string{
		{"/", "/posts/one"},
		{"/", "/posts/one", "/posts/three", "/posts/two"},
		{"/", "/posts/two"},
	}, e.urlSets())
	assert.Empty(t, e.errs.all())
}

// Semantics 9: PrepareStmt, Session, WithContext, Debug.
func TestSessionsAndPreparedStatements(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		t.Run("session prepare", func(t *testing.T) {
			transactionSuite(t, e, e.db.Session(&gorm.Session{PrepareStmt: true}))
		})
	})
	for _, kind := range []string{"sqlite", "postgres", "mysql"} {
		t.Run("config prepare/"+kind, func(t *testing.T) {
			e := newEnv(t, kind, &gorm.Config{PrepareStmt: true})
			transactionSuite(t, e, e.db)
		})
	}
	e := newEnv(t, "sqlite", &gorm.Config{})
	t.Run("debug", func(t *testing.T) {
		transactionSuite(t, e, e.db.Session(&gorm.Session{Logger: logger.Discard}).Debug())
	})
	t.Run("with context", func(t *testing.T) {
		type key struct{}
		ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "request-42"))
		defer cancel()
		var got []string
		e.rec.Hook = func(ctx context.Context, _ backends.Request) error {
			v, _ := ctx.Value(key{}).(string)
			_, hasDeadline := ctx.Deadline()
			if hasDeadline && ctx.Err() == nil {
				got = append(got, v)
			}
			return nil
		}
		defer func() { e.rec.Hook = nil }()
		transactionSuite(t, e, e.db.WithContext(ctx))
		assert.Equal(t, []string{"request-42", "request-42", "request-42"}, got,
			"the sink gets the transaction's values, bounded by the handoff timeout")
	})
}

// Semantics 9: db.Connection runs statements on a raw *sql.Conn.
func TestConnection(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		var visible bool
		e.rec.Hook = func(context.Context, backends.Request) error {
			visible = e.other.Where("slug = ?", "conn").First(&Post{}).Error == nil
			return nil
		}
		require.NoError(t, e.db.Connection(func(tx *gorm.DB) error {
			return tx.Create(&Post{Slug: "conn"}).Error
		}))
		assert.Equal(t, [][]string{{"/", "/posts/conn"}}, e.urlSets())
		assert.True(t, visible, "handed off after GORM's commit on the raw connection")

		e.rec.Reset()
		e.rec.Hook = nil
		require.Error(t, e.db.Connection(func(tx *gorm.DB) error {
			return tx.Create(&Post{Slug: "conn"}).Error // duplicate: rolled back
		}))
		assert.Empty(t, e.rec.Requests())

		// Nested association saves run in the same tracked transaction.
		e.rec.Reset()
		require.NoError(t, e.db.Connection(func(tx *gorm.DB) error {
			return tx.Create(&Post{Slug: "conn-tags", Tags: []Tag{{Name: "conn-go"}}}).Error
		}))
		assert.Equal(t, [][]string{{"/", "/posts/conn-tags", "/tags/conn-go"}}, e.urlSets())
		assert.Empty(t, e.errs.all())
		e.rec.Reset()

		// A transaction begun by hand on the raw connection cannot be
		// followed: the plugin says so instead of purging before the commit.
		require.NoError(t, e.db.Connection(func(conn *gorm.DB) error {
			tx := conn.Begin()
			require.NoError(t, tx.Create(&Post{Slug: "raw"}).Error)
			return tx.Commit().Error
		}))
		assert.Empty(t, e.rec.Requests())
		errs := e.errs.all()
		require.Len(t, errs, 1)
		require.ErrorIs(t, errs[0], gormpurge.ErrUntrackedTransaction)
		var he *gormpurge.HandoffError
		require.ErrorAs(t, errs[0], &he)
		assert.Equal(t, []string{"/", "/posts/raw"}, he.Request.URLs)
	})
}

// Semantics 9: gorm.io/plugin/dbresolver, installed after gormpurge.
func TestDBResolver(t *testing.T) {
	dir := t.TempDir()
	source := "file:" + filepath.Join(dir, "source.db") + "?_busy_timeout=5000&_journal_mode=WAL&_txlock=immediate"
	replica := "file:" + filepath.Join(dir, "replica.db") + "?_busy_timeout=5000&_journal_mode=WAL"
	// The replica lags: it still has the post under its old slug.
	for dsn, slug := range map[string]string{source: "real", replica: "stale"} {
		db, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{Logger: logger.Discard})
		require.NoError(t, err)
		require.NoError(t, db.AutoMigrate(&Post{}, &Tag{}, &Comment{}))
		require.NoError(t, db.Create(&Post{ID: 1, Slug: slug}).Error)
		sqlDB, _ := db.DB()
		sqlDB.Close()
	}
	open := func(t *testing.T) (*gorm.DB, *purgetest.Recorder, *gormpurge.Plugin) {
		db, err := gorm.Open(sqlite.Open(source), &gorm.Config{Logger: logger.Discard})
		require.NoError(t, err)
		closeOnCleanup(t, db)
		rec := purgetest.NewRecorder()
		p := gormpurge.New(rec)
		require.NoError(t, p.Register(&Post{}, &Tag{}))
		return db, rec, p
	}

	t.Run("installed first", func(t *testing.T) {
		db, rec, p := open(t)
		require.NoError(t, db.Use(p))
		r := dbresolver.Register(dbresolver.Config{Replicas: []gorm.Dialector{sqlite.Open(replica)}})
		require.NoError(t, db.Use(r))
		closeResolverPools(t, r)

		var read Post
		require.NoError(t, db.First(&read, 1).Error)
		require.Equal(t, "stale", read.Slug, "reads go to the replica")

		require.NoError(t, db.Session(&gorm.Session{SkipDefaultTransaction: true}).
			Model(&Post{}).Where("id = ?", 1).Update("slug", "new").Error)
		assert.Equal(t, []string{"/", "/posts/new", "/posts/real"}, rec.URLs(),
			"the old state is read from the source, not the lagging replica")

		rec.Reset()
		require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
			require.NoError(t, tx.Model(&Post{ID: 1}).Update("slug", "newer").Error)
			return tx.Create(&Post{Slug: "second"}).Error
		}))
		assert.Equal(t, [][]string{{"/", "/posts/new", "/posts/newer", "/posts/second"}}, urlSets(rec))

		rec.Reset()
		tx := db.Begin()
		require.NoError(t, tx.Create(&Post{Slug: "rolled-back"}).Error)
		require.NoError(t, tx.Rollback().Error)
		assert.Empty(t, rec.Requests())
	})

	t.Run("resolvers registered later still route writes", func(t *testing.T) {
		db, rec, p := open(t)
		require.NoError(t, db.Use(p))
		r := dbresolver.Register(dbresolver.Config{Replicas: []gorm.Dialector{sqlite.Open(replica)}})
		require.NoError(t, db.Use(r))
		// Tags live in the "replica" database from now on, for reads and writes.
		r.Register(dbresolver.Config{Sources: []gorm.Dialector{sqlite.Open(replica)}}, &Tag{})
		closeResolverPools(t, r) // all of them, the one Register just opened too
		require.NoError(t, db.Create(&Tag{Name: "routed"}).Error)
		var n int64
		other, err := gorm.Open(sqlite.Open(replica), &gorm.Config{Logger: logger.Discard})
		require.NoError(t, err)
		require.NoError(t, other.Model(&Tag{}).Where("name = ?", "routed").Count(&n).Error)
		assert.Equal(t, int64(1), n, "the write went to the resolver's source")
		assert.Equal(t, []string{"/tags/routed"}, rec.URLs())
		if sqlDB, err := other.DB(); err == nil {
			sqlDB.Close()
		}
	})

	t.Run("installed after dbresolver is refused", func(t *testing.T) {
		db, _, p := open(t)
		r := dbresolver.Register(dbresolver.Config{Replicas: []gorm.Dialector{sqlite.Open(replica)}})
		require.NoError(t, db.Use(r))
		closeResolverPools(t, r)
		err := db.Use(p)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "install gormpurge before gorm.io/plugin/dbresolver")
	})
}

// closeResolverPools closes the pools dbresolver opened, when the test ends.
func closeResolverPools(t *testing.T, r *dbresolver.DBResolver) {
	t.Cleanup(func() {
		_ = r.Call(func(cp gorm.ConnPool) error {
			switch c := cp.(type) {
			case *sql.DB:
				c.Close()
			case gorm.GetDBConnector:
				if sqlDB, err := c.GetDBConn(); err == nil {
					sqlDB.Close()
				}
			}
			return nil
		})
	})
}
