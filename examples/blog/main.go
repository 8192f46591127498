// Command blog is a small blog on SQLite that caches its own pages and has
// the gormpurge plugin purge them after every committed edit.
//
//	go run ./examples/blog
//
// It creates blog.db in the current directory on its first run, with a few
// posts, and prints where to browse. Every page says whether it came from
// the cache; editing a post purges the post's page, the pages of its tags
// and the index, and the log shows each purge. Flags add a Varnish node
// and Akamai credentials as further caches to purge, and share the page
// cache between several instances of the blog through Redis or NATS; see
// README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"
)

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		os.Exit(2)
	}
	// The records of localcache.ClearHandler go to the default logger.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stdout, nil)))
	// The first Ctrl-C (or SIGTERM) ends ctx and starts a graceful
	// shutdown. run calls stop as soon as it does, which gives the signals
	// back their default handling: a second Ctrl-C ends the process at
	// once, without waiting for the shutdown.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, stop, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "blog:", err)
		os.Exit(1)
	}
}

// parseFlags reads the command line; errors and usage go to output.
func parseFlags(args []string, output io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("blog", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		fmt.Fprintf(output, "Usage: go run ./examples/blog [flags]\n\n"+
			"A small blog whose pages are cached until the gormpurge plugin purges them.\n\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "`address` to listen on")
	fs.StringVar(&cfg.dbPath, "db", "blog.db", "SQLite database `file`, created and seeded on first run")
	fs.StringVar(&cfg.varnish, "varnish", "", "also purge this Varnish (or other HTTP PURGE) cache `node`, such as http://127.0.0.1:6081")
	fs.StringVar(&cfg.siteHost, "site-host", "", "the `host` visitors use in front of Varnish or Akamai, such as www.example.com\n(default with -varnish: the node's host and port)")
	fs.StringVar(&cfg.akamaiEdgerc, "akamai-edgerc", "", "also purge Akamai, with the credentials in this .edgerc `file` (needs -site-host)")
	fs.StringVar(&cfg.akamaiSection, "akamai-section", "ccu", "the .edgerc `section` to read")
	fs.StringVar(&cfg.akamaiNetwork, "akamai-network", "staging", "the Akamai `network` to purge: staging or production")
	fs.StringVar(&cfg.redis, "redis", "", "keep pages in this Redis `server` (host:port or redis://[user:password@]host:port/db), shared by every instance")
	fs.BoolVar(&cfg.redisBus, "redis-bus", false, "with -redis: keep pages in memory on each instance instead, kept coherent by Redis pub/sub")
	fs.StringVar(&cfg.nats, "nats", "", "keep pages in memory on each instance, kept coherent by the NATS server at this `URL`, such as nats://127.0.0.1:4222")
	fs.StringVar(&cfg.cacheName, "cache-name", defaultCacheName, "the cache's `name`, shared by the instances of one site: its Redis key prefix, Redis channel or NATS subject")
	fs.BoolVar(&cfg.warm, "warm", false, "after a purge, render the purged pages again into the local cache")
	fs.StringVar(&cfg.metricsAddr, "metrics-addr", "", "serve Prometheus's /metrics on this `address` only, such as 127.0.0.1:9090 (default: on -addr)")
	fs.BoolVar(&cfg.traceStdout, "trace-stdout", false, "write OpenTelemetry spans to standard output, one JSON object a line: each request, the handoff of its purges, each call to a cache")
	fs.BoolVar(&cfg.verbose, "v", false, "verbose: log SQL statements and the components' debug records")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected argument %q", fs.Arg(0))
		fmt.Fprintln(output, err)
		fs.Usage()
		return config{}, err
	}
	if _, err := cfg.mode(); err != nil {
		fmt.Fprintln(output, err)
		return config{}, err
	}
	return cfg, nil
}

// shutdownTimeout bounds a graceful shutdown: the requests in progress
// and the delivery of the purges still queued.
const shutdownTimeout = 10 * time.Second

// run serves the blog on cfg.addr until ctx is done, then shuts down
// gracefully: it stops taking requests, delivers the purges still queued
// (for up to shutdownTimeout) and closes the database. It prints where to
// browse and scrape, and logs (and spans, with -trace-stdout), to out.
// With -metrics-addr, /metrics has a server of its own, shut down with the
// blog's. stop, if not nil, is called as soon as ctx is
// done, before the shutdown: main passes the stop of its signal context,
// so that a second Ctrl-C ends the process at once.
//
// Purges that could not be delivered in time (a cache that is down) are
// logged, not returned: run returns an error only if the server, or
// closing the database or a backend, failed.
func run(ctx context.Context, stop func(), cfg config, out io.Writer) error {
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	cfg.siteURL = "http://" + browseAddr(ln.Addr())
	a, err := newApp(cfg, out)
	if err != nil {
		ln.Close()
		return err
	}
	metrics, metricsURL, err := a.startMetrics()
	if err != nil {
		ln.Close()
		a.closeQuietly()
		return err
	}
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(out, "Blog running at %s/ (edit a post at %s/posts/%s/edit)\n", cfg.siteURL, cfg.siteURL, a.firstSlug)
	fmt.Fprintf(out, "Metrics at %s\n", metricsURL)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err = <-served:
	case <-ctx.Done():
		if stop != nil {
			stop()
		}
		a.log.Info("shutting down", "hint", "press Ctrl-C again to quit at once")
	}
	timeout := shutdownTimeout
	if cfg.shutdownTimeout > 0 {
		timeout = cfg.shutdownTimeout
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if shutdownErr := srv.Shutdown(stopCtx); err == nil {
		err = shutdownErr
	}
	if metrics != nil {
		_ = metrics.Shutdown(stopCtx) // scrapes are cut short, not failed
	}
	undelivered, closeErr := a.shutdown(stopCtx)
	if undelivered != nil {
		// The purges were kept as long as the shutdown allowed; the
		// caches that missed them keep the old pages until they expire
		// or are cleared. That is worth a warning, not a failed exit.
		for _, name := range slices.Sorted(maps.Keys(undelivered.Requests)) {
			r := undelivered.Requests[name]
			a.log.Warn("purges not delivered before shutdown", "backend", name,
				"urls", r.URLs, "tags", r.Tags, "error", undelivered.Err)
		}
	}
	return errors.Join(err, closeErr)
}

// browseAddr returns the address to browse for a listener's address: a
// listener on every interface is browsed on 127.0.0.1.
func browseAddr(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
