package fastly_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/fastly"
	"github.com/gormpurge/gormpurge/backends/fastly/fastlytest"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// A Backend behind a dispatcher, as an application wires it. Here the
// endpoint, token, service and HTTP client come from the fake Fastly API;
// in production leave out WithEndpoint and WithHTTPClient, and set
// FASTLY_API_TOKEN and FASTLY_SERVICE_ID instead of the two options.
func Example() {
	fake := fastlytest.NewServer()
	defer fake.Close()

	b, err := fastly.New(
		fastly.WithEndpoint(fake.URL()), // the default is https://api.fastly.com
		fastly.WithHTTPClient(fake.Client()),
		fastly.WithAPIToken(fake.Token()),       // default: $FASTLY_API_TOKEN
		fastly.WithServiceID(fake.ServiceID()),  // default: $FASTLY_SERVICE_ID
		fastly.WithHostnames("www.example.com"), // where site-relative paths live
		fastly.WithSoftPurge(),                  // mark stale rather than remove
		fastly.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		log.Fatal(err)
	}
	d, err := dispatcher.New([]backends.Backend{b}, dispatcher.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		log.Fatal(err)
	}
	defer func() { // closes b too
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Close(ctx)
	}()

	ctx := context.Background()
	_ = d.Enqueue(ctx, backends.NewRequest([]string{"/posts/1", "http://www.example.com/posts/1"}, []string{"post-1", "posts"}))
	_ = d.Flush(ctx)

	fmt.Println(fake.URLs())
	fmt.Println(fake.Keys())
	fmt.Println(fake.Purges()[0].Soft)
	// Output:
	// [www.example.com/posts/1]
	// [post-1 posts]
	// true
}

// Purging everything the service caches, for example from an operator's
// command. purge_all counts against Fastly's hourly API limit: the backend
// paces it.
func ExampleBackend_PurgeAll() {
	fake := fastlytest.NewServer()
	defer fake.Close()
	b, err := fastly.New(fastly.WithEndpoint(fake.URL()), fastly.WithHTTPClient(fake.Client()),
		fastly.WithAPIToken(fake.Token()), fastly.WithServiceID(fake.ServiceID()))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close(context.Background())
	if _, err := b.PurgeAll(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println(fake.PurgeAlls())
	// Output:
	// 1
}
