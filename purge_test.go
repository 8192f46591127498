package gormpurge_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
)

// Purge on demand: every kind of target yields exactly what the callbacks
// would, in one handoff, through the in-memory sink and the outbox alike.
func TestPurge(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		post := &Post{ID: 7, Slug: "seven"}
		other := Post{ID: 8, Slug: "eight"}
		tests := []struct {
			name    string
			targets []any
			urls    []string
			tags    []string
		}{
			{"a path", []any{"/about"}, []string{"/about"}, nil},
			{"paths, deduplicated", []any{[]string{"/b", "/a", "/b"}}, []string{"/a", "/b"}, nil},
			{"a model pointer", []any{post}, []string{"/", "/posts/seven"}, []string{"post-7"}},
			{"a model value", []any{other}, []string{"/", "/posts/eight"}, []string{"post-8"}},
			{"a slice of models", []any{[]Post{*post, other}}, []string{"/", "/posts/eight", "/posts/seven"}, []string{"post-7", "post-8"}},
			{"a slice of pointers", []any{[]*Post{post, nil}}, []string{"/", "/posts/seven"}, []string{"post-7"}},
			{"an array of models", []any{[1]Tag{{Name: "go"}}}, []string{"/tags/go"}, nil},
			{"targets with tags", []any{gormpurge.Targets{URLs: []string{"/x"}, Tags: []string{"section-news"}}}, []string{"/x"}, []string{"section-news"}},
			{"a mix in []any", []any{[]any{"/y", &Tag{Name: "db"}}, "/y"}, []string{"/tags/db", "/y"}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e.rec.Reset()
				require.NoError(t, e.plugin.Purge(t.Context(), tt.targets...))
				reqs := e.rec.Requests()
				require.Len(t, reqs, 1, "one handoff")
				assert.Equal(t, backends.NewRequest(tt.urls, tt.tags), reqs[0])
			})
		}
		t.Run("nothing to purge hands off nothing", func(t *testing.T) {
			e.rec.Reset()
			require.NoError(t, e.plugin.Purge(t.Context()))
			require.NoError(t, e.plugin.Purge(t.Context(), []string{}, []Post{}, "", []string{""}, gormpurge.Targets{Tags: []string{""}}))
			assert.Empty(t, e.rec.Requests())
		})
	})
}

// Bad targets are errors naming the value or type; the good ones are
// still purged.
func TestPurgeErrors(t *testing.T) {
	e := newEnv(t, "sqlite", &gorm.Config{}, gormpurge.WithBaseURL("https://www.example.com"))
	require.NoError(t, e.plugin.Register(&Page{}))
	err := e.plugin.Purge(t.Context(),
		"/ok",
		"gopher://x/",
		42,
		&Log{Msg: "never registered"},
		[]Log{{}},
		nil,
		(*Post)(nil),
		gormpurge.Targets{Tags: []string{"good", "bad tag"}},
		&Page{URLs: "/page|ftp://nope"},
	)
	require.Error(t, err)
	assert.Equal(t, []string{"https://www.example.com/ok", "https://www.example.com/page"}, e.rec.URLs(), "the valid targets are purged")
	assert.Equal(t, []string{"good"}, e.rec.Tags())

	var target *gormpurge.TargetError
	require.ErrorAs(t, err, &target)
	msg := err.Error()
	for _, want := range []string{
		`url "gopher://x/" rejected`,
		"argument 2: cannot purge a int",
		"argument 3: gormpurge_test.Log is not a registered model",
		"argument 4: a []gormpurge_test.Log: gormpurge_test.Log is not a registered model",
		"argument 5 is nil",
		"argument 6 is a nil *gormpurge_test.Post",
		`tag "bad tag" rejected`,
		`model gormpurge_test.Page: url "ftp://nope" rejected`,
	} {
		assert.Contains(t, msg, want)
	}
	assert.ErrorIs(t, err, gormpurge.ErrUnsupportedTarget)
	assert.ErrorIs(t, err, gormpurge.ErrInvalidURL)
	assert.ErrorIs(t, err, gormpurge.ErrInvalidTag)
	assert.Empty(t, e.errs.all(), "Purge returns its errors instead of reporting them")
}

// A sink's failure is returned by Purge, and counted and reported like
// the callbacks' handoff failures.
func TestPurgeReturnsHandoffErrors(t *testing.T) {
	e := newEnv(t, "sqlite", &gorm.Config{})
	boom := errors.New("queue full")
	e.rec.Hook = func(context.Context, backends.Request) error { return boom }
	err := e.plugin.Purge(t.Context(), "/a")
	var herr *gormpurge.HandoffError
	require.ErrorAs(t, err, &herr)
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, []string{"/a"}, herr.Request.URLs)
	assert.Equal(t, uint64(1), e.plugin.Stats().HandoffErrors)
	assert.Len(t, e.errs.all(), 1)
}

