package dispatcher_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// A Dispatcher merges the requests that arrive within its linger window and
// sends each backend one call for them.
func Example() {
	var (
		mu    sync.Mutex
		calls []backends.Request
	)
	cdn := backends.Func("cdn", func(_ context.Context, r backends.Request) (backends.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, r)
		return backends.Result{IDs: map[string]string{"purgeId": "p-1"}}, nil
	})
	d, err := dispatcher.New([]backends.Backend{cdn},
		dispatcher.WithLinger(time.Minute), // Flush below ends the window
		dispatcher.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()

	_ = d.Enqueue(ctx, backends.NewRequest([]string{"/articles/1"}, []string{"article-1"}))
	_ = d.Enqueue(ctx, backends.NewRequest([]string{"/articles/1", "/"}, nil))
	if err := d.Flush(ctx); err != nil {
		fmt.Println("flush:", err)
	}
	if err := d.Close(ctx); err != nil {
		fmt.Println("close:", err)
	}

	mu.Lock()
	defer mu.Unlock()
	fmt.Println(len(calls), "call:", calls[0].URLs, calls[0].Tags)
	s, _ := d.Stats().Backend("cdn")
	fmt.Printf("enqueued %d, coalesced %d, delivered %d\n", s.Enqueued, s.Coalesced, s.Delivered)
	// Output:
	// 1 call: [/ /articles/1] [article-1]
	// enqueued 4, coalesced 1, delivered 3
}

// The OnResult hook sees how every batch ended: here a backend that refuses
// for good, which the dispatcher does not retry.
func ExampleWithOnResult() {
	forbidden := backends.Func("varnish", func(context.Context, backends.Request) (backends.Result, error) {
		return backends.Result{Detail: "403 Forbidden"}, backends.Permanent(errors.New("varnish: 403 Forbidden"))
	})
	d, err := dispatcher.New([]backends.Backend{forbidden},
		dispatcher.WithLogger(slog.New(slog.DiscardHandler)),
		dispatcher.WithOnResult(func(r dispatcher.Report) {
			fmt.Printf("%s %s after %d attempt(s): %v\n", r.Backend, r.Outcome, r.Attempts, r.Err)
		}))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	_ = d.Enqueue(ctx, backends.NewRequest([]string{"/"}, nil))
	_ = d.Close(ctx)
	// Output:
	// varnish failed after 1 attempt(s): permanent: varnish: 403 Forbidden
}

