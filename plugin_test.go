package gormpurge_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
)

// Semantics 1: outside any transaction, hand off right after the statement;
// a failed statement hands off nothing.
func TestNoTransaction(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		db := e.db.Session(&gorm.Session{SkipDefaultTransaction: true})
		require.NoError(t, db.Create(&Post{Slug: "a"}).Error)
		assert.Equal(t, [][]string{{"/", "/posts/a"}}, e.urlSets())

		e.rec.Reset()
		err := db.Create(&Post{Slug: "a"}).Error // duplicate slug
		require.Error(t, err)
		assert.Empty(t, e.rec.Requests(), "a failed statement must hand off nothing")
	})
	t.Run("config", func(t *testing.T) {
		e := newEnv(t, "sqlite", &gorm.Config{SkipDefaultTransaction: true})
		require.NoError(t, e.db.Create(&Post{Slug: "c"}).Error)
		assert.Equal(t, [][]string{{"/", "/posts/c"}}, e.urlSets())
	})
}

// Semantics 2 and 5: GORM's implicit transaction hands off after it commits,
// and at that moment another connection sees the new row.
func TestImplicitTransactionHandsOffAfterCommit(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		var (
			mu   sync.Mutex // with the outbox, the hook runs on the relay's goroutines
			seen []string
		)
		e.rec.Hook = func(ctx context.Context, r backends.Request) error {
			var p Post
			mu.Lock()
			defer mu.Unlock()
			if err := e.other.Where("slug = ?", "fresh").First(&p).Error; err != nil {
				seen = append(seen, "not visible: "+err.Error())
			} else {
				seen = append(seen, "visible: "+p.Title)
			}
			return nil
		}
		require.NoError(t, e.db.Create(&Post{Slug: "fresh", Title: "v1"}).Error)
		assert.Len(t, e.rec.Requests(), 1) // with the outbox: wait for the relay
		require.NoError(t, e.db.Model(&Post{}).Where("slug = ?", "fresh").Update("title", "v2").Error)
		assert.Len(t, e.rec.Requests(), 2)
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, []string{"visible: v1", "visible: v2"}, seen)
	})
}

// Semantics 3: one handoff per committed outermost transaction, none for
// rollback, error, panic; Commit twice hands off once.
func TestExplicitTransactions(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		t.Run("begin commit", func(t *testing.T) {
			e.rec.Reset()
			var visible bool
			e.rec.Hook = func(context.Context, backends.Request) error {
				visible = e.other.Where("slug = ?", "b2").First(&Post{}).Error == nil
				return nil
			}
			defer func() { e.rec.Hook = nil }()
			tx := e.db.Begin()
			require.NoError(t, tx.Create(&Post{Slug: "b1"}).Error)
			require.NoError(t, tx.Create(&Post{Slug: "b2"}).Error)
			assert.Empty(t, e.rec.Requests(), "nothing before the commit")
			require.NoError(t, tx.Commit().Error)
			assert.Equal(t, [][]string{{"/", "/posts/b1", "/posts/b2"}}, e.urlSets())
			assert.True(t, visible, "the data is committed when the sink is called")
			assert.Error(t, tx.Commit().Error, "a second commit fails")
			assert.Len(t, e.rec.Requests(), 1, "and hands off nothing")
		})
		t.Run("begin rollback", func(t *testing.T) {
			e.rec.Reset()
			tx := e.db.Begin()
			require.NoError(t, tx.Create(&Post{Slug: "r1"}).Error)
			require.NoError(t, tx.Rollback().Error)
			_ = tx.Commit()
			assert.Empty(t, e.rec.Requests())
		})
		t.Run("transaction fn", func(t *testing.T) {
			e.rec.Reset()
			require.NoError(t, e.db.Transaction(func(tx *gorm.DB) error {
				return tx.Create(&Post{Slug: "t1"}).Error
			}))
			assert.Equal(t, [][]string{{"/", "/posts/t1"}}, e.urlSets())
		})
		t.Run("transaction fn error", func(t *testing.T) {
			e.rec.Reset()
			boom := errors.New("boom")
			err := e.db.Transaction(func(tx *gorm.DB) error {
				require.NoError(t, tx.Create(&Post{Slug: "t2"}).Error)
				return boom
			})
			require.ErrorIs(t, err, boom)
			assert.Empty(t, e.rec.Requests())
		})
		t.Run("transaction fn panic", func(t *testing.T) {
			e.rec.Reset()
			assert.Panics(t, func() {
				_ = e.db.Transaction(func(tx *gorm.DB) error {
					require.NoError(t, tx.Create(&Post{Slug: "t3"}).Error)
					panic("boom")
				})
			})
			assert.Empty(t, e.rec.Requests())
			assert.Error(t, e.other.Where("slug = ?", "t3").First(&Post{}).Error, "the panic rolled back")
		})
	})
}