// PurgeTx joins the transaction: handed off with its commit, in the same
// handoff as the callbacks' targets, dropped on rollback and with a rolled
// back savepoint.
func TestPurgeTx(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seedPost(t, "raw")
		t.Run("raw exec then commit", func(t *testing.T) {
			e.rec.Reset()
			require.NoError(t, e.db.Transaction(func(tx *gorm.DB) error {
				require.NoError(t, tx.Exec("UPDATE posts SET views = views + 1 WHERE id = ?", p.ID).Error)
				require.NoError(t, e.plugin.PurgeTx(tx, p, "/popular"))
				require.NoError(t, tx.Create(&Post{Slug: "alongside"}).Error)
				assert.Empty(t, e.rec.Requests(), "nothing before the commit")
				return nil
			}))
			assert.Equal(t, [][]string{{"/", "/popular", "/posts/alongside", "/posts/raw"}}, e.urlSets())
		})
		t.Run("rollback drops it", func(t *testing.T) {
			e.rec.Reset()
			err := e.db.Transaction(func(tx *gorm.DB) error {
				require.NoError(t, e.plugin.PurgeTx(tx, "/gone"))
				return errors.New("undo")
			})
			require.Error(t, err)
			assert.Empty(t, e.rec.Requests())
		})
		t.Run("a rolled back savepoint drops what it added", func(t *testing.T) {
			e.rec.Reset()
			require.NoError(t, e.db.Transaction(func(tx *gorm.DB) error {
				require.NoError(t, e.plugin.PurgeTx(tx, "/kept"))
				_ = tx.Transaction(func(tx2 *gorm.DB) error {
					require.NoError(t, e.plugin.PurgeTx(tx2, "/inner"))
					return errors.New("undo inner")
				})
				return nil
			}))
			assert.Equal(t, [][]string{{"/kept"}}, e.urlSets())
		})
		t.Run("begin and commit", func(t *testing.T) {
			e.rec.Reset()
			tx := e.db.Begin()
			require.NoError(t, e.plugin.PurgeTx(tx, gormpurge.Targets{Tags: []string{"front"}}))
			require.NoError(t, tx.Commit().Error)
			assert.Equal(t, []string{"front"}, e.rec.Tags())
			err := e.plugin.PurgeTx(tx, "/late")
			require.ErrorIs(t, err, gormpurge.ErrNoTransaction, "the transaction has ended")
			assert.Empty(t, e.rec.URLs())
		})
		t.Run("outside a transaction", func(t *testing.T) {
			e.rec.Reset()
			err := e.plugin.PurgeTx(e.db, "/x")
			require.ErrorIs(t, err, gormpurge.ErrNoTransaction)
			assert.Contains(t, err.Error(), "call Purge")
			require.ErrorIs(t, e.plugin.PurgeTx(nil, "/x"), gormpurge.ErrNoTransaction)
			assert.Empty(t, e.rec.Requests())
		})
		t.Run("a transaction of another plugin", func(t *testing.T) {
			other := gormpurge.New(e.rec)
			require.NoError(t, e.db.Transaction(func(tx *gorm.DB) error {
				require.ErrorIs(t, other.PurgeTx(tx, "/x"), gormpurge.ErrNoTransaction)
				return nil
			}))
		})
	})
}

// Suspension: 10,000 changes made in many transactions, by bulk updates and
// by Purge, reach the sink as one handoff when the job resumes; rolled back
// work stays out, and nothing is handed off before.
func TestSuspendCollapsesABulkJob(t *testing.T) {
	const n = 10_000
	forEachDB(t, func(t *testing.T, e *env) {
		e.rec.Reset()
		ctx, job := e.plugin.Suspend(t.Context())
		db := e.db.WithContext(ctx)

		posts := make([]Post, n)
		for i := range posts {
			posts[i] = Post{Slug: fmt.Sprintf("bulk-%05d", i)}
		}
		for chunk := range slices.Chunk(posts, 500) {
			require.NoError(t, db.Create(chunk).Error) // 20 transactions
		}
		require.NoError(t, db.Model(&Post{}).Where("slug LIKE ?", "bulk-%").Update("views", 1).Error)
		require.Error(t, db.Transaction(func(tx *gorm.DB) error {
			require.NoError(t, tx.Create(&Post{Slug: "rolled-back"}).Error)
			return errors.New("undo")
		}))
		require.NoError(t, e.plugin.Purge(ctx, "/imported"))

		inner, innerJob := e.plugin.Suspend(ctx)
		require.NoError(t, e.db.WithContext(inner).Create(&Tag{Name: "nested"}).Error)
		require.NoError(t, innerJob.Resume(), "an inner suspension merges into the outer one")

		assert.Empty(t, e.rec.Requests(), "nothing is handed off while suspended")
		if e.outbox != nil {
			s, err := e.outbox.Status(t.Context())
			require.NoError(t, err)
			assert.Zero(t, s.Pending+s.Held+s.Delivered, "no outbox rows while suspended")
		}
		assert.Equal(t, 2*n+3, job.Len())
		suspended := e.plugin.Stats().Suspended
		assert.GreaterOrEqual(t, suspended, uint64(20+1+1+1), "each commit and Purge was merged")

		require.NoError(t, job.Resume())
		require.NoError(t, job.Resume(), "Resume twice hands off once")
		reqs := e.rec.Requests()
		require.Len(t, reqs, 1, "one handoff for the whole job")
		r := reqs[0]
		assert.Len(t, r.URLs, n+3) // the posts, "/", "/imported", "/tags/nested"
		assert.Len(t, r.Tags, n)
		assert.Contains(t, r.URLs, "/imported")
		assert.Contains(t, r.URLs, "/tags/nested")
		assert.Contains(t, r.URLs, "/posts/bulk-09999")
		assert.NotContains(t, r.URLs, "/posts/rolled-back")

		e.rec.Reset()
		require.NoError(t, db.Create(&Post{Slug: "after"}).Error)
		assert.Equal(t, [][]string{{"/", "/posts/after"}}, e.urlSets(), "after Resume the context purges as usual")
	})
}

