package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/akamai"
	"github.com/gormpurge/gormpurge/backends/akamai/akamaitest"
	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/internal/cachetest"
	"github.com/gormpurge/gormpurge/warm"
)

const (
	hitBadge  = "Served from the cache (X-Cache: HIT)"
	missBadge = "Freshly rendered (X-Cache: MISS)"

	firstPost = "/posts/hello-gormpurge" // tags caching, gormpurge
	firstEdit = firstPost + "/edit"
	oldTitle  = "Hello, gormpurge"
)

// mainArgsEnv, set in the environment, makes the test binary run the blog
// itself, with the arguments it holds (one per line), in place of the
// tests (see TestSecondInterruptQuitsAtOnce).
const mainArgsEnv = "BLOG_TEST_MAIN_ARGS"

func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv(mainArgsEnv); ok {
		os.Args = append([]string{"blog"}, strings.Split(args, "\n")...)
		main()
		os.Exit(0)
	}
	code := m.Run()
	removeBinary() // built by the fleet tests
	os.Exit(code)
}

// blog is the example running in the test process on 127.0.0.1, with
// every purge and warm-up recorded.
type blog struct {
	t      *testing.T
	app    *app
	url    string
	client *http.Client
	log    *syncBuffer

	mu      sync.Mutex
	reports []dispatcher.Report
	warmed  chan warm.Result
}

// startBlog starts the blog with cfg on a free 127.0.0.1 port, with a new
// database in t.TempDir unless cfg names one, and stops it when t ends.
func startBlog(t *testing.T, cfg config) *blog {
	t.Helper()
	if cfg.dbPath == "" {
		cfg.dbPath = filepath.Join(t.TempDir(), "blog.db")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &blog{t: t, log: &syncBuffer{}, warmed: make(chan warm.Result, 100)}
	cfg.siteURL = "http://" + ln.Addr().String()
	cfg.onPurge = func(r dispatcher.Report) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.reports = append(b.reports, r)
	}
	cfg.onWarm = func(r warm.Result) { b.warmed <- r }
	b.app, err = newApp(cfg, b.log)
	if err != nil {
		ln.Close()
	}
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(b.app.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	b.url = srv.URL
	b.client = srv.Client()
	b.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, b.app.Close(ctx))
	})
	return b
}

// page is an answer of the blog.
type page struct {
	status int
	cache  string // X-Cache
	header http.Header
	body   string
}

// rendered returns the time the page says it was rendered at.
func (p page) rendered() string {
	m := regexp.MustCompile(`Rendered at <time>([^<]+)</time>`).FindStringSubmatch(p.body)
	if m == nil {
		return ""
	}
	return m[1]
}

func (b *blog) get(path string) page {
	b.t.Helper()
	return b.do(http.MethodGet, path, nil)
}

// getWithCookie gets path with a Cookie header.
func (b *blog) getWithCookie(path, cookie string) page {
	b.t.Helper()
	return b.send(b.client, b.request(http.MethodGet, path, nil, http.Header{"Cookie": {cookie}}))
}

func (b *blog) do(method, path string, form url.Values) page {
	b.t.Helper()
	return b.send(b.client, b.request(method, path, form, nil))
}

