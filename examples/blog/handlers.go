package main

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/localcache"
)

//go:embed templates/*.html
var templateFS embed.FS

// cacheStatusPlaceholder marks where the cache badge goes in every page. The
// page is cached with the placeholder; cacheBadge fills it in on the way out,
// so that a page served from the cache says so.
const cacheStatusPlaceholder = "<!--cache-status-->"

// sessionCookie is the cookie that would carry a visitor's session, were
// the blog to have logins: a request with it is never answered from the
// cache, nor stored. Other cookies do not matter (see routes).
const sessionCookie = "blog_session"

// editWait bounds how long saving an edit waits for its purges to reach
// the caches before it redirects to the post (see saveEdit).
const editWait = 2 * time.Second

// parsePages returns each page's template, with the shared layout.
func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		// html/template drops comments from templates: hand the
		// placeholder over as HTML.
		"cacheStatus": func() template.HTML { return cacheStatusPlaceholder },
		"paragraphs": func(s string) []string {
			var out []string
			for _, p := range strings.Split(s, "\n\n") {
				if p = strings.TrimSpace(p); p != "" {
					out = append(out, p)
				}
			}
			return out
		},
	}
	pages := map[string]*template.Template{}
	for _, name := range []string{"index", "post", "tag", "author", "edit"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}

// routes returns the blog's handler.
func (a *app) routes() http.Handler {
	// Pages stay in the local cache until a purge removes them
	// (UntilPurged): every change to what they show is a GORM write the
	// plugin sees. Browsers get "Cache-Control: no-cache" (BrowserMaxAge(0)):
	// they ask again on every view, so each view shows what the server's
	// cache did, and no browser keeps showing a post after its edit. A real
	// site may let browsers keep pages for a minute (the default), and
	// accept that a browser shows an edit up to a minute late.
	//
	// By default any cookie makes a request personal, never cached; and
	// browsers send every cookie of 127.0.0.1, set by any app on any port,
	// to the blog, so a developer would see "Not cached" everywhere. Only
	// the blog's own session cookie makes a page personal. The blog has no
	// sessions: blog_session is the name it would give that cookie (a
	// site with logins names its own here).
	pages := localcache.Middleware(a.store, localcache.WithUntilPurged(), localcache.WithBrowserMaxAge(0),
		localcache.WithSessionCookies(sessionCookie), localcache.WithLogger(a.detail),
		localcache.WithObserver(a.tel.observer))

	//
	// Inside the cache, TagReads tags each page with the rows its queries
	// read, which the handlers run with the request's context. The cache
	// wraps it, so that it indexes the page under every tag, even one a
	// query added after the headers were sent (localcache.AddTags).
	page := func(h http.HandlerFunc) http.Handler { return pages(a.purger.TagReads(h)) }

	mux := http.NewServeMux()
	handle := func(route string, h http.Handler) { mux.Handle(route, a.tel.traced(route, h)) }
	handle("GET /{$}", page(a.index))
	handle("GET /posts/{slug}", page(a.post))
	handle("GET /tags/{name}", page(a.tag))
	handle("GET /authors/{slug}", page(a.author))
	// Behind the cache too, to show that it never keeps a no-store page.
	handle("GET /posts/{slug}/edit", page(a.editForm))
	// Refuses cross-site form posts: another site cannot make a visitor's
	// browser edit a post.
	handle("POST /posts/{slug}/edit", http.NewCrossOriginProtection().Handler(http.HandlerFunc(a.saveEdit)))
	// Empties the page cache: curl -X POST http://127.0.0.1:8080/admin/cache/clear
	// Given the backend rather than the store, it clears every instance's
	// store when they share a bus (-nats, -redis-bus).
	// A real site mounts this behind its admin authentication. This demo
	// only refuses requests from other machines, which is no protection
	// behind a proxy on the same machine (a local Varnish): every request
	// then comes from loopback.
	handle("POST /admin/cache/clear", loopbackOnly(localcache.ClearHandler(a.local)))
	// Outside the page cache, and no page: nothing purges or warms it.
	// With -metrics-addr it is served there instead (see run).
	if a.cfg.metricsAddr == "" {
		mux.Handle("GET "+metricsPath, a.tel.metricsHandler())
	}
	return cacheBadge(mux)
}

