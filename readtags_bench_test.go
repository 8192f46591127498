package gormpurge_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"gorm.io/gorm"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/internal/testdb"
)

// BenchmarkReadTagsPage serves a page behind p.TagReads that reads rows
// of Post by primary key ("id IN ?", every row named: the most a page's
// tags cost) from a file-backed SQLite database in WAL mode, with the
// plugin installed with and without WithReadTags:
//
//	go test -run '^$' -bench ReadTagsPage -benchmem -count 6 | tee rt.txt
//	benchstat -col /readtags rt.txt
func BenchmarkReadTagsPage(b *testing.B) {
	const seeded = 10_000
	for _, rows := range []int{1, 100, 10_000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			for _, mode := range []string{"off", "on"} {
				b.Run("readtags="+mode, func(b *testing.B) {
					db, p := readTagsBenchDB(b, mode == "on", seeded)
					ids := make([]uint, rows)
					for i := range ids {
						ids[i] = uint(i + 1)
					}
					h := p.TagReads(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						var posts []Post
						if err := db.WithContext(r.Context()).Find(&posts, "id IN ?", ids).Error; err != nil {
							http.Error(w, err.Error(), http.StatusInternalServerError)
							return
						}
						for i := range posts {
							_, _ = io.WriteString(w, posts[i].Title)
						}
					}))
					req := httptest.NewRequest(http.MethodGet, "/posts", nil)
					b.ReportAllocs()
					for b.Loop() {
						w := httptest.NewRecorder()
						h.ServeHTTP(w, req)
						if w.Code != http.StatusOK {
							b.Fatal(w.Body.String())
						}
					}
				})
			}
		})
	}
}

// readTagsBenchDB returns a SQLite database in WAL mode holding n posts,
// and the plugin installed on it, with read tags or without.
func readTagsBenchDB(b *testing.B, readTags bool, n int) (*gorm.DB, *gormpurge.Plugin) {
	b.Helper()
	dsn := "file:" + filepath.Join(b.TempDir(), "bench.db") + "?_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate"
	db := testdb.OpenDSN(b, "sqlite", dsn, nil)
	opts := []gormpurge.Option{gormpurge.WithLogger(slog.New(slog.DiscardHandler))}
	if readTags {
		opts = append(opts, gormpurge.WithReadTags())
	}
	p := gormpurge.New(gormpurge.SinkFunc(func(context.Context, backends.Request) error { return nil }), opts...)
	must(b, p.Register(&Post{}, &Tag{}, &Comment{}))
	must(b, db.Use(p))
	must(b, db.AutoMigrate(&Post{}, &Tag{}, &Comment{}))
	posts := make([]Post, n)
	for i := range posts {
		posts[i] = Post{Slug: fmt.Sprintf("post-%d", i), Title: "A title of a post"}
	}
	must(b, db.CreateInBatches(posts, 1000).Error)
	return db, p
}