// request returns a request for path, with form as its body, and header.
func (b *blog) request(method, path string, form url.Values, header http.Header) *http.Request {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(b.t.Context(), method, b.url+path, body)
	require.NoError(b.t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return req
}

// send sends req with client and reads the answer.
func (b *blog) send(client *http.Client, req *http.Request) page {
	b.t.Helper()
	res, err := client.Do(req)
	require.NoError(b.t, err)
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	require.NoError(b.t, err)
	return page{status: res.StatusCode, cache: res.Header.Get(localcache.XCache), header: res.Header, body: string(data)}
}

// miss asserts that path is freshly rendered, shows want, and says so.
func (b *blog) miss(path, want string) page {
	b.t.Helper()
	p := b.get(path)
	require.Equal(b.t, http.StatusOK, p.status, "%s: %s", path, p.body)
	assert.Equal(b.t, "MISS", p.cache, "%s: X-Cache", path)
	assert.Contains(b.t, p.body, missBadge, "%s: the badge", path)
	assert.Contains(b.t, p.body, want, path)
	return p
}

// hit asserts that path is served from the cache, shows want, and says so.
func (b *blog) hit(path, want string) page {
	b.t.Helper()
	p := b.get(path)
	require.Equal(b.t, http.StatusOK, p.status, "%s: %s", path, p.body)
	assert.Equal(b.t, "HIT", p.cache, "%s: X-Cache", path)
	assert.Contains(b.t, p.body, hitBadge, "%s: the badge", path)
	assert.Contains(b.t, p.body, want, path)
	return p
}

// edit posts the edit form of a post.
func (b *blog) edit(path, title, body, tags string) page {
	b.t.Helper()
	return b.do(http.MethodPost, path+"/edit", url.Values{"title": {title}, "body": {body}, "tags": {tags}})
}

// flush waits until the purges committed so far reached the caches.
func (b *blog) flush() {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(b.t, b.app.Flush(ctx))
}

// takeReports returns the purges reported since the last call.
func (b *blog) takeReports() []dispatcher.Report {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.reports
	b.reports = nil
	return r
}

// purged returns the URLs and tags the backend named purged in reports.
func purged(reports []dispatcher.Report, backend string) (urls, tags []string) {
	for _, r := range reports {
		if r.Backend == backend && r.Outcome == dispatcher.Delivered {
			urls = append(urls, r.Request.URLs...)
			tags = append(tags, r.Request.Tags...)
		}
	}
	slices.Sort(urls)
	slices.Sort(tags)
	return slices.Compact(urls), slices.Compact(tags)
}

// The walk-through: pages are cached, an edit purges every page
// that shows the post and the pages of the tags it lost and gained, the
// next view is fresh, and the edit form is never cached.
func TestEditPurgesEveryPageShowingThePost(t *testing.T) {
	b := startBlog(t, config{})

	// The pages that show the first post; those that show the tags it
	// loses or gains (both-sides and /tags/gorm show "caching"); and
	// those that show none of them.
	showing := []string{"/", firstPost, "/tags/caching", "/tags/gormpurge", "/authors/ada", "/authors/grace"}
	showingTag := []string{"/posts/both-sides", "/tags/gorm"}
	others := []string{"/posts/after-the-commit", "/tags/transactions"}
	for _, path := range slices.Concat(showing, showingTag, others) {
		first := b.miss(path, "gormpurge blog")
		again := b.hit(path, "gormpurge blog")
		assert.Equal(t, first.rendered(), again.rendered(), "%s: a hit shows when the page was rendered", path)
		assert.Equal(t, "no-cache", again.header.Get("Cache-Control"), "%s: browsers revalidate every view", path)
	}
	b.hit(firstPost, oldTitle)
	b.hit("/", oldTitle)

	// The edit form is never cached.
	for range 2 {
		form := b.get(firstEdit)
		require.Equal(t, http.StatusOK, form.status)
		assert.Equal(t, "MISS", form.cache)
		assert.Equal(t, "no-store", form.header.Get("Cache-Control"))
		assert.Contains(t, form.body, `value="caching, gormpurge"`)
		assert.Contains(t, form.body, "every page tagged\n<code>posts:1</code>")
	}
	b.flush()
	require.Empty(t, b.takeReports(), "reading purges nothing")

	// Drop "caching" (tag 2), keep "gormpurge", add "fresh" (tag 5).
	res := b.edit(firstPost, "Fresh & new title", "New text.\n\nSecond paragraph.", "gormpurge, Fresh")
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	assert.Equal(t, firstPost, res.header.Get("Location"))
	b.flush()

	// The plugin purged the post's page by URL (Post.AbsoluteURL), and the
	// read tags of the post and of the tags whose links changed, with the
	// tables they were written in.
	urls, tags := purged(b.takeReports(), localcache.BackendName)
	assert.Equal(t, []string{firstPost}, urls)
	assert.Equal(t, []string{"posts", "posts:1", "tags", "tags:2", "tags:5"}, tags)
	assert.Regexp(t, `level=INFO msg=purge backend=localcache outcome=delivered urls=\[/posts/hello-gormpurge\] tags="\[posts posts:1 tags tags:2 tags:5\]" result="removed 8 entries"`, b.log.String())

	const newTitle = "Fresh &amp; new title"
	post := b.miss(firstPost, newTitle)
	assert.Contains(t, post.body, "<p>Second paragraph.</p>")
	assert.Contains(t, post.body, `href="/tags/fresh"`)
	assert.NotContains(t, post.body, `href="/tags/caching"`)
	assert.Equal(t, "authors:1 posts:1 tags:1 tags:5", post.header.Get("Surrogate-Key"))
	b.hit(firstPost, newTitle)
	for _, path := range []string{"/", "/tags/gormpurge", "/tags/fresh", "/authors/ada"} {
		p := b.miss(path, newTitle)
		assert.NotContains(t, p.body, oldTitle, path)
		b.hit(path, newTitle)
	}
	p := b.miss("/tags/caching", "Both sides of a many-to-many link")
	assert.NotContains(t, p.body, oldTitle, "the post left the tag")
	assert.NotContains(t, p.body, newTitle)
	for _, path := range slices.Concat(showingTag, []string{"/authors/grace"}) {
		b.miss(path, "gormpurge blog")
	}
	for _, path := range others {
		b.hit(path, "gormpurge blog")
	}
}

// allPages are the pages of the seeded blog.
var allPages = []string{
	"/", firstPost, "/posts/after-the-commit", "/posts/both-sides",
	"/tags/caching", "/tags/gormpurge", "/tags/transactions", "/tags/gorm",
	"/authors/ada", "/authors/grace",
}

// readTagCase is an edit and the pages it must purge: those that showed
// what it changed. Every other page of allPages must stay cached.
type readTagCase struct {
	name   string
	edit   func(t *testing.T, b *blog)
	purged []string
	shows  string // what a purged page shows after the edit (firstPurged)
}

// readTagCases edit a post, a tag and an author: each purges exactly the
// pages that read it (and the lists of its table), and no other.
var readTagCases = []readTagCase{
	{
		name: "a post",
		edit: func(t *testing.T, b *blog) {
			res := b.edit(firstPost, "Only the title changed", "", "caching, gormpurge") // the same tags
			require.Equal(t, http.StatusSeeOther, res.status, res.body)
		},
		// The post's page, the pages that list it, and the lists of
		// posts by author (a query by author_id carries "posts").
		purged: []string{"/", firstPost, "/tags/caching", "/tags/gormpurge", "/authors/ada", "/authors/grace"},
		shows:  "Only the title changed",
	},
	{
		name: "a tag",
		edit: func(t *testing.T, b *blog) {
			var tag Tag
			db := b.app.db.WithContext(t.Context())
			require.NoError(t, db.Where("name = ?", "gorm").Take(&tag).Error)
			require.NoError(t, db.Model(&tag).Update("name", "orm").Error)
		},
		// Every page that shows the tag "gorm": both-sides and the lists
		// that show it with its tags.
		purged: []string{"/", "/posts/both-sides", "/tags/caching", "/tags/gorm", "/authors/grace"},
		shows:  `href="/tags/orm"`,
	},
	{
		name: "an author",
		edit: func(t *testing.T, b *blog) {
			var ada Author
			db := b.app.db.WithContext(t.Context())
			require.NoError(t, db.Where("slug = ?", "ada").Take(&ada).Error)
			require.NoError(t, db.Model(&ada).Update("name", "Ada King").Error)
		},
		// Every page that names Ada beside a post.
		purged: []string{"/", firstPost, "/posts/after-the-commit", "/tags/caching", "/tags/gormpurge",
			"/tags/transactions", "/authors/ada"},
		shows: "Ada King",
	},
}

// Editing a post, a tag or an author purges, from the local cache, the
// pages that showed it: they are MISS, and every other page stays HIT.
func TestReadTagsPurgeThePagesThatShowedTheEdit(t *testing.T) {
	for _, tc := range readTagCases {
		t.Run(tc.name, func(t *testing.T) {
			b := startBlog(t, config{})
			for _, path := range allPages {
				b.miss(path, "gormpurge blog")
				b.hit(path, "gormpurge blog")
			}
			tc.edit(t, b)
			b.flush()
			for _, path := range allPages {
				p := b.get(path)
				if slices.Contains(tc.purged, path) {
					assert.Equal(t, "MISS", p.cache, "%s shows what changed: purged", path)
				} else {
					assert.Equal(t, "HIT", p.cache, "%s does not show it: still cached", path)
				}
			}
			assert.Contains(t, b.get(tc.purged[0]).body, tc.shows)
		})
	}
}

// An edit that fails inside its transaction rolls back, tags included,
// and purges nothing: every page stays cached, and right.
func TestRolledBackEditPurgesNothing(t *testing.T) {
	b := startBlog(t, config{})
	paths := []string{"/", firstPost, "/tags/caching", "/tags/gormpurge"}
	for _, path := range paths {
		b.miss(path, oldTitle)
		b.hit(path, oldTitle)
	}

	// The empty title is refused after the tags were written in the same
	// transaction.
	res := b.edit(firstPost, "  ", "Other text", "rollback-only")
	require.Equal(t, http.StatusBadRequest, res.status)
	assert.Contains(t, res.body, "a post needs a title")
	assert.Contains(t, res.body, `value="rollback-only"`, "the form keeps what was typed")
	assert.Equal(t, "no-store", res.header.Get("Cache-Control"))

	// A tag name that cannot be a URL is refused before the transaction.
	res = b.edit(firstPost, "Title", "Text", "no/slashes")
	require.Equal(t, http.StatusBadRequest, res.status)
	assert.Contains(t, res.body, "use letters, digits and hyphens")

	b.flush()
	assert.Empty(t, b.takeReports(), "a rolled-back edit purges nothing")
	for _, path := range paths {
		b.hit(path, oldTitle)
	}
	var post Post
	require.NoError(t, b.app.db.Preload("Tags").Where("slug = ?", "hello-gormpurge").Take(&post).Error)
	assert.Equal(t, oldTitle, post.Title)
	assert.Equal(t, []string{"caching", "gormpurge"}, tagNames(post.Tags), "the tags were rolled back too")
	var n int64
	require.NoError(t, b.app.db.Model(&Tag{}).Where("name = ?", "rollback-only").Count(&n).Error)
	assert.Zero(t, n, "the new tag was rolled back")

	assert.Equal(t, http.StatusNotFound, b.edit("/posts/nope", "Title", "", "").status)
}

// Saving an edit waits until its purges are delivered before it
// redirects: a browser that follows the redirect at once gets the new page,
// freshly rendered, not the old one from the cache.
func TestEditRedirectShowsTheNewPage(t *testing.T) {
	b := startBlog(t, config{})
	b.miss(firstPost, oldTitle)
	b.hit(firstPost, oldTitle)
	b.miss("/", oldTitle)

	follow := &http.Client{Transport: b.client.Transport} // follows redirects
	req := b.request(http.MethodPost, firstEdit, url.Values{"title": {"Read your own write"}, "body": {"New."}, "tags": {"gormpurge"}}, nil)
	p := b.send(follow, req)
	require.Equal(t, http.StatusOK, p.status, p.body)
	require.Equal(t, "MISS", p.cache, "the page the redirect leads to")
	assert.Contains(t, p.body, missBadge)
	assert.Contains(t, p.body, "<h1>Read your own write</h1>")
	assert.NotContains(t, p.body, oldTitle)
	b.hit(firstPost, "Read your own write")
	b.miss("/", "Read your own write")
}

// Cookies other than the blog's session cookie, such as those other apps
// on 127.0.0.1 set, do not keep pages out of the cache.
func TestOtherCookiesDoNotDisableTheCache(t *testing.T) {
	b := startBlog(t, config{})

	for i, want := range []string{"MISS", "HIT"} {
		p := b.getWithCookie(firstPost, "csrftoken=abc")
		require.Equal(t, http.StatusOK, p.status)
		assert.Equal(t, want, p.cache, "request %d", i)
	}
	assert.Contains(t, b.getWithCookie(firstPost, "csrftoken=abc; _ga=GA1.1").body, hitBadge)
	b.hit(firstPost, oldTitle) // the same entry as without cookies

	// The session cookie makes a request personal: neither answered from
	// the cache nor stored.
	for _, cookie := range []string{"blog_session=x", "csrftoken=abc; blog_session=x"} {
		for _, path := range []string{firstPost, "/tags/gorm"} {
			p := b.getWithCookie(path, cookie)
			require.Equal(t, http.StatusOK, p.status)
			assert.Empty(t, p.cache, "%s with %s", path, cookie)
			assert.Contains(t, p.body, "Not cached", "%s with %s", path, cookie)
		}
	}
	b.miss("/tags/gorm", "Both sides") // the personal requests stored nothing
}

// A refused edit shows the form again under the post's own title; an
// unknown post is 404 whatever the form says.
func TestRefusedEditShowsThePost(t *testing.T) {
	b := startBlog(t, config{})
	for _, tc := range []struct{ title, tags, problem string }{
		{"  ", "gormpurge", "a post needs a title"},        // refused in the transaction
		{"Title", "no/slashes", "use letters, digits and"}, // refused before it
	} {
		res := b.edit(firstPost, tc.title, "Text", tc.tags)
		require.Equal(t, http.StatusBadRequest, res.status, res.body)
		assert.Contains(t, res.body, tc.problem)
		assert.Contains(t, res.body, "<h1>Edit “Hello, gormpurge”</h1>", tc.problem)
		assert.Contains(t, res.body, "<title>Edit Hello, gormpurge · gormpurge blog</title>", tc.problem)
		assert.Contains(t, res.body, `action="/posts/hello-gormpurge/edit"`, tc.problem)
	}

	for _, form := range []url.Values{
		{"title": {"Title"}, "tags": {"ok"}},
		{"title": {""}, "tags": {"ok"}},
		{"title": {"Title"}, "tags": {"no/slashes"}},
	} {
		res := b.do(http.MethodPost, "/posts/nope/edit", form)
		assert.Equal(t, http.StatusNotFound, res.status, "%v: %s", form, res.body)
	}
	b.flush()
	assert.Empty(t, b.takeReports())
}

// The database is created and seeded on the first run and reused, as it
// was left, on the next.
func TestDatabaseSeededOnFirstRunOnly(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "blog.db")
	ctx := t.Context()

	a, err := newApp(config{dbPath: dbPath}, io.Discard)
	require.NoError(t, err)
	assert.True(t, a.seeded)
	assert.Equal(t, "hello-gormpurge", a.firstSlug)
	assert.FileExists(t, dbPath)
	var posts, tags int64
	require.NoError(t, a.db.Model(&Post{}).Count(&posts).Error)
	require.NoError(t, a.db.Model(&Tag{}).Count(&tags).Error)
	assert.EqualValues(t, len(seedPosts), posts)
	assert.EqualValues(t, 4, tags)
	require.NoError(t, a.db.Model(&Post{}).Where("slug = ?", "both-sides").Update("title", "Edited").Error)
	require.NoError(t, a.Close(ctx))

	var log syncBuffer
	a, err = newApp(config{dbPath: dbPath}, &log)
	require.NoError(t, err)
	defer func() { require.NoError(t, a.Close(ctx)) }()
	assert.False(t, a.seeded)
	assert.Contains(t, log.String(), `msg="using the existing database"`)
	var again, tagsAgain int64
	require.NoError(t, a.db.Model(&Post{}).Count(&again).Error)
	require.NoError(t, a.db.Model(&Tag{}).Count(&tagsAgain).Error)
	assert.Equal(t, posts, again, "no second seed")
	assert.Equal(t, tags, tagsAgain)
	var edited Post
	require.NoError(t, a.db.Where("slug = ?", "both-sides").Take(&edited).Error)
	assert.Equal(t, "Edited", edited.Title)
}

