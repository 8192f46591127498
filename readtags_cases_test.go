package gormpurge_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/internal/testdb"
	"github.com/gormpurge/gormpurge/purgetest"
)

// Models of the read-tag tests that run on every database: sized strings
// so that MySQL can index them. None says which pages show it.
type rdAuthor struct {
	ID   uint
	Name string `gorm:"size:191"`
}

type rdPost struct {
	ID       uint
	Slug     string `gorm:"size:191;uniqueIndex"`
	Title    string `gorm:"size:191"`
	AuthorID uint
	Author   rdAuthor
	Tags     []rdTag `gorm:"many2many:rd_post_tags"`
}

type rdTag struct {
	ID   uint
	Name string `gorm:"size:191"`
}

// readDB is one database with the plugin installed with read tags, the
// rd models registered, purging to a recorder.
type readDB struct {
	db  *gorm.DB
	p   *gormpurge.Plugin
	rec *purgetest.Recorder
}

// forEachReadDB runs fn as a subtest on SQLite, and on PostgreSQL and
// MariaDB when their variables are set (see testdb.DSN).
func forEachReadDB(t *testing.T, fn func(t *testing.T, r *readDB), opts ...gormpurge.Option) {
	for _, kind := range testdb.Kinds {
		t.Run(kind, func(t *testing.T) { fn(t, newReadDB(t, kind, opts...)) })
	}
}

func newReadDB(t testing.TB, kind string, opts ...gormpurge.Option) *readDB {
	t.Helper()
	db := testdb.Open(t, kind, nil)
	require.NoError(t, db.AutoMigrate(&rdAuthor{}, &rdPost{}, &rdTag{}))
	rec := purgetest.NewRecorder()
	opts = append([]gormpurge.Option{gormpurge.WithReadTags(), gormpurge.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	p := gormpurge.New(rec, opts...)
	require.NoError(t, p.Register(&rdAuthor{}, &rdPost{}, &rdTag{}))
	require.NoError(t, db.Use(p))
	return &readDB{db: db, p: p, rec: rec}
}

// seed creates author 1, post 1 ("first", with tag 1 "go"), post 2
// ("second") and tag 2 ("db"), outside the recorder's view.
func (r *readDB) seed(t *testing.T) {
	t.Helper()
	require.NoError(t, r.db.Create(&rdAuthor{Name: "Ada"}).Error)
	require.NoError(t, r.db.Create(&rdPost{Slug: "first", Title: "T", AuthorID: 1, Tags: []rdTag{{Name: "go"}}}).Error)
	require.NoError(t, r.db.Create(&rdPost{Slug: "second", Title: "T", AuthorID: 1}).Error)
	require.NoError(t, r.db.Create(&rdTag{Name: "db"}).Error)
	r.rec.Reset()
}

// page serves one GET through TagReads whose handler runs query with the
// request's context, and returns the response.
func (r *readDB) page(t *testing.T, query func(db *gorm.DB) error) *http.Response {
	t.Helper()
	return servePage(t, r.p.TagReads(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if err := query(r.db.WithContext(req.Context())); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})))
}

func servePage(t *testing.T, h http.Handler) *http.Response {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/page", nil))
	res := w.Result()
	require.Equal(t, http.StatusOK, res.StatusCode, w.Body.String())
	return res
}

// tags is the page's Surrogate-Key, as a list.
func (r *readDB) tags(t *testing.T, query func(db *gorm.DB) error) []string {
	t.Helper()
	return strings.Fields(r.page(t, query).Header.Get("Surrogate-Key"))
}

