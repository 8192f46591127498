package main

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Post is a blog post. Pages are tagged with the rows they read (see
// newApp): a page that shows post 1 carries "posts:1", and every commit
// that writes post 1 purges it. Post also names its own page
// (AbsoluteURL): it is the one model the blog keeps on URLs, for the
// warmer, which renders again the URLs a purge names (see README.md).
type Post struct {
	ID        uint   `gorm:"primaryKey"`
	Slug      string `gorm:"size:191;uniqueIndex;not null"`
	Title     string `gorm:"size:191;not null"`
	Body      string
	AuthorID  uint
	Author    *Author
	Tags      []Tag `gorm:"many2many:post_tags"`
	UpdatedAt time.Time
}

// AbsoluteURL is the post's own page: a commit that writes the post purges
// it by URL too, which the warmer renders again (-warm) and Akamai purges
// (-akamai-edgerc), since neither works with read tags.
func (p *Post) AbsoluteURL() string { return "/posts/" + p.Slug }

// errEmptyTitle is the validation error of validate.
var errEmptyTitle = errors.New("a post needs a title")

// validate checks a post before it is saved.
func (p *Post) validate() error {
	if strings.TrimSpace(p.Title) == "" {
		return errEmptyTitle
	}
	return nil
}

// Tag is a tag; its page lists the posts that have it. It has no URL
// method for the plugin: the pages that show a tag carry its read tag
// ("tags:3").
type Tag struct {
	ID   uint   `gorm:"primaryKey"`
	Name string `gorm:"size:64;uniqueIndex;not null"`
}

// Path is the tag's page, for links.
func (t *Tag) Path() string { return "/tags/" + t.Name }

// Author wrote posts; the pages that show an author carry its read tag
// ("authors:1"): the author's page, and every page that names the author
// beside a post.
type Author struct {
	ID   uint   `gorm:"primaryKey"`
	Slug string `gorm:"size:64;uniqueIndex;not null"`
	Name string `gorm:"size:191;not null"`
}

// Path is the author's page, for links.
func (a *Author) Path() string { return "/authors/" + a.Slug }

// tagName is what a tag name may look like: it goes into URLs as it is.
var tagName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)

// parseTags turns the edit form's comma-separated tags into sorted,
// distinct tag names: "Go, web  dev" gives [go web-dev].
func parseTags(s string) ([]string, error) {
	var names []string
	for _, part := range strings.Split(s, ",") {
		name := strings.Join(strings.Fields(strings.ToLower(part)), "-")
		if name == "" {
			continue
		}
		if !tagName.MatchString(name) {
			return nil, fmt.Errorf("tag %q: use letters, digits and hyphens, at most 40", name)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// seedPosts are the posts of a new database.
var seedPosts = []struct {
	slug, title, body, author string
	tags                      []string
}{
	{"hello-gormpurge", "Hello, gormpurge",
		"This blog caches every page it renders in its own memory, until a purge removes it.\n\n" +
			"Open this page twice: the second view comes from the cache. Then edit the post, and watch the log: " +
			"the commit purges this page, the pages of its tags and the index, and the next view is fresh.",
		"ada", []string{"gormpurge", "caching"}},
	{"after-the-commit", "Purge after the commit, never before",
		"A purge sent before the transaction commits lets a reader re-cache the old row. " +
			"gormpurge waits for the outermost commit, and drops the purges of rolled-back work.",
		"ada", []string{"gormpurge", "transactions"}},
	{"both-sides", "Both sides of a many-to-many link",
		"Give a post a new tag and the tag's page lists it: that page is purged too, " +
			"and so is the page of a tag the post no longer has.",
		"grace", []string{"caching", "gorm"}},
}

// seedAuthors are the authors of a new database, by slug.
var seedAuthors = map[string]string{"ada": "Ada Lovelace", "grace": "Grace Hopper"}

// seed fills an empty database with seedPosts, and leaves one that has
// posts alone. It reports whether it seeded.
func seed(db *gorm.DB) (bool, error) {
	seeded := false
	err := db.Transaction(func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&Post{}).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		authors := map[string]*Author{}
		for _, slug := range slices.Sorted(maps.Keys(seedAuthors)) {
			authors[slug] = &Author{Slug: slug, Name: seedAuthors[slug]}
			if err := tx.Create(authors[slug]).Error; err != nil {
				return err
			}
		}
		for _, sp := range seedPosts {
			tags, err := findOrCreateTags(tx, sp.tags)
			if err != nil {
				return err
			}
			post := &Post{Slug: sp.slug, Title: sp.title, Body: sp.body, AuthorID: authors[sp.author].ID, Tags: tags}
			if err := tx.Create(post).Error; err != nil {
				return err
			}
		}
		seeded = true
		return nil
	})
	return seeded, err
}

// findOrCreateTags returns the tags with the given names, creating those
// that do not exist yet.
func findOrCreateTags(tx *gorm.DB, names []string) ([]Tag, error) {
	tags := make([]Tag, 0, len(names))
	for _, name := range names {
		var t Tag
		if err := tx.Where(Tag{Name: name}).FirstOrCreate(&t).Error; err != nil {
			return nil, err
		}
		tags = append(tags, t)
	}
	return tags, nil
}
