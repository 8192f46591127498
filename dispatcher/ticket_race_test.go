package dispatcher_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// Many producers submit overlapping requests, some to a subset of the
// backends, while a small queue drops the oldest and one backend refuses
// some objects: every ticket gets done, each outcome agrees with what the
// backends saw, and only the requests holding a refused object fail.
func TestSubmitConcurrently(t *testing.T) {
	t.Parallel()
	ok := &fakeBackend{name: "ok", limits: backends.Limits{MaxObjects: 3}}
	picky := &fakeBackend{name: "picky", fn: func(_ context.Context, r backends.Request, n int) (backends.Result, error) {
		if n%3 == 0 {
			return backends.Result{}, errors.New("503") // retried
		}
		var bad []string
		for _, u := range r.URLs {
			if strings.HasPrefix(u, "/bad/") {
				bad = append(bad, u)
			}
		}
		if len(bad) > 0 {
			return backends.Result{}, backends.Partial(urls(bad...), backends.Permanent(errors.New("403")))
		}
		return backends.Result{}, nil
	}}
	slow := &fakeBackend{name: "slow", fn: func(context.Context, backends.Request, int) (backends.Result, error) {
		time.Sleep(100 * time.Microsecond)
		return backends.Result{}, nil
	}}
	d := newDispatcher(t, []backends.Backend{ok, picky, slow},
		dispatcher.WithLinger(time.Millisecond), dispatcher.WithQueueSize(32), dispatcher.WithFullPolicy(dispatcher.DropOldest))

	const producers, each = 8, 100
	type sub struct {
		req     backends.Request
		targets []string
		tk      *dispatcher.Ticket
	}
	subs := make([][]sub, producers)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				var us []string
				for j := range 1 + i%4 {
					prefix := "/p/"
					if (p+i+j)%7 == 0 {
						prefix = "/bad/"
					}
					us = append(us, fmt.Sprintf("%s%d", prefix, (p*31+i*7+j)%50))
				}
				s := sub{req: urls(us...), targets: []string{"ok", "picky", "slow"}}
				var opts []dispatcher.SubmitOption
				if i%5 == 0 {
					s.targets = []string{"picky", "slow"}
					opts = append(opts, dispatcher.WithBackends("slow", "picky"))
				}
				tk, err := d.Submit(t.Context(), s.req, opts...)
				assert.NoError(t, err) // DropOldest never refuses the new request
				s.tk = tk
				subs[p] = append(subs[p], s)
			}
		})
	}
	wg.Wait()
	outcomes := make(map[*dispatcher.Ticket][]dispatcher.BackendOutcome)
	for _, ps := range subs {
		for _, s := range ps {
			outcomes[s.tk] = wait(t, s.tk)
		}
	}

	okDelivered := ok.Union()
	for _, ps := range subs {
		for _, s := range ps {
			out := outcomes[s.tk]
			require.Len(t, out, len(s.targets))
			for i, o := range out {
				assert.Equal(t, s.targets[i], o.Backend)
				switch o.Outcome {
				case dispatcher.Dropped:
					assert.ErrorIs(t, o.Err, dispatcher.ErrQueueFull)
				case dispatcher.Delivered:
					if o.Backend == "ok" {
						assert.Equal(t, s.req, urlsIn(s.req, okDelivered), "delivered means the backend got every object")
					}
				}
				if o.Backend == "picky" && o.Outcome != dispatcher.Dropped {
					hasBad := slices.ContainsFunc(s.req.URLs, func(u string) bool { return strings.HasPrefix(u, "/bad/") })
					assert.Equal(t, hasBad, o.Outcome == dispatcher.Failed, "%v: %v", s.req, o.Err)
				}
			}
		}
	}
}

// urlsIn returns the URLs of r that o holds.
func urlsIn(r, o backends.Request) backends.Request {
	var in []string
	for _, u := range r.URLs {
		if slices.Contains(o.URLs, u) {
			in = append(in, u)
		}
	}
	return urls(in...)
}
