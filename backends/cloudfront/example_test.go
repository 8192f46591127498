package cloudfront_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/cloudfront"
	"github.com/gormpurge/gormpurge/backends/cloudfront/cloudfronttest"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// A Backend behind a dispatcher, as an application wires it. Here the AWS
// configuration and the endpoint come from the fake CloudFront API; in
// production leave WithAWSConfig and WithEndpoint out: New loads the SDK's
// default configuration (environment, ~/.aws files, SSO, instance or
// container role).
func Example() {
	fake := cloudfronttest.NewServer()
	defer fake.Close()

	ctx := context.Background()
	b, err := cloudfront.New(ctx,
		cloudfront.WithDistribution(fake.Distribution()),
		cloudfront.WithAWSConfig(fake.AWSConfig()), // leave out for the SDK's default chain
		cloudfront.WithEndpoint(fake.URL()),        // leave out for cloudfront.amazonaws.com
		cloudfront.WithLogger(slog.New(slog.DiscardHandler)),
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

	_ = d.Enqueue(ctx, backends.NewRequest([]string{"/posts/1", "https://www.example.com/posts/1", "/posts?page=2"}, nil))
	_ = d.Flush(ctx)
	fmt.Println(fake.Paths())
	// Output:
	// [/posts/1 /posts?page=2]
}

// Paths past the first 1,000 of the month cost money (cloudfront.PricePerPathUSD
// each), and a wildcard path counts as one: escalate a handoff of many URLs,
// such as a data migration's, to one invalidation of "/*".
func Example_escalation() {
	fake := cloudfronttest.NewServer()
	defer fake.Close()
	ctx := context.Background()
	b, err := cloudfront.New(ctx, cloudfront.WithDistribution(fake.Distribution()),
		cloudfront.WithAWSConfig(fake.AWSConfig()), cloudfront.WithEndpoint(fake.URL()),
		cloudfront.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		log.Fatal(err)
	}
	d, err := dispatcher.New([]backends.Backend{b},
		dispatcher.WithLogger(slog.New(slog.DiscardHandler)),
		// More than 100 URLs in one handoff: invalidate "/*" (one path).
		dispatcher.WithEscalation("cloudfront", dispatcher.Escalation{Above: 100, All: true}))
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = d.Close(context.Background()) }()

	urls := make([]string, 2500)
	for i := range urls {
		urls[i] = fmt.Sprintf("/products/%d", i)
	}
	_ = d.Enqueue(ctx, backends.NewRequest(urls, nil))
	_ = d.Flush(ctx)
	fmt.Println(fake.Paths())
	fmt.Printf("URL by URL: $%.2f past the free tier; escalated: 1 path\n", float64(len(urls))*cloudfront.PricePerPathUSD)
	// Output:
	// [/*]
	// URL by URL: $12.50 past the free tier; escalated: 1 path
}

func ExampleInvalidationPath() {
	for _, u := range []string{"https://www.example.com/posts/1?page=2", "/caf\u00e9", "/images/*"} {
		p, err := cloudfront.InvalidationPath(u)
		fmt.Println(p, err)
	}
	// Output:
	// /posts/1?page=2 <nil>
	// /caf%C3%A9 <nil>
	// /images/* <nil>
}
