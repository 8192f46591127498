package redisstore_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/backends/localcache/redisstore"
)

// Every instance of the application keeps its pages in one Redis: a page
// rendered by one is a hit on all, and a purge through any (the Backend,
// given to the dispatcher) removes it for all.
func ExampleNew() {
	addr := os.Getenv("GORMPURGE_TEST_REDIS_ADDR")
	if addr == "" {
		return // no Redis to run against
	}
	// Short timeouts: a request waits at most this long for the cache
	// before its page is rendered without it.
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	store, err := redisstore.New(rdb, redisstore.WithPrefix("example-site"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Clear(context.Background()) // the example leaves nothing behind
	backend, err := localcache.NewBackend(store)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = backend // give it to dispatcher.New with the other backends
	pages := http.NewServeMux()
	_ = localcache.Middleware(store, localcache.WithTTL(10*time.Minute))(pages) // serve this
}

// Every instance keeps its pages in memory, and the Redis bus carries each
// purge to the others.
func ExampleNewBus() {
	addr := os.Getenv("GORMPURGE_TEST_REDIS_ADDR")
	if addr == "" {
		return // no Redis to run against
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	bus, err := redisstore.NewBus(rdb, "example-site:purges")
	if err != nil {
		fmt.Println(err)
		return
	}
	store, err := localcache.NewMemoryStore()
	if err != nil {
		fmt.Println(err)
		return
	}
	backend, err := localcache.NewBackend(store, localcache.WithBus(bus)) // purges here, then tells the others
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = backend // give it to dispatcher.New with the other backends

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- localcache.Follow(ctx, store, bus) }() // applies the others' purges
	// ... serve pages with localcache.Middleware(store) ...
	stop()
	<-done
}