// With -warm, the purged URLs are rendered again at once: the first
// visitor after an edit gets the post's new page from the cache. The
// warmer renders the URLs a purge names, the post's page (Post keeps its
// URL for that); the pages purged by read tags alone are rendered by
// their next visitor.
func TestWarmAfterEdit(t *testing.T) {
	b := startBlog(t, config{warm: true})
	for _, path := range []string{"/", firstPost, "/tags/gormpurge", "/tags/gorm"} {
		b.miss(path, "gormpurge blog")
	}

	res := b.edit(firstPost, "Warm title", "Warm text", "caching, gormpurge")
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	b.flush()
	urls, tags := purged(b.takeReports(), localcache.BackendName)
	assert.Equal(t, []string{firstPost}, urls)
	assert.Equal(t, []string{"posts", "posts:1"}, tags)
	waitWarmed(t, b.warmed, urls)

	b.hit(firstPost, "Warm title")
	for _, path := range []string{"/", "/tags/gormpurge"} {
		b.miss(path, "Warm title")
	}
	b.hit("/tags/gorm", "Both sides") // not purged, still cached
	assert.Contains(t, b.log.String(), `msg=warmed url=/posts/hello-gormpurge status=200 cache=MISS`)
}

// waitWarmed waits until every URL in urls was warmed.
func waitWarmed(t *testing.T, results <-chan warm.Result, urls []string) {
	t.Helper()
	left := slices.Clone(urls)
	timeout := time.After(10 * time.Second)
	for len(left) > 0 {
		select {
		case r := <-results:
			require.NoError(t, r.Err)
			require.Equal(t, http.StatusOK, r.Status, r.URL)
			left = slices.DeleteFunc(left, func(u string) bool { return u == r.URL })
		case <-timeout:
			require.Failf(t, "not warmed", "%q", left)
		}
	}
}

