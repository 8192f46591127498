package main

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Post is a blog post. Its methods tell the gormpurge plugin which cached
// pages show it, so that every committed change to a post purges them.
type Post struct {
	ID        uint   `gorm:"primaryKey"`
	Slug      string `gorm:"size:191;uniqueIndex;not null"`
	Title     string `gorm:"size:191;not null"`
	Body      string
	Tags      []Tag `gorm:"many2many:post_tags"`
	UpdatedAt time.Time
}

// AbsoluteURL is the post's own page.
func (p *Post) AbsoluteURL() string { return "/posts/" + p.Slug }

// DependentPaths are the other pages that list the post: the index. The
// pages of its tags list it too: the plugin purges both sides of every
// post-tag link written or removed, and the edit handler's
// Association("Tags").Replace writes every link of the new set, kept ones
// included (see saveEdit), so an edit purges the pages of the tags the
// post lost, kept and gained. Every page that shows the post also carries
// its cache tag (PurgeTags), which catches any other write.
func (p *Post) DependentPaths() []string { return []string{"/"} }

// PurgeTags is the cache tag that every page showing the post carries in
// its Surrogate-Key header (see setCacheTags): purging it removes the
// post's page, the index and the pages of all its tags, wherever they are.
func (p *Post) PurgeTags() []string { return []string{postTag(p.ID)} }

func postTag(id uint) string { return fmt.Sprintf("post-%d", id) }

// errEmptyTitle is the validation error of validate.
var errEmptyTitle = errors.New("a post needs a title")

// validate checks a post before it is saved.
func (p *Post) validate() error {
	if strings.TrimSpace(p.Title) == "" {
		return errEmptyTitle
	}
	return nil
}

// Tag is a tag; its page lists the posts that have it.
type Tag struct {
	ID   uint   `gorm:"primaryKey"`
	Name string `gorm:"size:64;uniqueIndex;not null"`
}

// AbsoluteURL is the tag's page.
func (t *Tag) AbsoluteURL() string { return "/tags/" + t.Name }

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
	slug, title, body string
	tags              []string
}{
	{"hello-gormpurge", "Hello, gormpurge",
		"This blog caches every page it renders in its own memory, until a purge removes it.\n\n" +
			"Open this page twice: the second view comes from the cache. Then edit the post, and watch the log: " +
			"the commit purges this page, the pages of its tags and the index, and the next view is fresh.",
		[]string{"gormpurge", "caching"}},
	{"after-the-commit", "Purge after the commit, never before",
		"A purge sent before the transaction commits lets a reader re-cache the old row. " +
			"gormpurge waits for the outermost commit, and drops the purges of rolled-back work.",
		[]string{"gormpurge", "transactions"}},
	{"both-sides", "Both sides of a many-to-many link",
		"Give a post a new tag and the tag's page lists it: that page is purged too, " +
			"and so is the page of a tag the post no longer has.",
		[]string{"caching", "gorm"}},
}

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
		for _, sp := range seedPosts {
			tags, err := findOrCreateTags(tx, sp.tags)
			if err != nil {
				return err
			}
			if err := tx.Create(&Post{Slug: sp.slug, Title: sp.title, Body: sp.body, Tags: tags}).Error; err != nil {
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
