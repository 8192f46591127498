package backends_test

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gormpurge/gormpurge/backends"
)

// A backend whose service refuses single objects reports them with a
// RejectedError; its caller finds the refusals with errors.As.
func ExampleRejectedError() {
	refused := &backends.RejectedError{
		Backend:  "mycdn",
		Rejected: []backends.Rejected{{Object: "https://www.example.com/secret", Reason: "403 not authorised"}},
		Purged:   2,
	}
	failed := backends.NewRequest([]string{"/secret"}, nil)
	err := backends.Permanent(backends.Partial(failed, refused))

	var rej *backends.RejectedError
	if errors.As(err, &rej) {
		for _, r := range rej.Rejected {
			fmt.Println(r.Object, "->", r.Reason)
		}
	}
	fmt.Println(err)
	// Output:
	// https://www.example.com/secret -> 403 not authorised
	// permanent: mycdn: 1 objects not purged (2 purged): "https://www.example.com/secret": 403 not authorised
}

// A backend of an HTTP API reads a 429's Retry-After, bounds it, and marks
// the error with RetryAfter.
func ExampleParseRetryAfter() {
	h := http.Header{"Retry-After": {"30"}}
	wait, ok := backends.ParseRetryAfter(h, time.Now())
	if !ok || wait <= 0 || wait > time.Hour {
		wait = 5 * time.Second // the API's documented default
	}
	err := backends.RetryAfter(wait, errors.New("mycdn: 429"))
	d, _ := backends.RetryDelay(err)
	fmt.Println(d)
	// Output: 30s
}