// The clear endpoint empties the local cache, for requests from this
// machine only.
func TestClearCache(t *testing.T) {
	b := startBlog(t, config{})
	b.miss("/", oldTitle)
	b.miss(firstPost, oldTitle)

	assert.Equal(t, http.StatusMethodNotAllowed, b.get("/admin/cache/clear").status)
	res := b.do(http.MethodPost, "/admin/cache/clear", nil)
	require.Equal(t, http.StatusOK, res.status)
	assert.Equal(t, "removed 2 entries\n", res.body)
	b.miss("/", oldTitle)

	// From another machine.
	req := httptest.NewRequest(http.MethodPost, "/admin/cache/clear", nil)
	req.RemoteAddr = "192.0.2.7:40000"
	w := httptest.NewRecorder()
	b.app.Handler().ServeHTTP(w, req)
	assert.Equal(t, http.StatusForbidden, w.Code)
	b.hit("/", oldTitle)
}

// running is run serving in the test process.
type running struct {
	base   string        // where to browse
	cancel func()        // ends run's context
	lines  <-chan string // what run printed, closed when it returns
	done   <-chan error  // what run returned
}

// startRun calls run with cfg (on 127.0.0.1:0, with a new database) and
// stop, and waits until it prints where to browse.
func startRun(t *testing.T, cfg config, stop func()) running {
	t.Helper()
	cfg.addr = "127.0.0.1:0"
	cfg.dbPath = filepath.Join(t.TempDir(), "blog.db")
	cfg.akamaiSection, cfg.akamaiNetwork = "ccu", "staging"
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, stop, cfg, pw)
		pw.Close()
	}()
	lines := make(chan string, 1000)
	go func() {
		defer close(lines)
		s := bufio.NewScanner(pr)
		for s.Scan() {
			lines <- s.Text()
		}
	}()

	re := regexp.MustCompile(`^Blog running at (http://127\.0\.0\.1:\d+)/ \(edit a post at (http://127\.0\.0\.1:\d+)/posts/hello-gormpurge/edit\)$`)
	for {
		select {
		case line, ok := <-lines:
			require.True(t, ok, "run ended before it printed where to browse")
			if m := re.FindStringSubmatch(line); m != nil {
				require.Equal(t, m[1], m[2])
				assert.FileExists(t, cfg.dbPath)
				return running{base: m[1], cancel: cancel, lines: lines, done: done}
			}
		case err := <-done:
			require.FailNow(t, "run returned early", "%v", err)
		}
	}
}

