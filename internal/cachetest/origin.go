package cachetest

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// HealthPath is answered by every origin with 200 and Cache-Control:
// no-store; the caches pass it through, and Start polls it to know that a
// cache is ready.
const HealthPath = "/__origin/health"

// Origin is an HTTP server in the test process that the caches fetch from.
type Origin struct {
	// URL is the origin's base URL, such as "http://127.0.0.1:41234".
	URL string
	// Host and Port are where it listens.
	Host string
	Port int

	fetches atomic.Int64
}

// StartOrigin starts an origin on a free loopback port that answers with h,
// or with [Origin.Pages] when h is nil, and closes it when the test ends.
// Start the caches after the origin, so that they are stopped first.
func StartOrigin(t testing.TB, h http.Handler) *Origin {
	t.Helper()
	o := &Origin{}
	if h == nil {
		h = http.HandlerFunc(o.Pages)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(HealthPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	host, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatalf("cachetest: origin address: %v", err)
	}
	o.URL, o.Host = srv.URL, host
	o.Port, _ = strconv.Atoi(port)
	return o
}

// Pages is the default origin handler. Every GET renders a new body,
// "path=<path> n=<fetch number> lang=<Accept-Language>", so that a test
// tells a cached page from a fresh one by its body. Each page may be cached
// for an hour and carries its cache tags in the xkey and Surrogate-Key
// headers: "all", "path:<path>", and those listed in the tags query
// parameter (comma-separated). Pages under /vary/ vary on Accept-Language.
func (o *Origin) Pages(w http.ResponseWriter, r *http.Request) {
	n := o.fetches.Add(1)
	tags := []string{"all", "path:" + r.URL.Path}
	for _, tag := range strings.Split(r.URL.Query().Get("tags"), ",") {
		if tag != "" {
			tags = append(tags, tag)
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("Xkey", strings.Join(tags, " "))
	h.Set("Surrogate-Key", strings.Join(tags, " "))
	if strings.HasPrefix(r.URL.Path, "/vary/") {
		h.Set("Vary", "Accept-Language")
	}
	fmt.Fprintf(w, "path=%s n=%d lang=%s\n", r.URL.Path, n, r.Header.Get("Accept-Language"))
}

// Fetches returns how many pages [Origin.Pages] has rendered.
func (o *Origin) Fetches() int64 { return o.fetches.Load() }
