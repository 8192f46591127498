package cloudflare_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/cloudflare"
	"github.com/gormpurge/gormpurge/backends/cloudflare/cloudflaretest"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// A Backend behind a dispatcher, as an application wires it. Here the
// endpoint, token, zone and client come from the fake; in production leave
// out WithEndpoint and WithHTTPClient, and set CLOUDFLARE_API_TOKEN and
// CLOUDFLARE_ZONE_ID (or pass WithAPIToken and WithZone).
func Example() {
	fake := cloudflaretest.NewServer()
	defer fake.Close()

	b, err := cloudflare.New(
		cloudflare.WithEndpoint(fake.Endpoint()),
		cloudflare.WithHTTPClient(fake.Client()),
		cloudflare.WithAPIToken(fake.Token()),
		cloudflare.WithZone(fake.Zone()),
		cloudflare.WithHostnames("www.example.com"),
		cloudflare.WithPlan(cloudflare.Business),
		cloudflare.WithLogger(slog.New(slog.DiscardHandler)),
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
	_ = d.Enqueue(ctx, backends.NewRequest([]string{"/posts/1", "https://www.example.com/"}, []string{"post-1"}))
	_ = d.Flush(ctx)

	fmt.Println(fake.Files())
	fmt.Println(fake.Tags())
	// Output:
	// [https://www.example.com/posts/1 https://www.example.com/]
	// [post-1]
}

// PurgeAll purges everything in the zone, for an operator's "purge
// everything" button or a dispatcher's escalation.
func ExampleBackend_PurgeAll() {
	fake := cloudflaretest.NewServer()
	defer fake.Close()
	b, err := cloudflare.New(cloudflare.WithEndpoint(fake.Endpoint()), cloudflare.WithHTTPClient(fake.Client()),
		cloudflare.WithAPIToken(fake.Token()), cloudflare.WithZone(fake.Zone()))
	if err != nil {
		log.Fatal(err)
	}
	res, err := b.PurgeAll(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Detail, fake.Everything(), res.IDs["purgeId"] == fake.Purges()[0].ID)
	// Output:
	// Purged everything 1 true
}

// Without options for them, New reads the token and the zone from the
// environment, and says which are missing.
func ExampleNew() {
	_, err := cloudflare.New(cloudflare.WithHostnames("www.example.com"))
	fmt.Println(err != nil) // unless CLOUDFLARE_API_TOKEN and CLOUDFLARE_ZONE_ID are set
}

// Each plan's published purge rate, which the backend paces to.
func ExamplePlan_Rate() {
	for _, p := range []cloudflare.Plan{cloudflare.Free, cloudflare.Pro, cloudflare.Business, cloudflare.Enterprise} {
		r := p.Rate()
		fmt.Printf("%-10s %6.3f requests/s, bucket %3d\n", p, r.PerSecond, r.Burst)
	}
	// Output:
	// Free        0.083 requests/s, bucket  25
	// Pro         5.000 requests/s, bucket  25
	// Business   10.000 requests/s, bucket  50
	// Enterprise 50.000 requests/s, bucket 500
}