// stop ends run's context, and returns the whole log and what run
// returned.
func (r running) stop() (string, error) {
	r.cancel()
	var log []string
	for line := range r.lines {
		log = append(log, line)
	}
	return strings.Join(log, "\n"), <-r.done
}

// run serves until its context ends, prints where to browse, and shuts
// down gracefully.
func TestRun(t *testing.T) {
	var stopped atomic.Bool
	r := startRun(t, config{}, func() { stopped.Store(true) })
	base := r.base

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer client.CloseIdleConnections()
	for _, want := range []string{"MISS", "HIT"} {
		res, err := client.Get(base + firstPost)
		require.NoError(t, err)
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		assert.Equal(t, want, res.Header.Get(localcache.XCache))
		assert.Contains(t, string(body), oldTitle)
	}
	res, err := client.PostForm(base+firstEdit, url.Values{"title": {"Saved by run"}, "tags": {"gormpurge"}})
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusSeeOther, res.StatusCode)

	assert.False(t, stopped.Load())
	all, err := r.stop()
	require.NoError(t, err)
	assert.True(t, stopped.Load(), "run calls stop once its context is done")
	assert.Contains(t, all, `msg="post saved" post=hello-gormpurge title="Saved by run"`)
	assert.Contains(t, all, `msg="shutting down" hint="press Ctrl-C again to quit at once"`)
	assert.Contains(t, all, `msg=purge backend=localcache outcome=delivered urls=[/posts/hello-gormpurge] tags="[posts posts:1 tags tags:2]"`)
	assert.NotContains(t, all, "level=WARN")
	_, err = net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), time.Second)
	assert.Error(t, err, "the server is closed")
}

