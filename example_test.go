package gormpurge_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
)

// Article is a model with a page of its own and a cache tag.
type Article struct {
	ID   uint
	Slug string
}

func (a *Article) AbsoluteURL() string      { return "/articles/" + a.Slug }
func (a *Article) DependentPaths() []string { return []string{"/articles"} }
func (a *Article) PurgeTags() []string      { return []string{"articles"} }

func exampleDB() (*gorm.DB, func()) {
	dir, err := os.MkdirTemp("", "gormpurge-example")
	if err != nil {
		log.Fatal(err)
	}
	db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "example.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		log.Fatal(err)
	}
	return db, func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
		os.RemoveAll(dir)
	}
}

// The plugin hands each committed transaction's pages to a Sink; here a
// function that prints them. In an application the Sink is the dispatcher.
func Example() {
	db, done := exampleDB()
	defer done()

	sink := gormpurge.SinkFunc(func(_ context.Context, r backends.Request) error {
		fmt.Println("purge", r.URLs, r.Tags)
		return nil
	})
	p := gormpurge.New(sink, gormpurge.WithBaseURL("https://www.example.com"))
	if err := p.Register(&Article{}); err != nil {
		log.Fatal(err)
	}
	if err := db.Use(p); err != nil {
		log.Fatal(err)
	}
	if err := db.AutoMigrate(&Article{}); err != nil {
		log.Fatal(err)
	}

	a := &Article{Slug: "hello"}
	db.Create(a)                             // purged after GORM's implicit commit
	db.Model(a).Update("slug", "hi")         // the old and the new page
	db.Transaction(func(tx *gorm.DB) error { // nothing: rolled back
		tx.Delete(a)
		return fmt.Errorf("changed my mind")
	})
	// Output:
	// purge [https://www.example.com/articles https://www.example.com/articles/hello] [articles]
	// purge [https://www.example.com/articles https://www.example.com/articles/hello https://www.example.com/articles/hi] [articles]
}

// A type from another package cannot be given methods: register it with a
// function instead.
func ExampleTargetsOf() {
	type User struct { // imagine this comes from another package
		ID   uint
		Name string
	}
	db, done := exampleDB()
	defer done()

	p := gormpurge.New(gormpurge.SinkFunc(func(_ context.Context, r backends.Request) error {
		fmt.Println("purge", r.URLs)
		return nil
	}))
	err := p.Register(gormpurge.TargetsOf(func(u *User) gormpurge.Targets {
		return gormpurge.Targets{URLs: []string{"/users/" + u.Name}}
	}))
	if err != nil {
		log.Fatal(err)
	}
	if err := db.Use(p); err != nil {
		log.Fatal(err)
	}
	if err := db.AutoMigrate(&User{}); err != nil {
		log.Fatal(err)
	}
	db.Create(&User{Name: "ann"})
	// Output:
	// purge [/users/ann]
}

// Errors the plugin reports never reach the code that wrote: they go to the
// logger and to the error handler.
func ExampleWithErrorHandler() {
	db, done := exampleDB()
	defer done()

	p := gormpurge.New(
		gormpurge.SinkFunc(func(context.Context, backends.Request) error { return nil }),
		gormpurge.WithAllowedHosts("www.example.com"),
		gormpurge.WithLogger(slogDiscard()),
		gormpurge.WithErrorHandler(func(_ context.Context, err error) {
			fmt.Println("reported:", err)
		}),
	)
	if err := p.Register(gormpurge.TargetsOf(func(a *Article) gormpurge.Targets {
		return gormpurge.Targets{URLs: []string{"https://elsewhere.example.net/" + a.Slug}}
	})); err != nil {
		log.Fatal(err)
	}
	if err := db.Use(p); err != nil {
		log.Fatal(err)
	}
	if err := db.AutoMigrate(&Article{}); err != nil {
		log.Fatal(err)
	}
	err := db.Create(&Article{Slug: "x"}).Error
	fmt.Println("write error:", err)
	// Output:
	// reported: gormpurge: model gormpurge_test.Article: url "https://elsewhere.example.net/x" rejected: gormpurge: host not allowed: "elsewhere.example.net"
	// write error: <nil>
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Purge names what to purge: after a raw statement the callbacks cannot
// see, or on an operator's request. PurgeTx joins a transaction, so the
// purge waits for its commit and is dropped if it rolls back.
func ExamplePlugin_PurgeTx() {
	db, done := exampleDB()
	defer done()

	p := gormpurge.New(gormpurge.SinkFunc(func(_ context.Context, r backends.Request) error {
		fmt.Println("purge", r.URLs, r.Tags)
		return nil
	}))
	if err := p.Register(&Article{}); err != nil {
		log.Fatal(err)
	}
	if err := db.Use(p); err != nil {
		log.Fatal(err)
	}
	if err := db.AutoMigrate(&Article{}); err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	if err := p.Purge(ctx, "/about", gormpurge.Targets{Tags: []string{"menu"}}); err != nil {
		log.Fatal(err)
	}
	a := &Article{ID: 1, Slug: "raw"}
	err := db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("INSERT INTO articles (id, slug) VALUES (?, ?)", a.ID, a.Slug).Error; err != nil {
			return err
		}
		return p.PurgeTx(tx, a) // the model's URLs and tags, after the commit
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// purge [/about] [menu]
	// purge [/articles /articles/raw] [articles]
}

// A data migration suspends purging: its thousands of commits reach the
// sink as one request when it resumes.
func ExamplePlugin_Suspend() {
	db, done := exampleDB()
	defer done()

	p := gormpurge.New(gormpurge.SinkFunc(func(_ context.Context, r backends.Request) error {
		fmt.Println("purge", len(r.URLs), "URLs and", r.Tags)
		return nil
	}), gormpurge.WithLogger(slogDiscard()))
	if err := p.Register(&Article{}); err != nil {
		log.Fatal(err)
	}
	if err := db.Use(p); err != nil {
		log.Fatal(err)
	}
	if err := db.AutoMigrate(&Article{}); err != nil {
		log.Fatal(err)
	}

	ctx, job := p.Suspend(context.Background())
	for i := range 1000 {
		db.WithContext(ctx).Create(&Article{Slug: fmt.Sprint("imported-", i)}) // 1,000 commits
	}
	if err := job.Resume(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// purge 1001 URLs and [articles]
}