// A suspension holds back only its own plugin's handoffs.
func TestSuspendIsPerPlugin(t *testing.T) {
	e := newEnv(t, "sqlite", &gorm.Config{})
	other := gormpurge.New(e.rec)
	ctx, job := other.Suspend(t.Context())
	require.NoError(t, e.db.WithContext(ctx).Create(&Post{Slug: "mine"}).Error)
	assert.Equal(t, [][]string{{"/", "/posts/mine"}}, e.urlSets())
	assert.Zero(t, job.Len())
	require.NoError(t, job.Resume())
}

// A transaction begun without the job's context joins the suspension when
// its statements, or PurgeTx, run under it.
func TestSuspendFollowsTheStatementsContext(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		e.rec.Reset()
		ctx, job := e.plugin.Suspend(t.Context())
		tx := e.db.Begin()
		require.NoError(t, tx.WithContext(ctx).Create(&Post{Slug: "late-ctx"}).Error)
		require.NoError(t, tx.Commit().Error)
		tx = e.db.Begin()
		require.NoError(t, e.plugin.PurgeTx(tx.WithContext(ctx), "/by-hand"))
		require.NoError(t, tx.Commit().Error)
		assert.Empty(t, e.rec.Requests(), "held by the suspension")
		require.NoError(t, job.Resume())
		assert.Equal(t, [][]string{{"/", "/by-hand", "/posts/late-ctx"}}, e.urlSets())
	})
}

// Resume waits for commits under way and for a concurrent Resume: every
// write that committed under the job is purged exactly once, and every
// caller of Resume sees the handoff's outcome.
func TestSuspendResumeRacesCommits(t *testing.T) {
	e := newEnv(t, "sqlite", &gorm.Config{})
	for round := range 20 {
		e.rec.Reset()
		ctx, job := e.plugin.Suspend(t.Context())
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 5 {
					assert.NoError(t, e.db.WithContext(ctx).Create(&Post{Slug: fmt.Sprintf("r%d-w%d-%d", round, w, i)}).Error)
				}
			}()
		}
		errs := make(chan error, 2)
		for range 2 {
			go func() { errs <- job.Resume() }()
		}
		wg.Wait()
		require.NoError(t, <-errs)
		require.NoError(t, <-errs)
		var got []string
		for _, r := range e.rec.Requests() {
			got = append(got, r.URLs...)
		}
		for w := range 4 {
			for i := range 5 {
				assert.Equal(t, 1, countOf(got, fmt.Sprintf("/posts/r%d-w%d-%d", round, w, i)), "purged once")
			}
		}
	}
}

func countOf(xs []string, x string) int {
	n := 0
	for _, s := range xs {
		if s == x {
			n++
		}
	}
	return n
}

// A second Resume during a failing first one returns the first one's error.
func TestConcurrentResumeReturnsTheFirstError(t *testing.T) {
	e := newEnv(t, "sqlite", &gorm.Config{})
	entered, release := make(chan struct{}), make(chan struct{})
	boom := errors.New("sink down")
	e.rec.Hook = func(context.Context, backends.Request) error {
		close(entered)
		<-release
		return boom
	}
	ctx, job := e.plugin.Suspend(t.Context())
	require.NoError(t, e.plugin.Purge(ctx, "/a"))
	first := make(chan error, 1)
	go func() { first <- job.Resume() }()
	<-entered
	second := make(chan error, 1)
	go func() { second <- job.Resume() }()
	close(release)
	require.ErrorIs(t, <-first, boom)
	require.ErrorIs(t, <-second, boom)
}

// A []any that contains itself is an error, not a crash.
func TestPurgeSelfReferencingSlice(t *testing.T) {
	e := newEnv(t, "sqlite", &gorm.Config{})
	loop := []any{"/ok", nil}
	loop[1] = loop
	err := e.plugin.Purge(t.Context(), loop)
	require.ErrorIs(t, err, gormpurge.ErrUnsupportedTarget)
	assert.Contains(t, err.Error(), "contain itself")
	assert.Equal(t, []string{"/ok"}, e.rec.URLs())
}