// downNode returns the address of a cache node that refuses connections.
func downNode(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr
}

// With a Varnish node down, an edit redirects once its wait is over, and
// the shutdown logs the purges it could not deliver but does not fail.
func TestShutdownWithACacheDown(t *testing.T) {
	r := startRun(t, config{varnish: downNode(t), editWait: 100 * time.Millisecond,
		shutdownTimeout: 300 * time.Millisecond}, nil)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer client.CloseIdleConnections()
	res, err := client.PostForm(r.base+firstEdit, url.Values{"title": {"Varnish is down"}, "tags": {"gormpurge"}})
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusSeeOther, res.StatusCode)

	all, err := r.stop()
	require.NoError(t, err, "undelivered purges do not make the shutdown fail")
	assert.Contains(t, all, `level=WARN msg="redirecting before the purges were delivered`)
	assert.Contains(t, all, `msg=purge backend=localcache outcome=delivered`)
	assert.Contains(t, all, `level=WARN msg="purges not delivered before shutdown" backend=varnish urls=[/posts/hello-gormpurge] tags="[posts posts:1 tags tags:2]" error="context deadline exceeded"`)
	assert.Equal(t, 1, strings.Count(all, `msg="purges not delivered before shutdown"`), all)
}

// What Close does after the dispatcher gets a context of its own: the
// dispatcher may have used up Close's.
func TestCloseGivesBackendsTheirOwnContext(t *testing.T) {
	a, err := newApp(config{dbPath: filepath.Join(t.TempDir(), "blog.db"), varnish: downNode(t)}, io.Discard)
	require.NoError(t, err)
	var closerErr atomic.Pointer[error]
	a.closers = append(a.closers, func(ctx context.Context) error {
		err := ctx.Err()
		closerErr.Store(&err)
		return nil
	})
	var post Post
	require.NoError(t, a.db.Where("slug = ?", "hello-gormpurge").Take(&post).Error)
	require.NoError(t, a.db.Model(&post).Update("title", "Queued").Error) // a purge Varnish never gets

	ctx, cancel := context.WithCancel(t.Context())
	cancel() // used up
	undelivered, err := a.shutdown(ctx)
	require.NoError(t, err, "the backends closed without ctx")
	require.NotNil(t, undelivered)
	assert.Contains(t, undelivered.Requests, "varnish")
	assert.ErrorIs(t, undelivered, context.Canceled)
	require.NotNil(t, closerErr.Load(), "the closers ran")
	assert.NoError(t, *closerErr.Load())
}