// Semantics 4: savepoints.
func TestNestedTransactionsAndSavepoints(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		t.Run("nested rollback drops inner only", func(t *testing.T) {
			e.rec.Reset()
			require.NoError(t, e.db.Transaction(func(tx *gorm.DB) error {
				require.NoError(t, tx.Create(&Post{Slug: "outer1"}).Error)
				_ = tx.Transaction(func(tx2 *gorm.DB) error {
					require.NoError(t, tx2.Create(&Post{Slug: "inner"}).Error)
					return errors.New("undo inner")
				})
				require.NoError(t, tx.Transaction(func(tx2 *gorm.DB) error {
					return tx2.Create(&Post{Slug: "inner-kept"}).Error
				}))
				return tx.Create(&Post{Slug: "outer2"}).Error
			}))
			assert.Equal(t, [][]string{{"/", "/posts/inner-kept", "/posts/outer1", "/posts/outer2"}}, e.urlSets())
		})
		t.Run("savepoint rollbackto", func(t *testing.T) {
			e.rec.Reset()
			tx := e.db.Begin()
			require.NoError(t, tx.Create(&Post{Slug: "s1"}).Error)
			require.NoError(t, tx.SavePoint("sp_a").Error)
			require.NoError(t, tx.Create(&Post{Slug: "s2"}).Error)
			require.NoError(t, tx.SavePoint("sp_b").Error)
			require.NoError(t, tx.Create(&Post{Slug: "s3"}).Error)
			require.NoError(t, tx.RollbackTo("sp_a").Error)
			require.NoError(t, tx.Create(&Post{Slug: "s4"}).Error)
			require.NoError(t, tx.Commit().Error)
			assert.Equal(t, [][]string{{"/", "/posts/s1", "/posts/s4"}}, e.urlSets())
		})
		t.Run("release keeps", func(t *testing.T) {
			e.rec.Reset()
			tx := e.db.Begin()
			require.NoError(t, tx.SavePoint("sp_c").Error)
			require.NoError(t, tx.Create(&Post{Slug: "rel1"}).Error)
			require.NoError(t, tx.Exec("RELEASE SAVEPOINT sp_c").Error)
			require.NoError(t, tx.Commit().Error)
			assert.Equal(t, [][]string{{"/", "/posts/rel1"}}, e.urlSets())
		})
		t.Run("rollback to a savepoint keeps what came before it", func(t *testing.T) {
			p := e.seedPost(t, "dup")
			tx := e.db.Begin()
			require.NoError(t, tx.Model(p).Update("title", "x").Error)
			require.NoError(t, tx.SavePoint("sp_d").Error)
			require.NoError(t, tx.Model(p).Update("title", "y").Error) // same URLs again
			require.NoError(t, tx.RollbackTo("sp_d").Error)
			require.NoError(t, tx.Commit().Error)
			assert.Equal(t, [][]string{{"/", "/posts/dup"}}, e.urlSets())
		})
	})
}

// Semantics 10: deduplication and deterministic order within a transaction.
func TestDeduplicationAndOrder(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		a, b := e.seedPost(t, "zeta"), e.seedPost(t, "alpha")
		require.NoError(t, e.db.Transaction(func(tx *gorm.DB) error {
			for range 3 {
				require.NoError(t, tx.Model(a).Update("views", gorm.Expr("views + 1")).Error)
				require.NoError(t, tx.Model(b).Update("views", gorm.Expr("views + 1")).Error)
			}
			return nil
		}))
		reqs := e.rec.Requests()
		require.Len(t, reqs, 1)
		assert.Equal(t, []string{"/", "/posts/alpha", "/posts/zeta"}, reqs[0].URLs)
		assert.Equal(t, sortedTags(a.ID, b.ID), reqs[0].Tags)
	})
}

func sortedTags(ids ...uint) []string {
	r := backends.NewRequest(nil, nil)
	for _, id := range ids {
		r = r.Merge(backends.Request{Tags: []string{fmt.Sprintf("post-%d", id)}})
	}
	return r.Tags
}

// Semantics 12: a failing or panicking Sink is reported, never returned.
func TestSinkFailureIsReportedNotReturned(t *testing.T) {
	for name, hook := range map[string]func(context.Context, backends.Request) error{
		"error": func(context.Context, backends.Request) error { return errors.New("queue full") },
		"panic": func(context.Context, backends.Request) error { panic("sink exploded") },
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, "sqlite", &gorm.Config{})
			e.rec.Hook = hook
			require.NoError(t, e.db.Create(&Post{Slug: "x"}).Error)
			require.NoError(t, e.db.Transaction(func(tx *gorm.DB) error { return tx.Create(&Post{Slug: "y"}).Error }))
			errs := e.errs.all()
			require.Len(t, errs, 2)
			var he *gormpurge.HandoffError
			require.ErrorAs(t, errs[0], &he)
			assert.Equal(t, []string{"/", "/posts/x"}, he.Request.URLs, "the error carries the request so it can be kept")
			assert.Equal(t, uint64(2), e.plugin.Stats().HandoffErrors)
		})
	}
}