func TestReadTagsOfQueryShapes(t *testing.T) {
	forEachReadDB(t, func(t *testing.T, r *readDB) {
		r.seed(t)
		// Each query reads into fresh variables: a model with its primary
		// key set adds a condition of its own.
		var (
			n      int64
			titles []string
		)
		tests := []struct {
			name  string
			query func(db *gorm.DB) error
			want  []string
		}{
			{"OR conditions tag the table", func(db *gorm.DB) error {
				return db.Where("id = ?", 1).Or("id = ?", 2).Find(&[]rdPost{}).Error
			}, []string{"rd_posts"}},
			{"OR of unique columns tags the table", func(db *gorm.DB) error {
				return db.Where("slug = ?", "first").Or("slug = ?", "none").First(&rdPost{}).Error
			}, []string{"rd_posts"}},
			{"struct condition on a unique column", func(db *gorm.DB) error {
				return db.Where(&rdPost{Slug: "first"}).First(&rdPost{}).Error
			}, []string{"rd_posts:1"}},
			{"struct condition on the primary key", func(db *gorm.DB) error {
				return db.Where(&rdPost{ID: 2}).Find(&[]rdPost{}).Error
			}, []string{"rd_posts:2"}},
			{"struct condition on a column that is not unique", func(db *gorm.DB) error {
				return db.Where(&rdPost{Title: "T"}).First(&rdPost{}).Error
			}, []string{"rd_posts"}},
			{"IN list by primary key", func(db *gorm.DB) error {
				return db.Find(&[]rdPost{}, "id IN ?", []uint{1, 2}).Error
			}, []string{"rd_posts:1", "rd_posts:2"}},
			{"IN list by primary key that did not find every key lists the table", func(db *gorm.DB) error {
				return db.Find(&[]rdPost{}, "id IN ?", []int{2, 99}).Error
			}, []string{"rd_posts"}},
			{"primary keys as Find's argument", func(db *gorm.DB) error {
				return db.Find(&[]rdPost{}, []int{1, 2}).Error
			}, []string{"rd_posts:1", "rd_posts:2"}},
			{"qualified column", func(db *gorm.DB) error {
				return db.Where("rd_posts.id = ?", 2).Find(&[]rdPost{}).Error
			}, []string{"rd_posts:2"}},
			{"Count tags the table", func(db *gorm.DB) error {
				return db.Model(&rdPost{}).Count(&n).Error
			}, []string{"rd_posts"}},
			{"Pluck tags the table", func(db *gorm.DB) error {
				return db.Model(&rdPost{}).Pluck("title", &titles).Error
			}, []string{"rd_posts"}},
			{"Pluck, into another type, lists the table", func(db *gorm.DB) error {
				return db.Model(&rdPost{}).Where("id = ?", 2).Pluck("title", &titles).Error
			}, []string{"rd_posts"}},
			{"a join tags the joined row", func(db *gorm.DB) error {
				return db.Joins("Author").First(&rdPost{}, 2).Error
			}, []string{"rd_posts:2", "rd_authors:1"}},
			{"a preload tags the rows it loads", func(db *gorm.DB) error {
				return db.Preload("Tags").First(&rdPost{}, 1).Error
			}, []string{"rd_posts:1", "rd_tags:1"}},
			{"two queries", func(db *gorm.DB) error {
				if err := db.First(&rdPost{}, 1).Error; err != nil {
					return err
				}
				return db.First(&rdTag{}, 2).Error
			}, []string{"rd_posts:1", "rd_tags:2"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got := r.tags(t, tt.query)
				if slices.Contains(tt.want, "rd_posts") {
					// A table's tag covers its rows: the page may carry them or not.
					got = slices.DeleteFunc(got, func(s string) bool { return strings.HasPrefix(s, "rd_posts:") })
				}
				assert.ElementsMatch(t, tt.want, got)
			})
		}
	})
}

func TestReadTagsJoinOfAnUnregisteredModelTagsNothingForIt(t *testing.T) {
	db := openSQLite(t, &rdAuthor{}, &rdPost{}, &rdTag{})
	rec := purgetest.NewRecorder()
	p := gormpurge.New(rec, gormpurge.WithReadTags(), gormpurge.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, p.Register(&rdPost{}))
	require.NoError(t, db.Use(p))
	r := &readDB{db: db, p: p, rec: rec}
	r.seed(t)

	var post rdPost
	got := r.tags(t, func(db *gorm.DB) error { return db.Joins("Author").Preload("Tags").First(&post, 1).Error })
	assert.Equal(t, []string{"rd_posts:1"}, got)
	assert.Equal(t, "Ada", post.Author.Name)

	var author rdAuthor
	assert.Empty(t, r.tags(t, func(db *gorm.DB) error { return db.First(&author, 1).Error }))
}

func TestRegisterWithoutURLMethodsNeedsReadTags(t *testing.T) {
	err := gormpurge.New(purgetest.NewRecorder()).Register(&rdPost{})
	require.ErrorIs(t, err, gormpurge.ErrNotRegistrable)
	assert.Contains(t, err.Error(), "rdPost")

	p := gormpurge.New(purgetest.NewRecorder(), gormpurge.WithReadTags())
	require.NoError(t, p.Register(&rdPost{}, &rdAuthor{}))
	require.ErrorIs(t, p.Register(rdPost{}), gormpurge.ErrNotRegistrable, "still a pointer to a struct")
}

