package gormpurge_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
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
	"github.com/gormpurge/gormpurge/internal/testdb"
	"github.com/gormpurge/gormpurge/outbox"
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
	outbox *outbox.Outbox // nil unless the env purges through the outbox
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

// outboxSuffix marks the environments whose sink is the durable outbox.
const outboxSuffix = "_outbox"

// forEachDB runs fn as a subtest on SQLite, and on PostgreSQL and MariaDB
// when GORMPURGE_TEST_POSTGRES_DSN and GORMPURGE_TEST_MYSQL_DSN are set;
// on each, once with the in-memory sink ("sqlite") and once with the
// durable outbox and a relay in between ("sqlite_outbox"): the semantics
// are the same.
func forEachDB(t *testing.T, fn func(t *testing.T, e *env), opts ...gormpurge.Option) {
	for _, kind := range testdb.Kinds {
		for _, name := range []string{kind, kind + outboxSuffix} {
			t.Run(name, func(t *testing.T) {
				fn(t, newEnv(t, name, &gorm.Config{}, opts...))
			})
		}
	}
}

// newEnv opens a fresh database of the given kind with the plugin
// installed, the test models registered and migrated. A kind ending in
// "_outbox" purges through the durable outbox: the plugin writes into it
// and a relay delivers each row, one at a time and in order, through a
// dispatcher to the recorder; reading the recorder first waits until no
// row is pending.
func newEnv(t *testing.T, name string, cfg *gorm.Config, opts ...gormpurge.Option) *env {
	t.Helper()
	kind, durable := strings.CutSuffix(name, outboxSuffix)
	dsn := testdb.DSN(t, kind)
	db := testdb.OpenDSN(t, kind, dsn, cfg)
	other := testdb.OpenDSN(t, kind, dsn, nil)
	e := &env{kind: kind, db: db, other: other, rec: purgetest.NewRecorder(), errs: &errorLog{ch: make(chan error, 1000)}}
	var sink gormpurge.Sink = e.rec
	if durable {
		sink = e.startOutbox(t, db)
	}
	opts = append([]gormpurge.Option{
		gormpurge.WithErrorHandler(e.errs.handler),
		gormpurge.WithLogger(slog.New(slog.DiscardHandler)), // errors are asserted through the handler
	}, opts...)
	e.plugin = gormpurge.New(sink, opts...)
	require.NoError(t, e.plugin.Register(&Post{}, &Tag{}, &Comment{}))
	require.NoError(t, db.Use(e.plugin))
	// Migrate through the plugin's pool wrapper: it must not get in the way.
	require.NoError(t, db.AutoMigrate(&Post{}, &Tag{}, &Comment{}, &Log{}))
	return e
}

// startOutbox creates the outbox on db and a relay that delivers to the
// recorder, stopped at cleanup.
func (e *env) startOutbox(t *testing.T, db *gorm.DB) *outbox.Outbox {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	ob, err := outbox.New(db, outbox.WithLogger(quiet), outbox.WithBatchSize(1), outbox.WithConcurrency(1),
		outbox.WithPollInterval(20*time.Millisecond), outbox.WithBackoff(10*time.Millisecond, 10*time.Millisecond),
		outbox.WithMaxAttempts(2), outbox.WithErrorHandler(e.errs.handler))
	require.NoError(t, err)
	d, err := dispatcher.New([]backends.Backend{e.rec}, dispatcher.WithLinger(0), dispatcher.WithMaxAttempts(1), dispatcher.WithLogger(quiet))
	require.NoError(t, err)
	relay, err := ob.Relay(d)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, relay.Close(ctx))
		require.NoError(t, d.Close(ctx))
	})
	e.outbox = ob
	e.rec.Sync = func() {
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			s, err := ob.Status(context.Background())
			require.NoError(c, err)
			assert.Zero(c, s.Pending, "rows still pending")
		}, 10*time.Second, 5*time.Millisecond, "the relay did not deliver the outbox's rows")
	}
	return ob
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
func closeOnCleanup(t testing.TB, db *gorm.DB) { testdb.CloseOnCleanup(t, db) }

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
// dispatcher is closed, which closes every backend that is a
// backends.Closer.
func purgeThrough(t *testing.T, db *gorm.DB, bs []backends.Backend, models ...any) *dispatcher.Dispatcher {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	d, err := dispatcher.New(bs, dispatcher.WithLogger(quiet))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, d.Close(ctx))
	})
	p := gormpurge.New(d, gormpurge.WithLogger(quiet))
	require.NoError(t, p.Register(models...))
	require.NoError(t, db.Use(p))
	return d
}
