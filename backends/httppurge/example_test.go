package httppurge_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/httppurge"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// printingNodes starts n fake cache nodes that record each request as a
// line; lines returns them sorted.
func printingNodes(n int) (urls []string, lines func() []string, stop func()) {
	var (
		mu   sync.Mutex
		seen []string
		srvs []*httptest.Server
	)
	for i := range n {
		name := fmt.Sprintf("node%d", i+1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			line := fmt.Sprintf("%s: %s %s Host: %s", name, r.Method, r.RequestURI, r.Host)
			for _, h := range []string{"Xkey-Purge", "X-Ban-Tags"} {
				if v := r.Header.Get(h); v != "" {
					line += fmt.Sprintf(" %s: %s", h, v)
				}
			}
			mu.Lock()
			seen = append(seen, line)
			mu.Unlock()
		}))
		srvs = append(srvs, srv)
		urls = append(urls, srv.URL)
	}
	lines = func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Sorted(slices.Values(seen))
	}
	stop = func() {
		for _, s := range srvs {
			s.Close()
		}
	}
	return urls, lines, stop
}

// Every page and tag goes to every node, with the site's Host header.
func Example() {
	nodes, lines, stop := printingNodes(2) // stand-ins for two Varnish servers
	defer stop()

	b, err := httppurge.New(
		httppurge.WithNodes(nodes...),
		httppurge.WithSiteHost("www.example.com"),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := dispatcher.New([]backends.Backend{b}, dispatcher.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	_ = d.Enqueue(ctx, backends.NewRequest([]string{"/articles/7", "https://blog.example.com/"}, []string{"article-7"}))
	_ = d.Close(ctx) // delivers what is queued, then closes b

	for _, l := range lines() {
		fmt.Println(l)
	}
	// Output:
	// node1: PURGE / Host: blog.example.com
	// node1: PURGE / Host: www.example.com Xkey-Purge: article-7
	// node1: PURGE /articles/7 Host: www.example.com
	// node2: PURGE / Host: blog.example.com
	// node2: PURGE / Host: www.example.com Xkey-Purge: article-7
	// node2: PURGE /articles/7 Host: www.example.com
}

// A node whose ACL refuses this client fails for good, and the error says
// which node and why.
func ExampleNodeError() {
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusMethodNotAllowed) // what Varnish answers outside its purge ACL
	}))
	defer refusing.Close()
	b, _ := httppurge.New(httppurge.WithNodes(refusing.URL), httppurge.WithSiteHost("www.example.com"))
	defer b.Close(context.Background())

	_, err := b.Purge(context.Background(), backends.NewRequest([]string{"/"}, nil))
	var ne *httppurge.NodeError
	if errors.As(err, &ne) {
		fmt.Println("permanent:", backends.IsPermanent(err))
		fmt.Println(ne.Status)
		fmt.Println(ne.Hint)
	}
	// Output:
	// permanent: true
	// 405 Method Not Allowed
	// the cache does not allow PURGE from this client (127.0.0.1): add it to the cache's purge ACL (Varnish: the acl vcl_recv checks; nginx: allow in the proxy_cache_purge location; Squid: http_access allow PURGE), and check that the cache handles the PURGE method
}

// With BanTags, tags become one Varnish ban expression per request.
func ExampleBanTags() {
	nodes, lines, stop := printingNodes(1)
	defer stop()
	b, _ := httppurge.New(
		httppurge.WithNodes(nodes...),
		httppurge.WithSiteHost("www.example.com"),
		httppurge.WithTagMode(httppurge.BanTags("X-Ban-Tags")),
	)
	defer b.Close(context.Background())

	_, _ = b.Purge(context.Background(), backends.NewRequest(nil, []string{"article-7", "feed.rss"}))
	fmt.Println(lines()[0])
	// Output:
	// node1: BAN / Host: www.example.com X-Ban-Tags: (^|\s)(article-7|feed\.rss)(\s|$)
}

// NewCluster makes one backend per node, so that the dispatcher queues and
// retries each node on its own.
func ExampleNewCluster() {
	c, err := httppurge.NewCluster(
		httppurge.WithName("varnish"),
		httppurge.WithNodes("http://10.0.0.5:6081", "http://10.0.0.6:6081"),
		httppurge.WithSiteHost("www.example.com"),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(context.Background()) // only because no dispatcher closes its nodes here
	for _, b := range c.Backends() {
		fmt.Println(b.Name())
	}
	// d, err := dispatcher.New(c.Backends()) // d.Close closes every node
	// Output:
	// varnish@10.0.0.5:6081
	// varnish@10.0.0.6:6081
}

// New reports every invalid setting at once, each naming its option.
func ExampleNew_invalid() {
	_, err := httppurge.New(
		httppurge.WithNodes("http://10.0.0.5:6081/purge"),
		httppurge.WithSiteHost("https://www.example.com"),
	)
	fmt.Println(err)
	// Output:
	// httppurge: invalid configuration:
	// WithNodes("http://10.0.0.5:6081/purge"): a node is a base URL without path or query, such as "http://10.0.0.5:6081"
	// WithSiteHost("https://www.example.com"): give a host name such as "www.example.com", not a URL
}

// A discovery function gives the nodes of a cluster that changes; it is
// called again every WithDiscoveryInterval.
func ExampleWithDiscovery() {
	nodes, lines, stop := printingNodes(1)
	defer stop()
	b, _ := httppurge.New(
		httppurge.WithDiscovery(func(ctx context.Context) ([]string, error) {
			return nodes, nil // for example from Kubernetes endpoints; see also DNS
		}),
		httppurge.WithSiteHost("www.example.com"),
		httppurge.WithLogger(slog.New(slog.DiscardHandler)),
	)
	defer b.Close(context.Background()) // stops the discovery goroutine

	_, err := b.Purge(context.Background(), backends.NewRequest([]string{"/"}, nil))
	fmt.Println(err, len(b.Nodes()), lines())
	// Output:
	// <nil> 1 [node1: PURGE / Host: www.example.com]
}