func TestReadTagsWritesPurgeTheRowsTheyChanged(t *testing.T) {
	forEachReadDB(t, func(t *testing.T, r *readDB) {
		r.seed(t)
		t.Run("adding a tag to a post purges both rows", func(t *testing.T) {
			r.rec.Reset()
			require.NoError(t, r.db.Model(&rdPost{ID: 2}).Association("Tags").Append(&rdTag{ID: 2}))
			assert.Subset(t, r.rec.Tags(), []string{"rd_posts:2", "rd_tags:2"})
			assert.NotContains(t, r.rec.Tags(), "rd_posts:1")
		})
		t.Run("removing a tag from a post purges both rows", func(t *testing.T) {
			r.rec.Reset()
			require.NoError(t, r.db.Model(&rdPost{ID: 1}).Association("Tags").Delete(&rdTag{ID: 1}))
			assert.Subset(t, r.rec.Tags(), []string{"rd_posts:1", "rd_tags:1"})
		})
		t.Run("a delete purges the deleted row", func(t *testing.T) {
			r.rec.Reset()
			require.NoError(t, r.db.Create(&rdTag{ID: 10, Name: "tmp"}).Error)
			r.rec.Reset()
			require.NoError(t, r.db.Delete(&rdTag{ID: 10}).Error)
			assert.ElementsMatch(t, []string{"rd_tags", "rd_tags:10"}, r.rec.Tags())
		})
		t.Run("a delete by condition purges the rows it found", func(t *testing.T) {
			require.NoError(t, r.db.Create(&rdTag{ID: 11, Name: "tmp"}).Error)
			r.rec.Reset()
			require.NoError(t, r.db.Where("name = ?", "tmp").Delete(&rdTag{}).Error)
			assert.ElementsMatch(t, []string{"rd_tags", "rd_tags:11"}, r.rec.Tags())
		})
		t.Run("changing the primary key purges the old and the new row", func(t *testing.T) {
			require.NoError(t, r.db.Create(&rdTag{ID: 20, Name: "old key"}).Error)
			r.rec.Reset()
			require.NoError(t, r.db.Model(&rdTag{ID: 20}).Update("id", 50).Error)
			assert.Subset(t, r.rec.Tags(), []string{"rd_tags", "rd_tags:20", "rd_tags:50"})
		})
		t.Run("Purge on demand names the row", func(t *testing.T) {
			r.rec.Reset()
			require.NoError(t, r.p.Purge(context.Background(), &rdPost{ID: 1}))
			assert.Contains(t, r.rec.Tags(), "rd_posts:1")
		})
	})
}

// A handler that flushes before it queries sends its headers without the
// tags: the plugin counts them. The local cache does not store a flushed
// page (it is a stream), so no cache keeps a page it cannot purge.
func TestReadTagsAfterAFlush(t *testing.T) {
	flushes := map[string]func(w http.ResponseWriter){
		"http.Flusher": func(w http.ResponseWriter) { w.(http.Flusher).Flush() },
		"http.ResponseController": func(w http.ResponseWriter) {
			if err := http.NewResponseController(w).Flush(); err != nil {
				panic(err)
			}
		},
	}
	for name, flush := range flushes {
		t.Run(name, func(t *testing.T) {
			db := openSQLite(t, &rdAuthor{}, &rdPost{}, &rdTag{})
			store, err := localcache.NewMemoryStore()
			require.NoError(t, err)
			lc, err := localcache.NewBackend(store)
			require.NoError(t, err)
			d, err := dispatcher.New([]backends.Backend{lc}, dispatcher.WithLogger(slog.New(slog.DiscardHandler)))
			require.NoError(t, err)
			t.Cleanup(func() { _ = d.Close(context.Background()) })
			p := gormpurge.New(d, gormpurge.WithReadTags(), gormpurge.WithLogger(slog.New(slog.DiscardHandler)))
			require.NoError(t, p.Register(&rdAuthor{}, &rdPost{}))
			require.NoError(t, db.Use(p))
			require.NoError(t, db.Create(&rdPost{Slug: "a", Title: "Old", Author: rdAuthor{Name: "Ada"}}).Error)
			require.NoError(t, d.Flush(context.Background()))

			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", "max-age=60")
				flush(w)
				var post rdPost
				if err := db.WithContext(r.Context()).Joins("Author").First(&post, 1).Error; err != nil {
					panic(err)
				}
				fmt.Fprintf(w, "%s by %s", post.Title, post.Author.Name)
			})
			mw, err := localcache.NewMiddleware(store, localcache.WithTTL(time.Hour), localcache.WithLogger(slog.New(slog.DiscardHandler)))
			require.NoError(t, err)
			srv := httptest.NewServer(mw(p.TagReads(h)))
			t.Cleanup(srv.Close)
			get := func() (body, state, keys string) {
				res, err := srv.Client().Get(srv.URL + "/x")
				require.NoError(t, err)
				defer res.Body.Close()
				b, err := io.ReadAll(res.Body)
				require.NoError(t, err)
				return string(b), res.Header.Get(localcache.XCache), res.Header.Get("Surrogate-Key")
			}

			body, state, keys := get()
			assert.Equal(t, "Old by Ada", body)
			assert.Empty(t, keys, "the headers left before the query ran")
			assert.Equal(t, uint64(2), p.Stats().LateReadTags, "rd_posts:1 and rd_authors:1")
			assert.Equal(t, "MISS", state)
			_, state, _ = get()
			assert.Equal(t, "MISS", state, "a flushed page is not stored")
		})
	}
}

