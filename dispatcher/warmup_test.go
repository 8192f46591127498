package dispatcher_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// fakeWarmer records every call to Enqueue.
type fakeWarmer struct {
	mu    sync.Mutex
	calls [][]string
	onEnq func() // called first, when set
}

func (w *fakeWarmer) Enqueue(urls ...string) {
	if w.onEnq != nil {
		w.onEnq()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, slices.Clone(urls))
}

func (w *fakeWarmer) Calls() [][]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.calls)
}

func TestWarmup(t *testing.T) {
	t.Parallel()
	refused := errors.New("403 Forbidden")
	three := urls("/a", "/b", "/c")
	tests := []struct {
		name   string
		limits backends.Limits
		fn     func(ctx context.Context, r backends.Request, n int) (backends.Result, error)
		esc    *dispatcher.Escalation
		req    backends.Request
		want   [][]string // calls to Enqueue, in any order
	}{
		{name: "delivered", req: backends.NewRequest([]string{"/a", "/b"}, []string{"t"}),
			want: [][]string{{"/a", "/b"}}},
		{name: "once per delivered batch", limits: backends.Limits{MaxObjects: 2}, req: three,
			want: [][]string{{"/a", "/b"}, {"/c"}}},
		{name: "retried, then delivered", req: three,
			fn: func(_ context.Context, _ backends.Request, n int) (backends.Result, error) {
				if n == 0 {
					return backends.Result{}, errors.New("503")
				}
				return backends.Result{}, nil
			},
			want: [][]string{{"/a", "/b", "/c"}}},
		{name: "partial failure warms the delivered URLs", req: three,
			fn: func(context.Context, backends.Request, int) (backends.Result, error) {
				return backends.Result{}, backends.Partial(urls("/b"), backends.Permanent(refused))
			},
			want: [][]string{{"/a", "/c"}}},
		{name: "failed batch", req: three,
			fn: func(context.Context, backends.Request, int) (backends.Result, error) {
				return backends.Result{}, backends.Permanent(refused)
			}},
		{name: "tags only", req: backends.NewRequest(nil, []string{"t"})},
		{name: "escalated to tags", esc: &dispatcher.Escalation{Above: 2, Tags: []string{"pages"}}, req: three,
			want: [][]string{{"/a", "/b"}}}, // at most Above of them
		{name: "escalated to tags, failed", esc: &dispatcher.Escalation{Above: 2, Tags: []string{"pages"}}, req: three,
			fn: func(context.Context, backends.Request, int) (backends.Result, error) {
				return backends.Result{}, backends.Partial(backends.NewRequest(nil, []string{"pages"}), backends.Permanent(refused))
			}},
		{name: "escalated to all", esc: &dispatcher.Escalation{Above: 2, All: true}, req: three,
			want: [][]string{{"/a", "/b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cdn := &allBackend{fakeBackend: fakeBackend{name: "cdn", limits: tt.limits, fn: tt.fn}}
			other := &fakeBackend{name: "other"}
			w := &fakeWarmer{}
			opts := []dispatcher.Option{dispatcher.WithWarmup("cdn", w)}
			if tt.esc != nil {
				opts = append(opts, dispatcher.WithEscalation("cdn", *tt.esc))
			}
			d := newDispatcher(t, []backends.Backend{cdn, other}, opts...)

			require.NoError(t, d.Enqueue(t.Context(), tt.req))
			require.NoError(t, d.Flush(t.Context()))

			assert.ElementsMatch(t, tt.want, w.Calls())
		})
	}
}

// The Warmer sees a batch after the OnResult hook has, and before Flush
// returns.
func TestWarmupRunsAfterOnResult(t *testing.T) {
	t.Parallel()
	var got collector
	var reportsSeen atomic.Int32
	w := &fakeWarmer{}
	w.onEnq = func() { reportsSeen.Store(int32(len(got.all()))) }
	d := newDispatcher(t, []backends.Backend{&fakeBackend{name: "cdn"}},
		dispatcher.WithOnResult(got.add),
		dispatcher.WithWarmup("cdn", w))

	require.NoError(t, d.Enqueue(t.Context(), urls("/a")))
	require.NoError(t, d.Flush(t.Context()))
	assert.Equal(t, [][]string{{"/a"}}, w.Calls())
	assert.EqualValues(t, 1, reportsSeen.Load())
}

// An escalated handoff gives the Warmer no more than Above of its URLs, so
// that a bulk change does not become as many page fetches; the handoffs
// merged with it that were not escalated are warmed in full.
func TestWarmupAfterEscalationIsCapped(t *testing.T) {
	t.Parallel()
	prefixed := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s%05d", prefix, i)
		}
		return out
	}
	tests := []struct {
		name string
		esc  dispatcher.Escalation
	}{
		{"all", dispatcher.Escalation{Above: 3, All: true}},
		{"tags", dispatcher.Escalation{Above: 3, Tags: []string{"pages"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cdn := &allBackend{fakeBackend: fakeBackend{name: "cdn"}}
			w := &fakeWarmer{}
			// Only Flush ends the window: the three handoffs make one group.
			d := newDispatcher(t, []backends.Backend{cdn},
				dispatcher.WithLinger(time.Hour),
				dispatcher.WithEscalation("cdn", tt.esc),
				dispatcher.WithWarmup("cdn", w))

			require.NoError(t, d.Enqueue(t.Context(), urls(prefixed("/p/", 20_000)...)))
			require.NoError(t, d.Enqueue(t.Context(), urls(prefixed("/q/", 10)...)))
			require.NoError(t, d.Enqueue(t.Context(), urls("/a", "/z"))) // not escalated
			require.NoError(t, d.Flush(t.Context()))

			s, _ := d.Stats().Backend("cdn")
			require.Equal(t, uint64(2), s.Escalated)
			assert.Equal(t, [][]string{{
				"/a",
				"/p/00000", "/p/00001", "/p/00002",
				"/q/00000", "/q/00001", "/q/00002",
				"/z",
			}}, w.Calls())
		})
	}
}