// pageData is what the templates show.
type pageData struct {
	Title    string
	Rendered time.Time
	Posts    []Post
	Post     *Post
	Tag      *Tag
	Author   *Author
	Form     editForm
	Error    string
	ReadTag  string // the edit page: the read tag of the post, which saving purges
}

// editForm holds the edit form's fields.
type editForm struct {
	Title, Body, Tags string
}

// The page handlers query with the request's context: TagReads tags the
// page with what those queries read.

func (a *app) index(w http.ResponseWriter, r *http.Request) {
	var posts []Post
	if err := a.posts(a.db.WithContext(r.Context())).Find(&posts).Error; err != nil {
		a.serverError(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "index", pageData{Title: "Posts", Posts: posts})
}

func (a *app) post(w http.ResponseWriter, r *http.Request) {
	post, ok := a.findPost(w, r)
	if !ok {
		return
	}
	a.render(w, r, http.StatusOK, "post", pageData{Title: post.Title, Post: post})
}

// tag lists the posts that have a tag. It reads the post IDs from the join
// table, which has no model and tags nothing, then the posts by primary
// key: the page carries the tag's read tag and those of its posts, and not
// the table tag "posts" that a list of posts carries (and any write to a
// post purges). That is enough: a link added or removed purges the read
// tags of the rows on both sides, the tag's included.
func (a *app) tag(w http.ResponseWriter, r *http.Request) {
	db := a.db.WithContext(r.Context())
	var tag Tag
	if err := db.Where("name = ?", r.PathValue("name")).Take(&tag).Error; errors.Is(err, gorm.ErrRecordNotFound) {
		http.NotFound(w, r)
		return
	} else if err != nil {
		a.serverError(w, r, err)
		return
	}
	var ids []uint
	if err := db.Table("post_tags").Where("tag_id = ?", tag.ID).Pluck("post_id", &ids).Error; err != nil {
		a.serverError(w, r, err)
		return
	}
	var posts []Post
	if len(ids) > 0 {
		if err := a.posts(db).Where("posts.id IN ?", ids).Find(&posts).Error; err != nil {
			a.serverError(w, r, err)
			return
		}
	}
	a.render(w, r, http.StatusOK, "tag", pageData{Title: "Tagged " + tag.Name, Tag: &tag, Posts: posts})
}

// author lists an author's posts. The query by author_id, a column that
// is not unique, tags the page with the table tag "posts" too: a post
// created for the author must purge it.
func (a *app) author(w http.ResponseWriter, r *http.Request) {
	db := a.db.WithContext(r.Context())
	var author Author
	if err := db.Where("slug = ?", r.PathValue("slug")).Take(&author).Error; errors.Is(err, gorm.ErrRecordNotFound) {
		http.NotFound(w, r)
		return
	} else if err != nil {
		a.serverError(w, r, err)
		return
	}
	var posts []Post
	if err := a.posts(db).Where("author_id = ?", author.ID).Find(&posts).Error; err != nil {
		a.serverError(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "author", pageData{Title: "Posts by " + author.Name, Author: &author, Posts: posts})
}

func (a *app) editForm(w http.ResponseWriter, r *http.Request) {
	post, ok := a.findPost(w, r)
	if !ok {
		return
	}
	names := make([]string, len(post.Tags))
	for i, t := range post.Tags {
		names[i] = t.Name
	}
	form := editForm{Title: post.Title, Body: post.Body, Tags: strings.Join(names, ", ")}
	a.renderEdit(w, r, http.StatusOK, post, form, "")
}

// saveEdit saves the edit form in one transaction: the post's tags, then
// its title and text. After the commit the plugin purges the post's page
// (its URL), the read tag of the post ("posts:1") and those of the tags it
// lost or gained, and the table tags of what it wrote ("posts", which the
// lists of posts carry). If anything fails, the whole edit rolls back and
// nothing is purged.
func (a *app) saveEdit(w http.ResponseWriter, r *http.Request) {
	// The post first: an unknown post is 404, whatever the form says, and
	// a refused form is shown again under the post's own title.
	post, ok := a.findPost(w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	form := editForm{
		Title: strings.TrimSpace(r.PostFormValue("title")),
		Body:  strings.ReplaceAll(r.PostFormValue("body"), "\r\n", "\n"),
		Tags:  r.PostFormValue("tags"),
	}
	names, err := parseTags(form.Tags)
	if err != nil {
		a.renderEdit(w, r, http.StatusBadRequest, post, form, err.Error())
		return
	}
	// The transaction edits a copy: post stays as it was stored, for the
	// form to show again if the edit is refused.
	edited := *post
	edited.Tags = slices.Clone(post.Tags)
	err = a.db.WithContext(r.Context()).Transaction(func(tx *gorm.DB) error {
		if err := relink(tx, &edited, names); err != nil {
			return err
		}
		edited.Title, edited.Body = form.Title, form.Body
		// Checked here, after the tags were written, to show a rollback:
		// an empty title undoes the new tags too, and nothing is purged.
		// (A check that needs the database, such as a unique title,
		// belongs in the transaction anyway.)
		if err := edited.validate(); err != nil {
			return err
		}
		return tx.Model(&edited).Select("Title", "Body", "UpdatedAt").Updates(&edited).Error
	})
	switch {
	case errors.Is(err, errEmptyTitle):
		a.log.Info("edit refused, rolled back", "post", post.Slug, "reason", err)
		a.renderEdit(w, r, http.StatusBadRequest, post, form, err.Error())
		return
	case err != nil:
		a.serverError(w, r, err)
		return
	}
	a.log.Info("post saved", "post", edited.Slug, "title", edited.Title, "tags", names)

	// Purges are asynchronous: the plugin queues them at the commit, and
	// the dispatcher delivers them a moment later (it lingers to batch
	// them). Redirected at once, the editor's browser would often fetch
	// the post before its purge, and get the old page from the cache. So
	// the editor reads their own write: saving waits until the purges are
	// delivered, for at most editWait, then redirects anyway. Other
	// visitors never wait.
	wait := editWait
	if a.cfg.editWait > 0 {
		wait = a.cfg.editWait
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	if err := a.Flush(ctx); err != nil {
		a.log.Warn("redirecting before the purges were delivered: the post may show its old version for a moment",
			"post", edited.Slug, "error", err)
	}
	http.Redirect(w, r, edited.AbsoluteURL(), http.StatusSeeOther)
}

// relink gives post the tags named, writing only the links that change:
// each link written or removed purges the read tags of the post and of its
// tag, so an edit that keeps a tag does not purge the pages that show it.
// The association works on a Post with the ID alone: given post, Append
// would write again the links of the tags post already has (GORM saves
// every tag in the field), which Replace does too.
func relink(tx *gorm.DB, post *Post, names []string) error {
	var gone []Tag
	for _, t := range post.Tags {
		if !slices.Contains(names, t.Name) {
			gone = append(gone, t)
		}
	}
	var added []string
	for _, name := range names {
		if !slices.ContainsFunc(post.Tags, func(t Tag) bool { return t.Name == name }) {
			added = append(added, name)
		}
	}
	if len(gone) > 0 {
		if err := tx.Model(&Post{ID: post.ID}).Association("Tags").Delete(gone); err != nil {
			return err
		}
	}
	if len(added) == 0 {
		return nil
	}
	tags, err := findOrCreateTags(tx, added)
	if err != nil {
		return err
	}
	return tx.Model(&Post{ID: post.ID}).Association("Tags").Append(tags)
}

// posts is the query of a list of posts, with their authors and tags.
func (a *app) posts(db *gorm.DB) *gorm.DB {
	return db.Preload("Author").Preload("Tags", func(db *gorm.DB) *gorm.DB { return db.Order("name") }).Order("posts.id")
}

// findPost loads the post named in the path, or answers 404.
func (a *app) findPost(w http.ResponseWriter, r *http.Request) (*Post, bool) {
	var post Post
	err := a.posts(a.db.WithContext(r.Context())).Where("slug = ?", r.PathValue("slug")).Take(&post).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		http.NotFound(w, r)
		return nil, false
	case err != nil:
		a.serverError(w, r, err)
		return nil, false
	}
	return &post, true
}

func (a *app) renderEdit(w http.ResponseWriter, r *http.Request, status int, post *Post, form editForm, problem string) {
	// A form is personal: no cache may keep it.
	w.Header().Set("Cache-Control", "no-store")
	data := pageData{Title: "Edit " + post.Title, Post: post, Form: form, Error: problem}
	if problem == "" {
		data.ReadTag = backends.RowTag("posts", post.ID)
	}
	a.render(w, r, status, "edit", data)
}

// render writes a page.
func (a *app) render(w http.ResponseWriter, r *http.Request, status int, page string, data pageData) {
	data.Rendered = time.Now()
	var buf bytes.Buffer
	if err := a.pages[page].ExecuteTemplate(&buf, "layout", data); err != nil {
		a.serverError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	if page != "edit" {
		// Browsers are told no-cache (see routes): the caches in front
		// get a lifetime of their own, with which Varnish's built-in VCL
		// stores the page (see README.md).
		h.Set("Surrogate-Control", "max-age=86400")
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (a *app) serverError(w http.ResponseWriter, r *http.Request, err error) {
	a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	http.Error(w, "internal server error", http.StatusInternalServerError)
}

// cacheBadge fills in the cache badge of every HTML page from the X-Cache
// header the local cache set: the page says whether it was served from the
// cache or freshly rendered. It keeps each response in memory to do so; the
// pages are small.
func cacheBadge(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") != "" || r.Header.Get("If-Modified-Since") != "" {
			// The local cache would answer a revalidation with 304 Not
			// Modified, and the browser would show the copy it has, with
			// the badge of an earlier view. The demo drops the
			// validators so that every view is a whole page that tells
			// what the cache did this time. A real site keeps them: a
			// 304 costs no rendering and no body.
			r = r.Clone(r.Context())
			r.Header.Del("If-None-Match")
			r.Header.Del("If-Modified-Since")
		}
		bw := &badgeWriter{w: w}
		next.ServeHTTP(bw, r)
		bw.finish(r)
	})
}

// badgeWriter keeps a response until finish writes it, with the badge.
type badgeWriter struct {
	w      http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (b *badgeWriter) Header() http.Header { return b.w.Header() }

func (b *badgeWriter) WriteHeader(code int) {
	if b.status == 0 && code >= 200 {
		b.status = code
	}
}

func (b *badgeWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

func (b *badgeWriter) finish(r *http.Request) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	h := b.w.Header()
	body := b.body.Bytes()
	if strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		if i := bytes.Index(body, []byte(cacheStatusPlaceholder)); i >= 0 {
			body = bytes.Join([][]byte{body[:i], []byte(badge(h.Get(localcache.XCache))), body[i+len(cacheStatusPlaceholder):]}, nil)
			h.Set("Content-Length", strconv.Itoa(len(body)))
		} else if r.Method == http.MethodHead {
			h.Del("Content-Length") // the page would get a badge: its length is not known
		}
		// A hit and a miss of one page now differ by their badge: the
		// cache's ETag, made for the page without it, no longer fits.
		h.Del("Etag")
	}
	b.w.WriteHeader(b.status)
	_, _ = b.w.Write(body)
}

// badge returns the HTML of the cache badge for the X-Cache value xcache.
func badge(xcache string) string {
	switch xcache {
	case "HIT":
		return `<p class="cache-status hit">Served from the cache (X-Cache: HIT)</p>`
	case "MISS":
		return `<p class="cache-status miss">Freshly rendered (X-Cache: MISS)</p>`
	default:
		return `<p class="cache-status none">Not cached</p>`
	}
}

// loopbackOnly refuses requests that do not come from this machine.
func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			http.Error(w, "forbidden: clear the cache from the machine the blog runs on", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}
