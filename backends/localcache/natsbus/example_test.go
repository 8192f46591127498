package natsbus_test

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/backends/localcache/natsbus"
)

// Each instance of the application keeps pages in memory; the bus tells
// the others about every purge, and Follow applies theirs.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Reconnect for ever: while the connection is down, Follow keeps the
	// cache off, and turns it on again, empty, once it is back.
	nc, err := nats.Connect(nats.DefaultURL, nats.MaxReconnects(-1))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	bus, err := natsbus.New(nc, "gormpurge.mysite")
	if err != nil {
		log.Fatal(err)
	}

	store, err := localcache.NewMemoryStore()
	if err != nil {
		log.Fatal(err)
	}
	// Give backend to the dispatcher: it purges this instance's store,
	// then publishes the purge.
	backend, err := localcache.NewBackend(store, localcache.WithBus(bus))
	if err != nil {
		log.Fatal(err)
	}
	_ = backend
	go func() {
		if err := localcache.Follow(ctx, store, bus); err != nil && ctx.Err() == nil {
			log.Print(err)
		}
	}()

	pages := http.NewServeMux() // the application's handlers
	log.Fatal(http.ListenAndServe(":8080", localcache.Middleware(store)(pages)))
}

// Options for a slow network and a follower that may fall behind.
func ExampleNew() {
	nc, err := nats.Connect(nats.DefaultURL, nats.MaxReconnects(-1))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	bus, err := natsbus.New(nc, "gormpurge.mysite",
		natsbus.WithFlushTimeout(2*time.Second),       // Publish fails, and the dispatcher retries, after 2s without the server's answer
		natsbus.WithHealthCheck(500*time.Millisecond), // a silent partition turns the cache off within about 1s
		natsbus.WithPendingLimits(10_000, 16<<20),     // beyond that, drop and clear the cache
	)
	if err != nil {
		log.Fatal(err)
	}
	log.Print("publishing on ", bus.Subject())
}
