package gormpurge_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"
	gmysql "gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/purgetest"
)

// Test models: a blog. Post and Tag are linked many-to-many, Post has many
// Comments, and Log is never registered.
type Post struct {
	ID        uint   `gorm:"primaryKey"`
	Slug      string `gorm:"size:191;uniqueIndex"`
	Title     string `gorm:"size:191"`
	Views     int
	Tags      []Tag `gorm:"many2many:post_tags"`
	Comments  []Comment
	DeletedAt gorm.DeletedAt `gorm:"index"`
}

func (p *Post) AbsoluteURL() string      { return "/posts/" + p.Slug }
func (p *Post) DependentPaths() []string { return []string{"/"} }
func (p *Post) PurgeTags() []string      { return []string{fmt.Sprintf("post-%d", p.ID)} }

type Tag struct {
	ID   uint   `gorm:"primaryKey"`
	Name string `gorm:"size:191;uniqueIndex"`
}

func (t *Tag) AbsoluteURL() string { return "/tags/" + t.Name }

type Comment struct {
	ID     uint `gorm:"primaryKey"`
	PostID *uint
	Body   string `gorm:"size:191"`
}

func (c *Comment) DependentPaths() []string {
	if c.PostID == nil {
		return []string{"/comments/orphans"}
	}
	return []string{fmt.Sprintf("/posts/%d/comments", *c.PostID)}
}

type Log struct {
	ID  uint `gorm:"primaryKey"`
	Msg string
}

// env is one database with the plugin installed.
type env struct {
	kind   string
	db     *gorm.DB // with the plugin
	other  *gorm.DB // a second connection pool, without the plugin
	rec    *purgetest.Recorder
	plugin *gormpurge.Plugin
	errs   *errorLog
}

type errorLog struct {
	ch chan error
}

func (l *errorLog) handler(_ context.Context, err error) {
	select {
	case l.ch <- err:
	default:
	}
}

// all returns the errors reported so far.
func (l *errorLog) all() []error {
	var out []error
	for {
		select {
		case err := <-l.ch:
			out = append(out, err)
		default:
			return out
		}
	}
}

// forEachDB runs fn as a subtest on SQLite, and on PostgreSQL and MariaDB
// when GORMPURGE_TEST_POSTGRES_DSN and GORMPURGE_TEST_MYSQL_DSN are set.
func forEachDB(t *testing.T, fn func(t *testing.T, e *env), opts ...gormpurge.Option) {
	for _, name := range []string{"sqlite", "postgres", "mysql"} {
		t.Run(name, func(t *testing.T) {
			fn(t, newEnv(t, name, &gorm.Config{}, opts...))
		})
	}
}

// openDialectors returns two dialectors on a fresh, private database of the
// given kind: one for the plugin and one for the second connection.
func openDialectors(t *testing.T, kind string) (gorm.Dialector, gorm.Dialector) {
	t.Helper()
	switch kind {
	case "sqlite":
		dsn := "file:" + filepath.Join(t.TempDir(), "test.db") + "?_busy_timeout=10000&_journal_mode=WAL&_txlock=immediate&_foreign_keys=on"
		return sqlite.Open(dsn), sqlite.Open(dsn)
	case "postgres":
		dsn := os.Getenv("GORMPURGE_TEST_POSTGRES_DSN")
		if dsn == "" {
			t.Skip("GORMPURGE_TEST_POSTGRES_DSN is not set; set it (e.g. \"host=127.0.0.1 user=postgres dbname=test sslmode=disable\") to run against PostgreSQL")
		}
		schema := uniqueName()
		admin, err := gorm.Open(postgres.Open(dsn), &gorm.Config{Logger: logger.Discard})
		require.NoError(t, err)
		require.NoError(t, admin.Exec("CREATE SCHEMA "+schema).Error)
		t.Cleanup(func() {
			admin.Exec("DROP SCHEMA " + schema + " CASCADE")
			if sqlDB, err := admin.DB(); err == nil {
				sqlDB.Close()
			}
		})
		dsn += " search_path=" + schema
		return postgres.Open(dsn), postgres.Open(dsn)
	case "mysql":
		dsn := os.Getenv("GORMPURGE_TEST_MYSQL_DSN")
		if dsn == "" {
			t.Skip("GORMPURGE_TEST_MYSQL_DSN is not set; set it (e.g. \"root@tcp(127.0.0.1:3306)/test?parseTime=true\") to run against MariaDB or MySQL")
		}
		cfg, err := mysql.ParseDSN(dsn)
		require.NoError(t, err)
		cfg.ParseTime = true
		name := uniqueName()
		admin, err := gorm.Open(gmysql.Open(cfg.FormatDSN()), &gorm.Config{Logger: logger.Discard})
		require.NoError(t, err)
		require.NoError(t, admin.Exec("CREATE DATABASE "+name).Error)
		t.Cleanup(func() {
			admin.Exec("DROP DATABASE " + name)
			if sqlDB, err := admin.DB(); err == nil {
				sqlDB.Close()
			}
		})
		cfg.DBName = name
		return gmysql.Open(cfg.FormatDSN()), gmysql.Open(cfg.FormatDSN())
	}
	t.Fatalf("unknown database kind %q", kind)
	return nil, nil
}