// The blog run as its own process (see TestMain): the first Ctrl-C starts
// the graceful shutdown, a second one ends the process at once.
func TestSecondInterruptQuitsAtOnce(t *testing.T) {
	if signal.Ignored(os.Interrupt) {
		// The blog would inherit it: no Ctrl-C would end it.
		t.Skip("SIGINT is ignored in this process (started in the background by a shell without job control?)")
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), mainArgsEnv+"=-addr\n127.0.0.1:0\n-db\n"+filepath.Join(t.TempDir(), "blog.db"))
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	var waitErr error
	exited := make(chan struct{}) // closed once waitErr is set
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	lines := make(chan string, 1000)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
		waitErr = cmd.Wait() // after the output is read, as Wait closes the pipe
		close(exited)
	}()
	waitLine := func(re *regexp.Regexp) []string {
		t.Helper()
		for line := range lines {
			if m := re.FindStringSubmatch(line); m != nil {
				return m
			}
		}
		require.FailNow(t, "the blog ended before printing", "%s", re)
		return nil
	}
	addr := waitLine(regexp.MustCompile(`^Blog running at http://(127\.0\.0\.1:\d+)/ `))[1]

	// A request whose headers never end holds the graceful shutdown up:
	// the server waits for it, for 10 seconds.
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("GET / HTTP/1.1\r\nHost: " + addr + "\r\n"))
	require.NoError(t, err)

	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	waitLine(regexp.MustCompile(`msg="shutting down"`))
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	<-exited
	var exitErr *exec.ExitError
	require.ErrorAs(t, waitErr, &exitErr, "the blog exited with a status, not nil")
	status, ok := exitErr.Sys().(syscall.WaitStatus)
	require.True(t, ok)
	assert.True(t, status.Signaled(), "ended by the second interrupt, not after the shutdown: %v", exitErr)
	assert.Equal(t, syscall.SIGINT, status.Signal())
}

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags(nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, config{addr: "127.0.0.1:8080", dbPath: "blog.db", akamaiSection: "ccu", akamaiNetwork: "staging",
		cacheName: "blog"}, cfg)

	cfg, err = parseFlags([]string{"-addr", "127.0.0.1:9000", "-db", "x.db", "-varnish", "http://127.0.0.1:6081",
		"-site-host", "www.example.com", "-akamai-edgerc", "~/.edgerc", "-akamai-section", "purge",
		"-akamai-network", "production", "-warm", "-v", "-redis", "redis://127.0.0.1:6379/2", "-redis-bus",
		"-cache-name", "site-2"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, config{addr: "127.0.0.1:9000", dbPath: "x.db", varnish: "http://127.0.0.1:6081",
		siteHost: "www.example.com", akamaiEdgerc: "~/.edgerc", akamaiSection: "purge", akamaiNetwork: "production",
		warm: true, verbose: true, redis: "redis://127.0.0.1:6379/2", redisBus: true, cacheName: "site-2"}, cfg)

	cfg, err = parseFlags([]string{"-nats", "nats://127.0.0.1:4222"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "nats://127.0.0.1:4222", cfg.nats)

	var out bytes.Buffer
	_, err = parseFlags([]string{"extra"}, &out)
	require.Error(t, err)
	assert.Contains(t, out.String(), `unexpected argument "extra"`)
	assert.Contains(t, out.String(), "-varnish node")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-redis-bus"}, "-redis-bus needs -redis"},
		{[]string{"-redis", "127.0.0.1:6379", "-nats", "nats://127.0.0.1:4222"}, "-redis and -nats: choose one"},
		{[]string{"-nats", "nats://127.0.0.1:4222", "-cache-name", "a.b"}, `-cache-name "a.b"`},
		{[]string{"-redis", "127.0.0.1:6379", "-cache-name", ""}, `-cache-name ""`},
	} {
		out.Reset()
		_, err = parseFlags(tc.args, &out)
		require.Error(t, err, tc.args)
		assert.Contains(t, out.String(), tc.want, tc.args)
	}
}

// With -varnish and -akamai-edgerc, an edit purges a Varnish node (here a
// stand-in recording the PURGE requests) and Akamai (the fake Fast Purge
// API of akamaitest) too, after the local cache.
func TestVarnishAndAkamaiFlags(t *testing.T) {
	var (
		mu    sync.Mutex
		seen  []string
		local atomic.Pointer[app]
	)
	varnish := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		line := r.Method + " " + r.RequestURI + " Host:" + r.Host
		if k := r.Header.Get("Xkey-Purge"); k != "" {
			line += " xkey-purge:" + k
		}
		// The page must have left the local cache already, or Varnish
		// would fetch the old page from it again.
		if a := local.Load(); a != nil && r.Header.Get("Xkey-Purge") == "" {
			if a.memory.Len() != 0 {
				line += " (local cache not purged)"
			}
		}
		mu.Lock()
		seen = append(seen, line)
		mu.Unlock()
	}))
	defer varnish.Close()
	fake := akamaitest.NewServer()
	defer fake.Close()
	edgerc := filepath.Join(t.TempDir(), "edgerc")
	require.NoError(t, fake.WriteEdgerc(edgerc, "ccu"))

	b := startBlog(t, config{varnish: varnish.URL, siteHost: "www.example.com",
		akamaiEdgerc: edgerc, akamaiSection: "ccu", akamaiNetwork: "staging", akamaiClient: fake.Client()})
	local.Store(b.app)
	b.miss(firstPost, oldTitle)
	res := b.edit(firstPost, "Purged everywhere", "", "gormpurge")
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	b.flush()

	// Every cache gets the post's URL and the read tags; Akamai in its
	// form of them, which pages name in Edge-Cache-Tag.
	reports := b.takeReports()
	for _, name := range []string{localcache.BackendName, "varnish", "akamai-staging"} {
		urls, tags := purged(reports, name)
		assert.Equal(t, []string{firstPost}, urls, name)
		assert.Equal(t, []string{"posts", "posts:1", "tags", "tags:2"}, tags, name)
	}
	mu.Lock()
	slices.Sort(seen)
	assert.Equal(t, []string{
		"PURGE / Host:www.example.com xkey-purge:posts posts:1 tags tags:2",
		"PURGE /posts/hello-gormpurge Host:www.example.com",
	}, seen)
	mu.Unlock()

	for _, p := range fake.Purges() {
		assert.Equal(t, akamai.Staging, p.Network)
	}
	assert.Equal(t, []string{"https://www.example.com/posts/hello-gormpurge"}, fake.Objects(akamai.KindURL))
	tags := fake.Objects(akamai.KindTag)
	slices.Sort(tags)
	assert.Equal(t, []string{"posts", "posts.1", "tags", "tags.2"}, tags)
	assert.Regexp(t, `msg=purge backend=akamai-staging outcome=delivered .* ids=`, b.log.String())
}

