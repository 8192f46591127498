package cloudfronttest_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/cloudfront"
	"github.com/gormpurge/gormpurge/backends/cloudfront/cloudfronttest"
)

// A fake for a backend under test: point the backend at it, purge, and
// read what it received.
func ExampleNewServer() {
	srv := cloudfronttest.NewServer(cloudfronttest.WithCompletionDelay(0))
	defer srv.Close()
	ctx := context.Background()
	b, err := cloudfront.New(ctx, cloudfront.WithDistribution(srv.Distribution()),
		cloudfront.WithAWSConfig(srv.AWSConfig()), cloudfront.WithEndpoint(srv.URL()),
		cloudfront.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := b.Purge(ctx, backends.Request{URLs: []string{"/posts/1"}}); err != nil {
		log.Fatal(err)
	}
	inv := srv.Invalidations()[0]
	fmt.Println(inv.Items, inv.Status(inv.Created), len(srv.Ignored()))
	// Output:
	// [/posts/1] Completed 0
}
