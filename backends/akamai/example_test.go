package akamai_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/akamai"
	"github.com/gormpurge/gormpurge/backends/akamai/akamaitest"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// A Backend behind a dispatcher, as an application wires it. Here the
// credentials and HTTP client come from the fake Fast Purge server; in
// production use akamai.WithEdgerc("~/.edgerc", "ccu") or akamai.WithEnv("ccu").
func Example() {
	fake := akamaitest.NewServer()
	defer fake.Close()

	b, err := akamai.New(
		akamai.WithCredentials(fake.Credentials()), // akamai.WithEdgerc("~/.edgerc", "ccu")
		akamai.WithHTTPClient(fake.Client()),
		akamai.WithNetwork(akamai.Production),
		akamai.WithAction(akamai.Invalidate),
		akamai.WithHostnames("www.example.com"),
		akamai.WithLogger(slog.New(slog.DiscardHandler)),
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
	_ = d.Enqueue(ctx, backends.NewRequest([]string{"/posts/1", "http://www.example.com/posts/1"}, []string{"post-1"}))
	_ = d.Flush(ctx)

	fmt.Println(fake.Objects(akamai.KindURL))
	fmt.Println(fake.Objects(akamai.KindTag))
	// Output:
	// [https://www.example.com/posts/1]
	// [post-1]
}

// Purging a whole CP code, for example from an operator's command.
func ExampleBackend_PurgeCPCodes() {
	fake := akamaitest.NewServer()
	defer fake.Close()
	b, err := akamai.New(akamai.WithCredentials(fake.Credentials()), akamai.WithHTTPClient(fake.Client()),
		akamai.WithAction(akamai.Delete), akamai.WithNetwork(akamai.Staging))
	if err != nil {
		log.Fatal(err)
	}
	res, err := b.PurgeCPCodes(context.Background(), 12345)
	if err != nil {
		log.Fatal(err)
	}
	p := fake.Purges()[0]
	fmt.Println(p.Action, p.Kind, p.Network, p.Objects, res.IDs["purgeId"] == p.PurgeID)
	// Output:
	// delete cpcode staging [12345] true
}
