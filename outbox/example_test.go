package outbox_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/outbox"
)

// Article is a model whose page is /articles/<slug>.
type Article struct {
	ID   uint
	Slug string
}

func (a *Article) AbsoluteURL() string { return "/articles/" + a.Slug }

// printer is a backend that prints what it purges and signals each call.
type printer struct{ done chan struct{} }

func (printer) Name() string            { return "printer" }
func (printer) Limits() backends.Limits { return backends.Limits{} }
func (p printer) Purge(_ context.Context, r backends.Request) (backends.Result, error) {
	fmt.Println("purged", r.URLs)
	p.done <- struct{}{}
	return backends.Result{Objects: r.Len()}, nil
}

// The plugin writes into the outbox inside the transaction; the relay
// delivers the row through the dispatcher once it is committed.
func Example() {
	dir, _ := os.MkdirTemp("", "outbox-example")
	defer os.RemoveAll(dir)
	db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "site.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		log.Fatal(err)
	}
	if sqlDB, err := db.DB(); err == nil {
		defer sqlDB.Close()
	}
	if err := db.AutoMigrate(&Article{}); err != nil {
		log.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)

	ob, err := outbox.New(db, outbox.WithTable("gormpurge_outbox"), outbox.WithLogger(quiet))
	if err != nil {
		log.Fatal(err)
	}
	p := gormpurge.New(ob, gormpurge.WithLogger(quiet))
	if err := p.Register(&Article{}); err != nil {
		log.Fatal(err)
	}
	if err := db.Use(p); err != nil {
		log.Fatal(err)
	}
	out := printer{done: make(chan struct{}, 1)}
	d, err := dispatcher.New([]backends.Backend{out}, dispatcher.WithLogger(quiet))
	if err != nil {
		log.Fatal(err)
	}
	relay, err := ob.Relay(d)
	if err != nil {
		log.Fatal(err)
	}

	db.Create(&Article{Slug: "hello"})
	<-out.done

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := relay.Close(ctx); err != nil {
		log.Fatal(err)
	}
	if err := d.Close(ctx); err != nil {
		log.Fatal(err)
	}
	st, _ := ob.Status(ctx)
	fmt.Println("delivered rows:", st.Delivered, "pending:", st.Pending)
	// Output:
	// purged [/articles/hello]
	// delivered rows: 1 pending: 0
}
