package cloudflaretest_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gormpurge/gormpurge/backends/cloudflare/cloudflaretest"
)

// A test sends a purge as the code under test would and reads what the
// fake accepted.
func Example() {
	srv := cloudflaretest.NewServer()
	defer srv.Close()

	req, err := http.NewRequest(http.MethodPost, srv.Endpoint()+"/zones/"+srv.Zone()+"/purge_cache",
		strings.NewReader(`{"files":["https://www.example.com/posts/1"]}`))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Authorization", "Bearer "+srv.Token())
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		panic(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()

	fmt.Println(resp.StatusCode, srv.Files())
	// Output:
	// 200 [https://www.example.com/posts/1]
}

// FailNext makes the next requests fail, to test a client's retries.
func ExampleServer_FailNext() {
	srv := cloudflaretest.NewServer()
	defer srv.Close()
	srv.FailNext(http.StatusTooManyRequests, 1)

	for range 2 {
		req, _ := http.NewRequest(http.MethodPost, srv.Endpoint()+"/zones/"+srv.Zone()+"/purge_cache",
			strings.NewReader(`{"tags":["post-1"]}`))
		req.Header.Set("Authorization", "Bearer "+srv.Token())
		resp, err := srv.Client().Do(req)
		if err != nil {
			panic(err)
		}
		_ = resp.Body.Close()
		fmt.Printf("%d Retry-After=%q\n", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	fmt.Println(srv.Tags())
	// Output:
	// 429 Retry-After="1"
	// 200 Retry-After=""
	// [post-1]
}
