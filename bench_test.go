package gormpurge_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"gorm.io/gorm"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/internal/testdb"
)

// The benchmarks compare plain GORM with GORM plus the plugin on a
// file-backed SQLite database in WAL mode (synchronous=NORMAL, the usual
// production setting), so that the plugin's own cost is not hidden behind
// fsync, and, when GORMPURGE_TEST_POSTGRES_DSN is set, on a fresh schema of
// that PostgreSQL server. Sub-benchmarks are named key=value (dialect=...,
// db=plain, db=plugin; targets=... for Purge) so that benchstat labels every
// row and column:
//
//	go install golang.org/x/perf/cmd/benchstat@latest
//	go test -run '^$' -bench . -benchmem -count 10 | tee new.txt
//	benchstat -filter '/db:(plain OR plugin)' -col /db new.txt  # plain GORM vs the plugin
//	benchstat -filter .name:Purge new.txt                       # Purge on demand
//	benchstat old.txt new.txt                                   # before and after a change

// benchDialects are the databases the write benchmarks run on.
var benchDialects = []string{"sqlite", "postgres"}

func benchDB(b *testing.B, dialect string, withPlugin bool) *gorm.DB {
	b.Helper()
	var db *gorm.DB
	if dialect == "sqlite" {
		dsn := "file:" + filepath.Join(b.TempDir(), "bench.db") + "?_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate"
		db = testdb.OpenDSN(b, dialect, dsn, nil)
	} else {
		db = testdb.Open(b, dialect, nil) // skips when the server's variable is unset
	}
	if withPlugin {
		p := gormpurge.New(gormpurge.SinkFunc(func(context.Context, backends.Request) error { return nil }))
		if err := p.Register(&Post{}, &Tag{}, &Comment{}); err != nil {
			b.Fatal(err)
		}
		if err := db.Use(p); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.AutoMigrate(&Post{}, &Tag{}, &Comment{}, &Log{}); err != nil {
		b.Fatal(err)
	}
	return db
}

// benchBoth runs fn as sub-benchmarks dialect=.../db=plain and
// dialect=.../db=plugin on each of benchDialects.
func benchBoth(b *testing.B, fn func(b *testing.B, db *gorm.DB)) {
	for _, dialect := range benchDialects {
		b.Run("dialect="+dialect, func(b *testing.B) {
			for _, mode := range []string{"plain", "plugin"} {
				b.Run("db="+mode, func(b *testing.B) {
					fn(b, benchDB(b, dialect, mode == "plugin"))
				})
			}
		})
	}
}

func must(b *testing.B, err error) {
	if err != nil {
		b.Fatal(err)
	}
}

func BenchmarkCreateOne(b *testing.B) {
	benchBoth(b, func(b *testing.B, db *gorm.DB) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			must(b, db.Create(&Post{Slug: fmt.Sprintf("p-%d", i), Title: "t"}).Error)
		}
	})
}

func BenchmarkCreateOneInTransaction(b *testing.B) {
	benchBoth(b, func(b *testing.B, db *gorm.DB) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			must(b, db.Transaction(func(tx *gorm.DB) error {
				return tx.Create(&Post{Slug: fmt.Sprintf("p-%d", i), Title: "t"}).Error
			}))
		}
	})
}

func BenchmarkCreate100(b *testing.B) {
	benchBoth(b, func(b *testing.B, db *gorm.DB) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			posts := make([]Post, 100)
			for j := range posts {
				posts[j].Slug = fmt.Sprintf("p-%d-%d", i, j)
			}
			must(b, db.Create(&posts).Error)
		}
	})
}

func BenchmarkSave(b *testing.B) {
	benchBoth(b, func(b *testing.B, db *gorm.DB) {
		p := &Post{Slug: "p", Title: "t"}
		must(b, db.Create(p).Error)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			p.Title = fmt.Sprintf("t-%d", i)
			must(b, db.Save(p).Error)
		}
	})
}

func BenchmarkUpdateByInstance(b *testing.B) {
	benchBoth(b, func(b *testing.B, db *gorm.DB) {
		p := &Post{Slug: "p", Title: "t"}
		must(b, db.Create(p).Error)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			must(b, db.Model(p).Updates(Post{Title: fmt.Sprintf("t-%d", i)}).Error)
		}
	})
}

func BenchmarkUpdateByCondition(b *testing.B) {
	benchBoth(b, func(b *testing.B, db *gorm.DB) {
		p := &Post{Slug: "p", Title: "t"}
		must(b, db.Create(p).Error)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			must(b, db.Model(&Post{}).Where("id = ?", p.ID).Update("title", fmt.Sprintf("t-%d", i)).Error)
		}
	})
}

func BenchmarkDeleteByPrimaryKey(b *testing.B) {
	benchBoth(b, func(b *testing.B, db *gorm.DB) {
		posts := make([]Post, b.N)
		for i := range posts {
			posts[i].Slug = fmt.Sprintf("p-%d", i)
		}
		must(b, db.CreateInBatches(&posts, 500).Error)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			must(b, db.Delete(&Post{}, posts[i].ID).Error)
		}
	})
}

// Writes to a model that is not registered must cost next to nothing.
func BenchmarkCreateUnregistered(b *testing.B) {
	benchBoth(b, func(b *testing.B, db *gorm.DB) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			must(b, db.Create(&Log{Msg: "m"}).Error)
		}
	})
}

// BenchmarkPurge measures Purge on demand to a sink that does nothing:
// resolving and validating the targets, and the handoff.
func BenchmarkPurge(b *testing.B) {
	p := gormpurge.New(gormpurge.SinkFunc(func(context.Context, backends.Request) error { return nil }),
		gormpurge.WithBaseURL("https://www.example.com"), gormpurge.WithLogger(slog.New(slog.DiscardHandler)))
	must(b, p.Register(&Post{}))
	urls := make([]string, 100)
	posts := make([]Post, 100)
	for i := range urls {
		urls[i] = fmt.Sprintf("/posts/%d", i)
		posts[i] = Post{ID: uint(i + 1), Slug: fmt.Sprint("post-", i)}
	}
	ctx := context.Background()
	for _, bc := range []struct {
		name    string
		targets []any
	}{
		{"1-path", []any{"/about"}},
		{"100-paths", []any{urls}},
		{"100-models", []any{posts}},
	} {
		b.Run("targets="+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				must(b, p.Purge(ctx, bc.targets...))
			}
		})
	}
	b.Run("targets=100-models-suspended", func(b *testing.B) {
		sctx, job := p.Suspend(ctx)
		b.ReportAllocs()
		for b.Loop() {
			must(b, p.Purge(sctx, posts))
		}
		must(b, job.Resume())
	})
}