func uniqueName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "gp_" + hex.EncodeToString(b[:])
}

// newEnv opens a fresh database of the given kind with the plugin
// installed, the test models registered and migrated.
func newEnv(t *testing.T, kind string, cfg *gorm.Config, opts ...gormpurge.Option) *env {
	t.Helper()
	d1, d2 := openDialectors(t, kind)
	if cfg.Logger == nil {
		cfg.Logger = logger.Discard
	}
	db, err := gorm.Open(d1, cfg)
	require.NoError(t, err)
	other, err := gorm.Open(d2, &gorm.Config{Logger: logger.Discard})
	require.NoError(t, err)
	closeOnCleanup(t, db)
	closeOnCleanup(t, other)
	e := &env{kind: kind, db: db, other: other, rec: purgetest.NewRecorder(), errs: &errorLog{ch: make(chan error, 1000)}}
	opts = append([]gormpurge.Option{
		gormpurge.WithErrorHandler(e.errs.handler),
		gormpurge.WithLogger(slog.New(slog.DiscardHandler)), // errors are asserted through the handler
	}, opts...)
	e.plugin = gormpurge.New(e.rec, opts...)
	require.NoError(t, e.plugin.Register(&Post{}, &Tag{}, &Comment{}))
	require.NoError(t, db.Use(e.plugin))
	// Migrate through the plugin's pool wrapper: it must not get in the way.
	require.NoError(t, db.AutoMigrate(&Post{}, &Tag{}, &Comment{}, &Log{}))
	return e
}

// seedPost creates a post outside the recorder's view and returns it.
func (e *env) seedPost(t *testing.T, slug string, tags ...string) *Post {
	t.Helper()
	p := &Post{Slug: slug, Title: slug}
	for _, name := range tags {
		p.Tags = append(p.Tags, Tag{Name: name})
	}
	require.NoError(t, e.db.Create(p).Error)
	e.rec.Reset()
	return p
}

// urlSets returns the URLs of each recorded request, one slice per handoff,
// so that an assertion checks both what was purged and how many handoffs.
func (e *env) urlSets() [][]string { return urlSets(e.rec) }

func urlSets(rec *purgetest.Recorder) [][]string {
	var out [][]string
	for _, r := range rec.Requests() {
		out = append(out, r.URLs)
	}
	return out
}

// closeOnCleanup closes db's connection pool when the test ends.
func closeOnCleanup(t testing.TB, db *gorm.DB) {
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
}

// openSQLite returns a fresh SQLite database in the test's temporary
// directory with models migrated, closed at cleanup: the database of the
// end-to-end tests.
func openSQLite(t *testing.T, models ...any) *gorm.DB {
	t.Helper()
	db, err := gorm.Open(sqlite.Open(filepath.Join(t.TempDir(), "e2e.db")), &gorm.Config{Logger: logger.Discard})
	require.NoError(t, err)
	closeOnCleanup(t, db)
	require.NoError(t, db.AutoMigrate(models...))
	return db
}

// purgeThrough installs the plugin on db with models registered, purging
// through a dispatcher to bs, and returns the dispatcher. At cleanup the
// dispatcher is closed, then every backend that has a Close method.
func purgeThrough(t *testing.T, db *gorm.DB, bs []backends.Backend, models ...any) *dispatcher.Dispatcher {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	d := dispatcher.New(bs, dispatcher.WithLogger(quiet))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, d.Close(ctx))
		for _, b := range bs {
			switch c := b.(type) {
			case interface{ Close(context.Context) error }:
				require.NoError(t, c.Close(ctx))
			case interface{ Close() error }:
				require.NoError(t, c.Close())
			}
		}
	})
	p := gormpurge.New(d, gormpurge.WithLogger(quiet))
	require.NoError(t, p.Register(models...))
	require.NoError(t, db.Use(p))
	return d
}