func TestBadBackendFlags(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		cfg  config
		want string
	}{
		"akamai without site host": {config{akamaiEdgerc: "edgerc", akamaiNetwork: "staging"}, "-akamai-edgerc needs -site-host"},
		"akamai network":           {config{akamaiEdgerc: "edgerc", siteHost: "www.example.com", akamaiNetwork: "prod"}, `-akamai-network "prod"`},
		"akamai credentials":       {config{akamaiEdgerc: filepath.Join(dir, "missing"), siteHost: "www.example.com", akamaiNetwork: "staging"}, "-akamai-edgerc"},
		"varnish node":             {config{varnish: "ftp://127.0.0.1:6081"}, "-varnish ftp://127.0.0.1:6081"},
		"redis down":               {config{redis: "redis://user:s3cret@" + strings.TrimPrefix(downNode(t), "http://")}, "-redis redis://REDACTED@127.0.0.1:"},
		"redis URL":                {config{redis: "redis://user:s3cret@127.0.0.1:6379/x"}, "-redis redis://REDACTED@127.0.0.1:6379/x"},
		"nats down":                {config{nats: "nats://user:s3cret@" + strings.TrimPrefix(downNode(t), "http://")}, "-nats nats://REDACTED@127.0.0.1:"},
	} {
		t.Run(name, func(t *testing.T) {
			tc.cfg.dbPath = filepath.Join(t.TempDir(), "blog.db")
			_, err := newApp(tc.cfg, io.Discard)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "s3cret")
		})
	}
}

// Behind a real Varnish (GORMPURGE_TEST_CACHES=1): Varnish keeps the
// pages, and an edit purges them from Varnish and the local cache.
func TestBehindRealVarnish(t *testing.T) {
	cachetest.Require(t, cachetest.Varnish)
	var blogHandler atomic.Pointer[http.Handler]
	origin := cachetest.StartOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*blogHandler.Load()).ServeHTTP(w, r)
	}))
	cache := cachetest.Start(t, cachetest.Varnish, origin)
	b := startBlog(t, config{varnish: cache.URL, siteHost: "blog.test"})
	h := b.app.Handler()
	blogHandler.Store(&h)

	for _, path := range []string{firstPost, "/tags/gorm"} {
		p := cache.Get(t, "blog.test", path)
		require.Equal(t, http.StatusOK, p.Status, p.Body)
		assert.False(t, p.Hit, path)
		p = cache.Get(t, "blog.test", path)
		assert.True(t, p.Hit, "%s: Varnish keeps the page", path)
	}

	res := b.edit(firstPost, "Through Varnish", "", "caching, gormpurge")
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	b.flush()
	p := cache.Get(t, "blog.test", firstPost)
	assert.False(t, p.Hit, "purged from Varnish")
	assert.Contains(t, p.Body, "Through Varnish")
	assert.Contains(t, p.Body, missBadge, "and from the local cache")
	assert.True(t, cache.Get(t, "blog.test", "/tags/gorm").Hit, "other pages stay in Varnish")
	assert.Equal(t, "authors:1 posts:1 tags:1 tags:2", p.Header.Get("Xkey"), "Varnish indexes the page by its read tags")
}

// Behind a real Varnish with the xkey module (GORMPURGE_TEST_CACHES=1),
// editing a post, a tag or an author purges from Varnish the pages that
// showed it, by their xkey read tags, and no other.
func TestReadTagsPurgeVarnish(t *testing.T) {
	cachetest.Require(t, cachetest.Varnish)
	for _, tc := range readTagCases {
		t.Run(tc.name, func(t *testing.T) {
			var blogHandler atomic.Pointer[http.Handler]
			origin := cachetest.StartOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				(*blogHandler.Load()).ServeHTTP(w, r)
			}))
			cache := cachetest.Start(t, cachetest.Varnish, origin)
			b := startBlog(t, config{varnish: cache.URL, siteHost: "blog.test"})
			h := b.app.Handler()
			blogHandler.Store(&h)

			for _, path := range allPages {
				p := cache.Get(t, "blog.test", path)
				require.Equal(t, http.StatusOK, p.Status, "%s: %s", path, p.Body)
				require.False(t, p.Hit, path)
				require.NotEmpty(t, p.Header.Get("Xkey"), "%s: tagged for Varnish", path)
				require.True(t, cache.Get(t, "blog.test", path).Hit, "%s: Varnish keeps the page", path)
			}
			tc.edit(t, b)
			b.flush()
			for _, path := range allPages {
				p := cache.Get(t, "blog.test", path)
				if slices.Contains(tc.purged, path) {
					assert.False(t, p.Hit, "%s shows what changed: purged from Varnish", path)
				} else {
					assert.True(t, p.Hit, "%s does not show it: still in Varnish", path)
				}
			}
			assert.Contains(t, cache.Get(t, "blog.test", tc.purged[0]).Body, tc.shows)
		})
	}
}

func tagNames(tags []Tag) []string {
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = t.Name
	}
	slices.Sort(out)
	return out
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
