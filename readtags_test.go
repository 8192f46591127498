package gormpurge_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	"gorm.io/gorm/schema"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/akamai"
	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/purgetest"
)

// Models of a small blog whose pages are tagged by what they read: none
// of them says which pages show it.
type rtAuthor struct {
	ID   uint
	Name string
}

type rtPost struct {
	ID       uint
	Slug     string `gorm:"uniqueIndex"`
	Title    string
	AuthorID uint
	Author   rtAuthor
	Tags     []rtTag `gorm:"many2many:rt_post_tags"`
}

type rtTag struct {
	ID   uint
	Name string
}

// readSite is a site whose handlers query with the request's context,
// behind TagReads.
type readSite struct {
	db     *gorm.DB
	p      *gormpurge.Plugin
	rec    *purgetest.Recorder
	server *httptest.Server
}

func newReadSite(t *testing.T, opts ...gormpurge.Option) *readSite {
	t.Helper()
	db := openSQLite(t, &rtAuthor{}, &rtPost{}, &rtTag{})
	rec := purgetest.NewRecorder()
	opts = append([]gormpurge.Option{gormpurge.WithReadTags(), gormpurge.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	p := gormpurge.New(rec, opts...)
	require.NoError(t, p.Register(&rtAuthor{}, &rtPost{}, &rtTag{}))
	require.NoError(t, db.Use(p))
	s := &readSite{db: db, p: p, rec: rec}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /posts/{slug}", func(w http.ResponseWriter, r *http.Request) {
		var post rtPost
		err := db.WithContext(r.Context()).Preload("Tags").Joins("Author").First(&post, "slug = ?", r.PathValue("slug")).Error
		if err != nil {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "%s by %s", post.Title, post.Author.Name)
	})
	mux.HandleFunc("GET /ids/{id}", func(w http.ResponseWriter, r *http.Request) {
		var post rtPost
		if err := db.WithContext(r.Context()).First(&post, r.PathValue("id")).Error; err != nil {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, post.Title)
	})
	mux.HandleFunc("GET /posts", func(w http.ResponseWriter, r *http.Request) {
		var posts []rtPost
		require.NoError(t, db.WithContext(r.Context()).Order("id").Find(&posts).Error)
		for _, p := range posts {
			fmt.Fprintln(w, p.Title)
		}
	})
	mux.HandleFunc("GET /raw", func(w http.ResponseWriter, r *http.Request) {
		var posts []rtPost
		require.NoError(t, db.WithContext(r.Context()).Raw("SELECT * FROM rt_posts").Scan(&posts).Error)
		fmt.Fprint(w, len(posts))
	})
	mux.HandleFunc("GET /late", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "headers first, ")
		var post rtPost
		require.NoError(t, db.WithContext(r.Context()).First(&post, 1).Error)
		fmt.Fprint(w, post.Title)
	})
	s.server = httptest.NewServer(p.TagReads(mux))
	t.Cleanup(s.server.Close)
	return s
}

func (s *readSite) seed(t *testing.T) {
	t.Helper()
	ada := rtAuthor{Name: "Ada"}
	require.NoError(t, s.db.Create(&ada).Error)
	require.NoError(t, s.db.Create(&rtPost{Slug: "first", Title: "First", AuthorID: ada.ID, Tags: []rtTag{{Name: "go"}}}).Error)
	require.NoError(t, s.db.Create(&rtPost{Slug: "second", Title: "Second", AuthorID: ada.ID}).Error)
	s.rec.Reset()
}

// tags returns the Surrogate-Key of GET path, as a set.
func (s *readSite) tags(t *testing.T, path string) []string {
	t.Helper()
	res, err := http.Get(s.server.URL + path)
	require.NoError(t, err)
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return strings.Fields(res.Header.Get("Surrogate-Key"))
}

