package cachetest

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// client sends the tests' own requests to the caches. It keeps no idle
// connections, so that no goroutine outlives a test.
var client = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true},
	Timeout:   10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// Page is a cache's answer.
type Page struct {
	// Status is the HTTP status code.
	Status int
	// Reason is the rest of the status line, such as "Not allowed.".
	Reason string
	// Body is the response body.
	Body string
	// Hit reports whether the cache says it answered from its store.
	Hit bool
	// Header holds the response headers.
	Header http.Header
}

// Get fetches path (with its query) from c with the Host header host. kv are
// more request header names and values.
func (c *Cache) Get(t testing.TB, host, path string, kv ...string) Page {
	t.Helper()
	return c.Do(t, http.MethodGet, host, path, kv...)
}

// Do sends one request with the given method to c and returns its answer,
// failing the test when the cache cannot be reached.
func (c *Cache) Do(t testing.TB, method, host, path string, kv ...string) Page {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, c.URL+path, nil)
	if err != nil {
		t.Fatalf("cachetest: %v", err)
	}
	req.Host = host
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Add(kv[i], kv[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("cachetest: %s %s%s (Host %s): %v", method, c.URL, path, host, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("cachetest: %s %s%s: reading the body: %v", method, c.URL, path, err)
	}
	return Page{
		Status: res.StatusCode,
		Reason: strings.TrimSpace(strings.TrimPrefix(res.Status, strconv.Itoa(res.StatusCode))),
		Body:   string(body),
		Hit:    strings.HasPrefix(strings.ToUpper(res.Header.Get(c.Kind.HitHeader())), "HIT"),
		Header: res.Header,
	}
}