// Semantics 13: many goroutines, each with its own transactions, half
// rolling back: exactly the committed work is handed off.
func TestConcurrentTransactions(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		const workers, perWorker = 8, 10
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			want []string
		)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perWorker {
					slug := fmt.Sprintf("w%d-%d", w, i)
					commit := (w+i)%2 == 0
					err := e.db.Transaction(func(tx *gorm.DB) error {
						if err := tx.Create(&Post{Slug: slug}).Error; err != nil {
							return err
						}
						if !commit {
							return errors.New("roll back")
						}
						return nil
					})
					if commit {
						assert.NoError(t, err)
						mu.Lock()
						want = append(want, "/posts/"+slug)
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		want = append(want, "/")
		assert.ElementsMatch(t, want, e.rec.URLs())
		assert.Len(t, e.rec.Requests(), workers*perWorker/2)
	})
}

func TestUnregisteredModelsAreIgnored(t *testing.T) {
	e := newEnv(t, "sqlite", &gorm.Config{})
	require.NoError(t, e.db.Create(&Log{Msg: "hi"}).Error)
	require.NoError(t, e.db.Model(&Log{}).Where("1 = 1").Update("msg", "x").Error)
	require.NoError(t, e.db.Where("1 = 1").Delete(&Log{}).Error)
	assert.Empty(t, e.rec.Requests())
}

func TestRegisterErrors(t *testing.T) {
	p := gormpurge.New(gormpurge.SinkFunc(func(context.Context, backends.Request) error { return nil }))
	type plain struct{ ID uint }
	for _, tc := range []struct {
		arg  any
		want string
	}{
		{nil, "nil is not a model"},
		{Post{}, "gormpurge_test.Post is not a pointer to a struct"},
		{&plain{}, "*gormpurge_test.plain implements none of"},
		{new(int), "*int is not a pointer to a struct"},
		{gormpurge.TargetsOf(func(*int) gormpurge.Targets { return gormpurge.Targets{} }), "TargetsOf[int]"},
		{gormpurge.Registration{}, "zero Registration"},
	} {
		err := p.Register(&Tag{}, tc.arg)
		require.ErrorIs(t, err, gormpurge.ErrNotRegistrable)
		assert.Contains(t, err.Error(), tc.want)
		assert.Contains(t, err.Error(), "argument 1")
	}
}

// A type from another package, registered with a function.
type externalUser struct {
	ID   uint `gorm:"primaryKey"`
	Name string
}

func TestTargetsOf(t *testing.T) {
	e := newEnv(t, "sqlite", &gorm.Config{})
	require.NoError(t, e.plugin.Register(gormpurge.TargetsOf(func(u *externalUser) gormpurge.Targets {
		return gormpurge.Targets{URLs: []string{"/users/" + u.Name}, Tags: []string{"user"}}
	})))
	require.NoError(t, e.db.AutoMigrate(&externalUser{}))
	u := &externalUser{Name: "ann"}
	require.NoError(t, e.db.Create(u).Error)
	require.NoError(t, e.db.Model(u).Update("name", "bob").Error)
	assert.Equal(t, []string{"/users/ann", "/users/bob"}, e.rec.URLs())
	assert.Equal(t, []string{"user"}, e.rec.Tags())
}

// Dry runs write nothing, so they purge nothing.
func TestDryRunPurgesNothing(t *testing.T) {
	e := newEnv(t, "sqlite", &gorm.Config{})
	p := e.seedPost(t, "dry")
	sql := e.db.ToSQL(func(tx *gorm.DB) *gorm.DB { return tx.Create(&Post{Slug: "never"}) })
	assert.Contains(t, sql, "INSERT")
	dry := e.db.Session(&gorm.Session{DryRun: true})
	require.NoError(t, dry.Model(p).Update("slug", "never").Error)
	require.NoError(t, dry.Delete(p).Error)
	assert.Empty(t, e.rec.Requests())
}

// On PostgreSQL a failed statement aborts the transaction: the plugin's own
// reads must not turn into the user's failure.
func TestFailedLookupDoesNotFailTheWrite(t *testing.T) {
	e := newEnv(t, "postgres", &gorm.Config{})
	e.seedPost(t, "go")
	require.NoError(t, e.db.Create(&Tag{Name: "go"}).Error)
	e.rec.Reset()
	// UPDATE posts SET ... FROM tags WHERE posts.slug = tags.name: the
	// plugin's SELECT of the old rows cannot see the FROM clause and fails.
	err := e.db.Model(&Post{}).Clauses(clause.From{Tables: []clause.Table{{Name: "tags"}}}).
		Where("posts.slug = tags.name").Update("title", "tagged").Error
	require.NoError(t, err, "the write succeeds")
	var p Post
	require.NoError(t, e.other.Where("slug = ?", "go").First(&p).Error)
	assert.Equal(t, "tagged", p.Title, "and is committed")
	errs := e.errs.all()
	require.NotEmpty(t, errs)
	var me *gormpurge.ModelError
	require.ErrorAs(t, errs[0], &me, "the failed read is reported")
}