func TestReadTagsTagAPageWithTheRowsItRead(t *testing.T) {
	s := newReadSite(t)
	s.seed(t)
	tests := []struct {
		name, path string
		want       []string
	}{
		{"detail by a unique column, with a preload and a join", "/posts/first", []string{"rt_authors:1", "rt_posts:1", "rt_tags:1"}},
		{"detail by primary key", "/ids/2", []string{"rt_posts:2"}},
		{"missing row by primary key: the table, since a key may be spelled another way", "/ids/99", []string{"rt_posts"}},
		{"missing row by a unique column: any create may make it", "/posts/none", []string{"rt_posts"}},
		{"list", "/posts", []string{"rt_posts", "rt_posts:1", "rt_posts:2"}},
		{"raw SQL tags nothing", "/raw", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.tags(t, tt.path)
			if tt.want == nil {
				assert.Empty(t, got)
				return
			}
			// A list's row tags are covered by its table tag: either is right.
			if strings.HasSuffix(tt.path, "/posts") {
				assert.Contains(t, got, "rt_posts")
				return
			}
			assert.ElementsMatch(t, tt.want, got)
		})
	}
}

func TestReadTagsACommitPurgesTheTagsOfWhatItWrote(t *testing.T) {
	s := newReadSite(t)
	s.seed(t)
	require.NoError(t, s.db.Model(&rtPost{ID: 2}).Update("title", "Second, edited").Error)
	assert.ElementsMatch(t, []string{"rt_posts", "rt_posts:2"}, s.rec.Tags(),
		"the detail page of post 1 carries neither: an unrelated row does not purge it")

	s.rec.Reset()
	require.NoError(t, s.db.Create(&rtPost{Slug: "third", Title: "Third", AuthorID: 1}).Error)
	assert.Contains(t, s.rec.Tags(), "rt_posts", "a create purges the lists")

	s.rec.Reset()
	require.NoError(t, s.db.Model(&rtAuthor{ID: 1}).Update("name", "Ada L.").Error)
	assert.ElementsMatch(t, []string{"rt_authors", "rt_authors:1"}, s.rec.Tags(), "the pages that joined the author")

	s.rec.Reset()
	err := s.db.Transaction(func(tx *gorm.DB) error {
		require.NoError(t, tx.Delete(&rtPost{ID: 1}).Error)
		return fmt.Errorf("roll back")
	})
	require.Error(t, err)
	assert.Empty(t, s.rec.Tags(), "a rolled-back change purges nothing")
}

func TestReadTagsStayUnderTheHeaderLimits(t *testing.T) {
	s := newReadSite(t, gormpurge.WithTagHeaders(backends.SurrogateKeyHeader(), backends.XKeyHeader(), backends.CacheTagHeader()))
	posts := make([]rtPost, 10_000)
	for i := range posts {
		posts[i] = rtPost{Slug: fmt.Sprintf("p-%d", i), Title: "T", AuthorID: 1}
	}
	require.NoError(t, s.db.CreateInBatches(posts, 500).Error)
	res, err := http.Get(s.server.URL + "/posts")
	require.NoError(t, err)
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	require.Equal(t, http.StatusOK, res.StatusCode)
	for _, h := range []backends.TagHeader{backends.SurrogateKeyHeader(), backends.XKeyHeader(), backends.CacheTagHeader()} {
		v := res.Header.Get(h.Name)
		assert.LessOrEqual(t, len(v), h.MaxBytes, h.Name)
		assert.Contains(t, v, "rt_posts", "%s: 10,000 rows collapse into the table's tag", h.Name)
	}
	assert.Empty(t, res.Header.Get("Cache-Control"))
}

func TestReadTagsNeverShareARequestsSet(t *testing.T) {
	s := newReadSite(t)
	s.seed(t)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path, want := "/ids/1", "rt_posts:1"
			if i%2 == 1 {
				path, want = "/ids/2", "rt_posts:2"
			}
			assert.Equal(t, []string{want}, s.tags(t, path))
		}()
	}
	wg.Wait()
}