// Close drains within its context's deadline and says what it could not
// deliver, so that it can be logged or kept for later.
func ExampleDispatcher_Close() {
	down := backends.Func("cdn", func(ctx context.Context, _ backends.Request) (backends.Result, error) {
		<-ctx.Done() // a call that hangs until cancelled
		return backends.Result{}, ctx.Err()
	})
	d, err := dispatcher.New([]backends.Backend{down}, dispatcher.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = d.Enqueue(context.Background(), backends.NewRequest([]string{"/a", "/b"}, nil))

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = d.Close(ctx)
	var ue *dispatcher.UndeliveredError
	if errors.As(err, &ue) {
		fmt.Println(ue.Requests["cdn"].URLs, errors.Is(err, context.DeadlineExceeded))
	}
	// Output:
	// [/a /b] true
}

// Submit returns a Ticket that says, once every backend has settled the
// request, how each one did. Here the two requests share a batch, which the
// cache purges but for one URL that it names with backends.Partial: only
// the request holding that URL has failed.
func ExampleDispatcher_Submit() {
	cdn := backends.Func("cdn", func(context.Context, backends.Request) (backends.Result, error) {
		return backends.Result{IDs: map[string]string{"purgeId": "p-1"}}, nil
	})
	varnish := backends.Func("varnish", func(_ context.Context, r backends.Request) (backends.Result, error) {
		if slices.Contains(r.URLs, "/admin") {
			refused := backends.NewRequest([]string{"/admin"}, nil)
			return backends.Result{}, backends.Partial(refused, backends.Permanent(errors.New("403 Forbidden: /admin")))
		}
		return backends.Result{}, nil
	})
	d, err := dispatcher.New([]backends.Backend{cdn, varnish},
		dispatcher.WithLinger(time.Minute), // Flush below ends the window
		dispatcher.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	defer func() { _ = d.Close(ctx) }()

	reqs := []backends.Request{
		backends.NewRequest([]string{"/articles/1"}, nil),
		backends.NewRequest([]string{"/admin"}, nil),
	}
	var tickets []*dispatcher.Ticket
	for _, r := range reqs {
		t, err := d.Submit(ctx, r)
		if t == nil {
			fmt.Println("submit:", err)
			return
		}
		tickets = append(tickets, t)
	}
	_ = d.Flush(ctx)

	for i, t := range tickets {
		outcomes, err := t.Wait(ctx)
		if err != nil {
			fmt.Println("wait:", err)
			return
		}
		for _, o := range outcomes {
			fmt.Printf("%v %s: %s %v\n", reqs[i].URLs, o.Backend, o.Outcome, o.Err)
		}
	}
	s, _ := d.Stats().Backend("varnish")
	fmt.Printf("varnish: delivered %d, failed %d\n", s.Delivered, s.Failed)
	// Output:
	// [/articles/1] cdn: delivered <nil>
	// [/articles/1] varnish: delivered <nil>
	// [/admin] cdn: delivered <nil>
	// [/admin] varnish: failed permanent: 403 Forbidden: /admin
	// varnish: delivered 1, failed 1
}

// A data migration hands over a thousand pages at once: the CDN, billed per
// purged object, purges one cache tag instead, while the local cache still
// drops each page. A handoff of up to Above URLs is purged as usual.
func ExampleWithEscalation() {
	var (
		mu    sync.Mutex
		calls = map[string][]backends.Request{}
	)
	record := func(name string) backends.Backend {
		return backends.Func(name, func(_ context.Context, r backends.Request) (backends.Result, error) {
			mu.Lock()
			defer mu.Unlock()
			calls[name] = append(calls[name], r)
			return backends.Result{}, nil
		})
	}
	d, err := dispatcher.New([]backends.Backend{record("cdn"), record("local")},
		dispatcher.WithEscalation("cdn", dispatcher.Escalation{Above: 500, Tags: []string{"pages"}}),
		dispatcher.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()

	migrated := make([]string, 1000)
	for i := range migrated {
		migrated[i] = fmt.Sprintf("/pages/%d", i)
	}
	_ = d.Enqueue(ctx, backends.NewRequest(migrated, []string{"migration-42"}))
	_ = d.Flush(ctx)
	_ = d.Enqueue(ctx, backends.NewRequest([]string{"/pages/7"}, nil))
	if err := d.Close(ctx); err != nil {
		fmt.Println("close:", err)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, r := range calls["cdn"] {
		fmt.Printf("cdn: %d URLs, tags %v\n", len(r.URLs), r.Tags)
	}
	local := 0
	for _, r := range calls["local"] {
		local += len(r.URLs)
	}
	fmt.Println("local:", local, "URLs")
	s, _ := d.Stats().Backend("cdn")
	fmt.Printf("cdn: escalated %d handoff, %d URLs\n", s.Escalated, s.EscalatedURLs)
	// Output:
	// cdn: 0 URLs, tags [migration-42 pages]
	// cdn: 1 URLs, tags []
	// local: 1001 URLs
	// cdn: escalated 1 handoff, 1000 URLs
}

// Objects accounts for every URL and tag of a request, per backend: here a
// CDN that refuses one URL of the batch and names it with backends.Partial.
// A command that must say which objects were not purged, and why, loops
// over them.
func ExampleTicket_Objects() {
	cdn := backends.Func("cdn", func(_ context.Context, r backends.Request) (backends.Result, error) {
		refused := backends.NewRequest([]string{"/admin"}, nil)
		return backends.Result{}, backends.Partial(refused, backends.Permanent(errors.New("403 Forbidden: /admin")))
	})
	d, err := dispatcher.New([]backends.Backend{cdn}, dispatcher.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	defer func() { _ = d.Close(ctx) }()

	t, err := d.Submit(ctx, backends.NewRequest([]string{"/articles/1", "/admin"}, []string{"article-1"}))
	if t == nil {
		fmt.Println("submit:", err)
		return
	}
	if _, err := t.Wait(ctx); err != nil {
		fmt.Println("wait:", err)
		return
	}
	for _, o := range t.Objects() {
		if o.Outcome == dispatcher.Delivered {
			fmt.Printf("%s %s: purged\n", o.Backend, o.Object)
			continue
		}
		fmt.Printf("%s %s: %s: %v\n", o.Backend, o.Object, o.Outcome, o.Err)
	}
	// Output:
	// cdn /admin: failed: permanent: 403 Forbidden: /admin
	// cdn /articles/1: purged
	// cdn article-1: purged
}
