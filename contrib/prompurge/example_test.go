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

	"github.com/gormpurge/gormpurge/contrib/prompurge"
	"github.com/gormpurge/gormpurge/observe"
)

// Register the Collector on the application's registry, pass it to each
// component's WithObserver option, and serve the registry to Prometheus.
// Here a Source stands for a dispatcher, which reports its figures the
// same way.
func Example() {
	reg := prometheus.NewRegistry()
	col, err := prompurge.New(reg)
	if err != nil {
		log.Fatal(err)
	}
	defer col.Close(context.Background())

	// In an application: dispatcher.New(bs, dispatcher.WithObserver(col)),
	// gormpurge.New(sink, gormpurge.WithObserver(col)), and so on.
	var obs observe.Observer = col
	stop := obs.Watch(func(_ context.Context, add func(observe.Reading)) {
		add(observe.Reading{Metric: observe.Objects, Backend: "cdn", Outcome: observe.Delivered, Value: 42})
		add(observe.Reading{Metric: observe.QueueDepth, Backend: "cdn", Value: 3})
	})
	defer stop()

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		if strings.HasPrefix(lines.Text(), "gormpurge_") {
			fmt.Println(lines.Text())
		}
	}
	// Output:
	// gormpurge_purge_objects_total{backend="cdn",outcome="delivered"} 42
	// gormpurge_purge_queue_depth{backend="cdn"} 3
}