// Queries after the headers were sent tag the page for the local cache,
// which stores it after rendering, and are counted; a commit that purges
// their tags empties it.
func TestReadTagsReachTheLocalCacheAfterTheHeaders(t *testing.T) {
	db := openSQLite(t, &rtAuthor{}, &rtPost{}, &rtTag{})
	store, err := localcache.NewMemoryStore()
	require.NoError(t, err)
	lc, err := localcache.NewBackend(store)
	require.NoError(t, err)
	d, err := dispatcher.New([]backends.Backend{lc}, dispatcher.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	p := gormpurge.New(d, gormpurge.WithReadTags(), gormpurge.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, p.Register(&rtPost{}))
	require.NoError(t, db.Use(p))
	require.NoError(t, db.Create(&rtPost{Slug: "a", Title: "Old"}).Error)
	require.NoError(t, d.Flush(context.Background()))

	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, "title: ")
		if f, ok := w.(http.Flusher); ok {
			_ = f // the headers are written by the first Write already
		}
		var post rtPost
		require.NoError(t, db.WithContext(r.Context()).First(&post, 1).Error)
		fmt.Fprint(w, post.Title)
	})
	mw, err := localcache.NewMiddleware(store, localcache.WithTTL(time.Hour))
	require.NoError(t, err)
	srv := httptest.NewServer(mw(p.TagReads(h)))
	t.Cleanup(srv.Close)
	get := func() (string, string) {
		res, err := http.Get(srv.URL + "/x")
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b), res.Header.Get(localcache.XCache)
	}
	body, _ := get()
	assert.Equal(t, "title: Old", body)
	_, state := get()
	require.Equal(t, "HIT", state)
	assert.Equal(t, uint64(1), p.Stats().LateReadTags, "the query ran after the headers were sent")

	require.NoError(t, db.Model(&rtPost{ID: 1}).Update("title", "New").Error)
	require.NoError(t, d.Flush(context.Background()))
	body, state = get()
	assert.Equal(t, "MISS", state, "the commit purged rt_posts:1, which the page carries in the local cache")
	assert.Equal(t, "title: New", body)
}

// A join that found no row tags its table: a row created later may be
// the one joined.
func TestReadTagsAJoinThatFoundNothingTagsItsTable(t *testing.T) {
	s := newReadSite(t)
	require.NoError(t, s.db.Create(&rtPost{Slug: "orphan", Title: "Orphan", AuthorID: 7}).Error)
	got := s.tags(t, "/posts/orphan")
	assert.Contains(t, got, "rt_authors", "author 7 does not exist yet")
	assert.Contains(t, got, "rt_posts:1")
	s.rec.Reset()
	require.NoError(t, s.db.Create(&rtAuthor{ID: 7, Name: "Late"}).Error)
	assert.Contains(t, s.rec.Tags(), "rt_authors", "its creation purges the page")
}