type countingHandler struct{ n int }

func (h *countingHandler) ServeHTTP(http.ResponseWriter, *http.Request) { h.n++ }

func TestTagReadsWithoutReadTagsReturnsTheHandler(t *testing.T) {
	h := &countingHandler{}
	p := gormpurge.New(purgetest.NewRecorder())
	assert.Same(t, h, p.TagReads(h))
	_, same := gormpurge.New(purgetest.NewRecorder(), gormpurge.WithReadTags()).TagReads(h).(*countingHandler)
	assert.False(t, same, "with WithReadTags it wraps h")
}

// A page that reads 10,000 rows of two tables by primary key, as many
// small pages put together, fits every built-in header and one with
// Akamai's limits of 128 tags of 128 characters.
func TestReadTagsOfTenThousandRowsOfTwoTablesFitEveryHeader(t *testing.T) {
	akamaiLike := backends.TagHeader{Name: "Edge-Cache-Tag", Separator: ',', MaxTagBytes: 128, MaxTags: 128}
	headers := []backends.TagHeader{backends.SurrogateKeyHeader(), backends.XKeyHeader(), backends.CacheTagHeader(), akamaiLike}
	forEachReadDB(t, func(t *testing.T, r *readDB) {
		const posts, tags = 9_100, 900 // tags stays under the per-table bound; posts does not
		require.NoError(t, r.db.Create(&rdAuthor{Name: "Ada"}).Error)
		rows := make([]rdPost, posts)
		for i := range rows {
			rows[i] = rdPost{Slug: fmt.Sprintf("p-%d", i), Title: "T", AuthorID: 1}
		}
		require.NoError(t, r.db.CreateInBatches(rows, 1000).Error)
		tagRows := make([]rdTag, tags)
		for i := range tagRows {
			tagRows[i] = rdTag{Name: fmt.Sprintf("t-%d", i)}
		}
		require.NoError(t, r.db.CreateInBatches(tagRows, 1000).Error)

		res := r.page(t, func(db *gorm.DB) error {
			for _, n := range []int{tags, posts} {
				for lo := 1; lo <= n; lo += 500 {
					ids := make([]int, 0, 500)
					for id := lo; id < lo+500 && id <= n; id++ {
						ids = append(ids, id)
					}
					var err error
					if n == tags {
						err = db.Find(&[]rdTag{}, "id IN ?", ids).Error
					} else {
						err = db.Find(&[]rdPost{}, "id IN ?", ids).Error
					}
					if err != nil {
						return err
					}
				}
			}
			return nil
		})
		assert.Empty(t, res.Header.Get("Cache-Control"), "the page is cacheable")
		assert.Zero(t, r.p.Stats().UntaggablePages)
		for _, h := range headers {
			v := res.Header.Get(h.Name)
			require.NotEmpty(t, v, h.Name)
			got := strings.Split(v, string(h.Separator))
			if h.MaxBytes > 0 {
				assert.LessOrEqual(t, len(v), h.MaxBytes, h.Name)
			}
			if h.MaxTags > 0 {
				assert.LessOrEqual(t, len(got), h.MaxTags, h.Name)
			}
			assert.Contains(t, got, "rd_posts", "%s: 9,100 rows collapse into their table's tag", h.Name)
			if !slices.Contains(got, "rd_tags") {
				for id := 1; id <= tags; id++ {
					require.Contains(t, got, fmt.Sprintf("rd_tags:%d", id), "%s: each tag read, or the table", h.Name)
				}
			}
		}
	}, gormpurge.WithTagHeaders(headers...))
}
