package gormpurge_test

import (
	"context"
	"fmt"
	"log"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/purgetest"
)

// Product is a model whose methods say which pages show it.
type Product struct {
	ID         uint
	Slug       string
	Categories []Category `gorm:"many2many:product_categories"`
}

func (p *Product) AbsoluteURL() string      { return "/products/" + p.Slug }  // its own page
func (p *Product) DependentPaths() []string { return []string{"/", "/feed"} } // pages that list it
func (p *Product) PurgeTags() []string      { return []string{"products"} }   // cache tags (surrogate keys)

// Category is the other side of a many-to-many link: linking a product to
// it purges the category's page too.
type Category struct {
	ID   uint
	Name string
}

func (c *Category) AbsoluteURL() string { return "/categories/" + c.Name }

func Example_quickstart() {
	ctx := context.Background()
	// SQLite in memory, shared by the pool's connections; any GORM database works.
	db, err := gorm.Open(sqlite.Open("file:quickstart?mode=memory&cache=shared"), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		log.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		log.Fatal(err)
	}
	defer sqlDB.Close()

	// The dispatcher delivers purges to backends (localcache, httppurge,
	// akamai, cloudflare, fastly, cloudfront); here a recorder stands in
	// for a cache.
	rec := purgetest.NewRecorder()
	d, err := dispatcher.New([]backends.Backend{rec})
	if err != nil {
		log.Fatal(err)
	}
	p := gormpurge.New(d)
	if err := p.Register(&Product{}, &Category{}); err != nil {
		log.Fatal(err)
	}
	if err := db.Use(p); err != nil {
		log.Fatal(err)
	}
	if err := db.AutoMigrate(&Product{}, &Category{}); err != nil {
		log.Fatal(err)
	}

	product := &Product{Slug: "teapot", Categories: []Category{{Name: "kitchen"}}}
	if err := db.Create(product).Error; err != nil { // purged after GORM's commit
		log.Fatal(err)
	}
	if err := db.Model(product).Update("slug", "blue-teapot").Error; err != nil { // the old and the new page
		log.Fatal(err)
	}

	// Purges are delivered asynchronously: wait for them before looking.
	if err := d.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("purged:", rec.URLs())
	fmt.Println("tags:", rec.Tags())

	// On shutdown: deliver what is queued, then close the backends.
	if err := d.Close(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// purged: [/ /categories/kitchen /feed /products/blue-teapot /products/teapot]
	// tags: [products]
}