// Cases a review found under-purging, each a page that must carry the
// table's tag (or another table's) because a write elsewhere may change it.
func TestReadTagsListWhatTheyCannotPinDown(t *testing.T) {
	s := newReadSite(t)
	s.seed(t)
	require.NoError(t, s.db.Create(&rtAuthor{Name: "Bob"}).Error)
	tests := []struct {
		name string
		run  func(db *gorm.DB) error
		want []string // tags the page must carry, among others
	}{
		{"a condition on a joined relation", func(db *gorm.DB) error {
			var posts []rtPost
			return db.Joins("Author").Where("Author.id = ?", 1).Find(&posts).Error
		}, []string{"rt_posts", "rt_authors"}},
		{"a join written in SQL", func(db *gorm.DB) error {
			var posts []rtPost
			return db.Joins("JOIN rt_authors a ON a.id = rt_posts.author_id").Where("a.name = ?", "Bob").Find(&posts).Error
		}, []string{"rt_posts", "rt_authors"}},
		{"a unique lookup into another type", func(db *gorm.DB) error {
			var dto struct{ Title string }
			return db.Model(&rtPost{}).Where("slug = ?", "first").Scan(&dto).Error
		}, []string{"rt_posts"}},
		{"a count by a unique column", func(db *gorm.DB) error {
			var n int64
			return db.Model(&rtPost{}).Where("slug = ?", "none").Count(&n).Error
		}, []string{"rt_posts"}},
		{"a unique IN list that found some", func(db *gorm.DB) error {
			var posts []rtPost
			return db.Where("slug IN ?", []string{"first", "later"}).Find(&posts).Error
		}, []string{"rt_posts"}},
		{"a key spelled another way, not found", func(db *gorm.DB) error {
			var post rtPost
			_ = db.First(&post, "id = ?", "07").Error
			return nil
		}, []string{"rt_posts"}},
		{"Rows", func(db *gorm.DB) error {
			rows, err := db.Model(&rtPost{}).Where("id = ?", 1).Rows()
			if err == nil {
				rows.Close()
			}
			return err
		}, []string{"rt_posts"}},
		{"a table named by db.Table", func(db *gorm.DB) error {
			var rows []map[string]any
			return db.Table("rt_posts").Find(&rows).Error
		}, []string{"rt_posts"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := s.p.TagReads(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				require.NoError(t, tt.run(s.db.WithContext(r.Context())))
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			got := strings.Fields(rec.Header().Get("Surrogate-Key"))
			for _, want := range tt.want {
				assert.Contains(t, got, want)
			}
		})
	}
}

func TestReadTagsKeepTheHandlersOwnTagsAndWaitForTheFinalStatus(t *testing.T) {
	s := newReadSite(t)
	s.seed(t)
	h := s.p.TagReads(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Surrogate-Key", "homepage sidebar")
		w.WriteHeader(http.StatusEarlyHints)
		var post rtPost
		require.NoError(t, s.db.WithContext(r.Context()).First(&post, 1).Error)
		fmt.Fprint(w, post.Title)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	assert.ElementsMatch(t, []string{"homepage", "sidebar", "rt_posts:1"}, strings.Fields(rec.Header().Get("Surrogate-Key")))
	assert.Zero(t, s.p.Stats().LateReadTags, "103 Early Hints does not send the final headers")
}

func TestReadTagsMakeAPageThatCannotBeTaggedUncacheable(t *testing.T) {
	tiny := backends.TagHeader{Name: "Surrogate-Key", Separator: ' ', MaxBytes: 3}
	s := newReadSite(t, gormpurge.WithTagHeaders(tiny))
	s.seed(t)
	h := s.p.TagReads(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Surrogate-Control", "max-age=3600")
		w.Header().Set("Cache-Control", "public, max-age=60")
		var posts []rtPost
		require.NoError(t, s.db.WithContext(r.Context()).Find(&posts).Error)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	assert.Empty(t, rec.Header().Get("Surrogate-Control"), "CDNs prefer it to Cache-Control")
	assert.Equal(t, uint64(1), s.p.Stats().UntaggablePages)
}

// Akamai's header lists read tags in the form the Akamai backend purges
// them as, within its 128 tags per object.
func TestReadTagsInAkamaisForm(t *testing.T) {
	s := newReadSite(t, gormpurge.WithTagHeaders(akamai.EdgeCacheTagHeader()))
	s.seed(t)
	res, err := http.Get(s.server.URL + "/posts/first")
	require.NoError(t, err)
	res.Body.Close()
	assert.ElementsMatch(t, []string{"rt_authors.1", "rt_posts.1", "rt_tags.1"}, strings.Split(res.Header.Get("Edge-Cache-Tag"), ","))

	posts := make([]rtPost, 200)
	for i := range posts {
		posts[i] = rtPost{Slug: fmt.Sprintf("many-%d", i), AuthorID: 1}
	}
	require.NoError(t, s.db.Create(&posts).Error)
	h := s.p.TagReads(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var got []rtPost
		require.NoError(t, s.db.WithContext(r.Context()).Where("id IN ?", []uint{1, 2, 3}).Find(&got).Error)
		require.NoError(t, s.db.WithContext(r.Context()).Order("id").Limit(150).Find(&got, "id > ?", 2).Error)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	assert.LessOrEqual(t, len(strings.Split(rec.Header().Get("Edge-Cache-Tag"), ",")), akamai.MaxTagsPerObject)
}

// A query that selects columns without the primary key reads rows it
// cannot name: the table's tag covers them.
func TestReadTagsOfRowsReadWithoutTheirKey(t *testing.T) {
	s := newReadSite(t)
	s.seed(t)
	h := s.p.TagReads(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var post rtPost
		require.NoError(t, s.db.WithContext(r.Context()).Select("title").First(&post, "slug = ?", "first").Error)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	assert.Contains(t, strings.Fields(rec.Header().Get("Surrogate-Key")), "rt_posts")
}

// An inner join with conditions filters the rows found: a write to the
// joined table may change which, also when it found none.
func TestReadTagsOfAJoinWithConditions(t *testing.T) {
	s := newReadSite(t)
	s.seed(t)
	h := s.p.TagReads(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var posts []rtPost
		require.NoError(t, s.db.WithContext(r.Context()).InnerJoins("Author", s.db.Where(&rtAuthor{Name: "Zed"})).
			Where("slug = ?", "second").Find(&posts).Error)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	assert.Contains(t, strings.Fields(rec.Header().Get("Surrogate-Key")), "rt_authors", "renaming an author to Zed must purge it")
}

// A join may return a row several times: a unique lookup counts the
// values it found, not the rows.
func TestReadTagsCountTheValuesAUniqueLookupFound(t *testing.T) {
	s := newReadSite(t)
	s.seed(t)
	require.NoError(t, s.db.Model(&rtPost{ID: 1}).Association("Tags").Append(&rtTag{Name: "sql"}))
	h := s.p.TagReads(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var posts []rtPost
		require.NoError(t, s.db.WithContext(r.Context()).Joins("JOIN rt_post_tags pt ON pt.rt_post_id = rt_posts.id").
			Where("slug IN ?", []string{"first", "third"}).Find(&posts).Error)
		require.Len(t, posts, 2, "post 1, twice")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	assert.Contains(t, strings.Fields(rec.Header().Get("Surrogate-Key")), "rt_posts", "a post created as \"third\" must purge it")
}

// One plugin on two databases whose naming strategies differ: a write
// purges the tags as the database it ran on names its table, as its pages
// were tagged.
func TestReadTagsFollowEachDatabasesNames(t *testing.T) {
	rec := purgetest.NewRecorder()
	p := gormpurge.New(rec, gormpurge.WithReadTags(), gormpurge.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, p.Register(&rtAuthor{}))
	open := func(prefix string) *gorm.DB {
		db, err := gorm.Open(sqlite.Open(filepath.Join(t.TempDir(), prefix+".db")),
			&gorm.Config{Logger: logger.Discard, NamingStrategy: schema.NamingStrategy{TablePrefix: prefix}})
		require.NoError(t, err)
		closeOnCleanup(t, db)
		require.NoError(t, db.Use(p))
		require.NoError(t, db.AutoMigrate(&rtAuthor{}))
		return db
	}
	a, b := open("a_"), open("b_")
	require.NoError(t, a.Create(&rtAuthor{Name: "A"}).Error)
	require.NoError(t, b.Create(&rtAuthor{Name: "B"}).Error)
	rec.Reset()
	require.NoError(t, b.Model(&rtAuthor{ID: 1}).Update("name", "B2").Error)
	assert.ElementsMatch(t, []string{"b_rt_authors", "b_rt_authors:1"}, rec.Tags())
}

// A query of a model that is not registered, filtered by a subquery on one
// that is, depends on that table.
func TestReadTagsOfAnUnregisteredModelFilteredByARegisteredTable(t *testing.T) {
	s := newReadSite(t)
	s.seed(t)
	type rtPostTag struct {
		RtPostID, RtTagID uint
	}
	h := s.p.TagReads(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var links []rtPostTag
		require.NoError(t, s.db.WithContext(r.Context()).Table("rt_post_tags").
			Where("rt_post_id IN (SELECT id FROM rt_posts WHERE title = ?)", "First").Find(&links).Error)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	assert.Contains(t, strings.Fields(rec.Header().Get("Surrogate-Key")), "rt_posts")
}
