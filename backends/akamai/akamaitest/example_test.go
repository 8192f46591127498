package akamaitest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/akamai/AkamaiOPEN-edgegrid-golang/v8/pkg/edgegrid"

	"github.com/gormpurge/gormpurge/backends/akamai"
	"github.com/gormpurge/gormpurge/backends/akamai/akamaitest"
)

// A test signs a request with the EdgeGrid library, as the code under test
// would, sends it to the fake and reads what the fake accepted.
func Example() {
	srv := akamaitest.NewServer()
	defer srv.Close()

	creds := srv.Credentials()
	signer := edgegrid.Config{
		Host:         creds.Host,
		ClientToken:  creds.ClientToken,
		ClientSecret: creds.ClientSecret,
		AccessToken:  creds.AccessToken,
		MaxBody:      edgegrid.MaxBodySize, // left at 0, the body is not signed and Akamai answers 401
	}

	body := `{"objects":["https://www.example.com/posts/1","https://www.example.com/"]}`
	req, err := http.NewRequest(http.MethodPost,
		srv.URL()+akamai.Path(akamai.Invalidate, akamai.KindURL, akamai.Production), strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/json")
	signer.SignRequest(req)

	resp, err := srv.Client().Do(req)
	if err != nil {
		panic(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("X-Ratelimit-Remaining-Objects"))

	for _, p := range srv.Purges() {
		fmt.Println(p.Action, p.Network, p.Kind, p.Objects)
	}
	fmt.Println(srv.Objects(akamai.KindURL))
	// Output:
	// 201 9998
	// invalidate production url [https://www.example.com/posts/1 https://www.example.com/]
	// [https://www.example.com/posts/1 https://www.example.com/]
}

// FailNext makes the next requests fail, to test a client's retries.
func ExampleServer_FailNext() {
	srv := akamaitest.NewServer()
	defer srv.Close()
	srv.FailNext(http.StatusServiceUnavailable, 2)

	signer := edgegrid.Config{MaxBody: edgegrid.MaxBodySize}
	c := srv.Credentials()
	signer.Host, signer.ClientToken, signer.ClientSecret, signer.AccessToken = c.Host, c.ClientToken, c.ClientSecret, c.AccessToken

	for range 3 { // a client that retries
		req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/ccu/v3/delete/tag", strings.NewReader(`{"objects":["post-1"]}`))
		req.Header.Set("Content-Type", "application/json")
		signer.SignRequest(req) // each attempt is signed anew: a nonce is used once
		resp, err := srv.Client().Do(req)
		if err != nil {
			panic(err)
		}
		_ = resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	fmt.Println(len(srv.Purges()), srv.Responses())
	// Output:
	// 503
	// 503
	// 201
	// 1 map[201:1 503:2]
}

// One ScaledClock, shared by the fake and the client, makes a minute of
// Akamai time pass in 60 milliseconds.
func ExampleScaledClock() {
	clock := akamaitest.NewScaledClock(1000)
	srv := akamaitest.NewServer(akamaitest.WithClock(clock))
	defer srv.Close()

	start := time.Now()
	_ = clock.Sleep(context.Background(), time.Minute) // what the client's pacing would do
	fmt.Println(time.Since(start) < time.Second)
	// Output:
	// true
}
