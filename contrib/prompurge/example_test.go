package prompurge_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/contrib/prompurge"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/purgetest"
)

// Register the Collector on the application's registry, pass it to each
// component's WithObserver option (here the dispatcher's; the plugin's is
// gormpurge.WithObserver), and serve the registry to Prometheus.
func Example() {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	col, err := prompurge.New(reg)
	if err != nil {
		log.Fatal(err)
	}
	defer col.Close(ctx)

	cdn := purgetest.NewRecorder() // stands in for a CDN's backend
	d, err := dispatcher.New([]backends.Backend{cdn}, dispatcher.WithObserver(col))
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close(ctx)
	if err := d.Enqueue(ctx, backends.Request{URLs: []string{"https://www.example.com/articles/hello"}}); err != nil {
		log.Fatal(err)
	}
	if err := d.Flush(ctx); err != nil {
		log.Fatal(err)
	}

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		line := lines.Text()
		if strings.HasPrefix(line, "gormpurge_purge_objects_total") || strings.HasPrefix(line, "gormpurge_purge_latency_seconds_count") {
			fmt.Println(line)
		}
	}
	// Output:
	// gormpurge_purge_latency_seconds_count{backend="recorder",outcome="delivered"} 1
	// gormpurge_purge_objects_total{backend="recorder",outcome="coalesced"} 0
	// gormpurge_purge_objects_total{backend="recorder",outcome="delivered"} 1
	// gormpurge_purge_objects_total{backend="recorder",outcome="dropped"} 0
	// gormpurge_purge_objects_total{backend="recorder",outcome="failed"} 0
	// gormpurge_purge_objects_total{backend="recorder",outcome="retried"} 0
}
