package fastlytest_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"

	"github.com/gormpurge/gormpurge/backends/fastly/fastlytest"
)

// A test purges two surrogate keys in one batch request, as the code under
// test would, and reads what the fake purged.
func Example() {
	srv := fastlytest.NewServer(fastlytest.WithServiceID("SU1Z0isxPaozGVKXdv0eY"))
	defer srv.Close()

	req, err := http.NewRequest(http.MethodPost, srv.URL()+"/service/SU1Z0isxPaozGVKXdv0eY/purge",
		strings.NewReader(`{"surrogate_keys":["post-1","posts"]}`))
	if err != nil {
		log.Fatal(err)
	}
	req.Header.Set("Fastly-Key", srv.Token())
	req.Header.Set("Fastly-Soft-Purge", "1")
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		log.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()

	p := srv.Purges()[0]
	fmt.Println(resp.StatusCode, resp.Header.Get("Fastly-RateLimit-Remaining"), p.Kind, p.Keys, p.Soft)
	// Output:
	// 200 1000 keys [post-1 posts] true
}
