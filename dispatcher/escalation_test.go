package dispatcher_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// allBackend is a fakeBackend that can purge everything. allFn answers call
// number n (0-based) to PurgeAll, success when nil; canErr is what
// CanPurgeAll returns. It paces itself, allowing every call at once, and
// counts the calls to Pace.
type allBackend struct {
	fakeBackend
	canErr error
	allFn  func(ctx context.Context, n int) (backends.Result, error)

	alls, allsDelivered, paced atomic.Int32
}

var (
	_ backends.PurgeAller = (*allBackend)(nil)
	_ backends.Pacer      = (*allBackend)(nil)
)

func (a *allBackend) CanPurgeAll() error { return a.canErr }

func (a *allBackend) PurgeAll(ctx context.Context) (backends.Result, error) {
	n := int(a.alls.Add(1) - 1)
	var (
		res backends.Result
		err error
	)
	if a.allFn != nil {
		res, err = a.allFn(ctx, n)
	}
	if err == nil {
		a.allsDelivered.Add(1)
	}
	return res, err
}

func (a *allBackend) Pace(context.Context, backends.Request) error {
	a.paced.Add(1)
	return nil
}

// tagBackend is a fakeBackend that says whether it purges tags:
// CanPurgeTags returns canErr.
type tagBackend struct {
	fakeBackend
	canErr error
}

var _ backends.TagPurger = (*tagBackend)(nil)

func (b *tagBackend) CanPurgeTags() error { return b.canErr }

// pages returns n distinct site paths.
func pages(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("/p/%04d", i)
	}
	return out
}

func TestNewRejectsInvalidEscalationOrWarmup(t *testing.T) {
	t.Parallel()
	tags := []string{"pages"}
	tests := []struct {
		name string
		opt  dispatcher.Option
		want string
	}{
		{"escalation unknown backend", dispatcher.WithEscalation("nope", dispatcher.Escalation{Above: 1, Tags: tags}),
			`WithEscalation("nope", ...): no backend has that name`},
		{"escalation above 0", dispatcher.WithEscalation("a", dispatcher.Escalation{Above: 0, Tags: tags}),
			`WithEscalation("a", ...): Above is 0: it must be at least 1`},
		{"escalation to nothing", dispatcher.WithEscalation("a", dispatcher.Escalation{Above: 1}),
			`WithEscalation("a", ...): set Tags to purge instead of the URLs, or All`},
		{"escalation to tags and all", dispatcher.WithEscalation("all", dispatcher.Escalation{Above: 1, Tags: tags, All: true}),
			`WithEscalation("all", ...): set Tags or All, not both`},
		{"escalation empty tag", dispatcher.WithEscalation("a", dispatcher.Escalation{Above: 1, Tags: []string{"pages", ""}}),
			`WithEscalation("a", ...): Tags ["pages" ""] holds an empty tag`},
		{"escalation to all without PurgeAller", dispatcher.WithEscalation("a", dispatcher.Escalation{Above: 1, All: true}),
			`WithEscalation("a", ...): All: backend of type *dispatcher_test.fakeBackend cannot purge everything: it does not implement backends.PurgeAller`},
		{"escalation to all refused by CanPurgeAll", dispatcher.WithEscalation("off", dispatcher.Escalation{Above: 1, All: true}),
			`WithEscalation("off", ...): All: the backend cannot purge everything: off: needs a zone ID`},
		{"warmup unknown backend", dispatcher.WithWarmup("nope", &fakeWarmer{}),
			`WithWarmup("nope", ...): no backend has that name`},
		{"warmup nil", dispatcher.WithWarmup("a", nil),
			`WithWarmup("a", nil): pass a Warmer`},
		{"warmup typed nil", dispatcher.WithWarmup("a", (*fakeWarmer)(nil)),
			`WithWarmup("a", (*dispatcher_test.fakeWarmer)(nil)): the Warmer is a nil *dispatcher_test.fakeWarmer`},
		{"escalation to tags refused by CanPurgeTags", dispatcher.WithEscalation("notags", dispatcher.Escalation{Above: 1, Tags: tags}),
			`WithEscalation("notags", ...): Tags: the backend cannot purge tags: notags: set WithTagMode`},
		{"escalation tag with a space", dispatcher.WithEscalation("a", dispatcher.Escalation{Above: 1, Tags: []string{"pages", "site pages"}}),
			`WithEscalation("a", ...): Tags: tag "site pages" holds a space (' ' at byte 4)`},
		{"escalation tag with a comma", dispatcher.WithEscalation("a", dispatcher.Escalation{Above: 1, Tags: []string{"a,b"}}),
			`WithEscalation("a", ...): Tags: tag "a,b" holds a comma (',' at byte 1)`},
		{"escalation tag with a control character", dispatcher.WithEscalation("a", dispatcher.Escalation{Above: 1, Tags: []string{"x\r\ny"}}),
			`WithEscalation("a", ...): Tags: tag "x\r\ny" holds a control character ('\r' at byte 1)`},
		{"escalation tag with a tab", dispatcher.WithEscalation("a", dispatcher.Escalation{Above: 1, Tags: []string{"a\tb"}}),
			`WithEscalation("a", ...): Tags: tag "a\tb" holds a control character ('\t' at byte 1)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bs := []backends.Backend{
				&fakeBackend{name: "a"},
				&allBackend{fakeBackend: fakeBackend{name: "all"}},
				&allBackend{fakeBackend: fakeBackend{name: "off"}, canErr: errors.New("off: needs a zone ID")},
				&tagBackend{fakeBackend: fakeBackend{name: "notags"}, canErr: errors.New("notags: set WithTagMode")},
			}
			d, err := dispatcher.New(bs, tt.opt)
			require.Error(t, err)
			assert.Nil(t, d)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// A handoff of more URLs than Above is escalated; one of exactly Above is
// not.
func TestEscalationAboveThreshold(t *testing.T) {
	t.Parallel()
	toTags := dispatcher.Escalation{Above: 500, Tags: []string{"pages", "site"}}
	toAll := dispatcher.Escalation{Above: 500, All: true}
	tests := []struct {
		name      string
		esc       dispatcher.Escalation
		urls      int
		escalated bool
		want      []backends.Request // calls to Purge
		alls      int32              // calls to PurgeAll
	}{
		{"tags, at Above", toTags, 500, false, []backends.Request{backends.NewRequest(pages(500), []string{"post-1"})}, 0},
		{"tags, above", toTags, 501, true, []backends.Request{backends.NewRequest(nil, []string{"pages", "post-1", "site"})}, 0},
		{"all, at Above", toAll, 500, false, []backends.Request{backends.NewRequest(pages(500), []string{"post-1"})}, 0},
		{"all, above", toAll, 501, true, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cdn := &allBackend{fakeBackend: fakeBackend{name: "cdn"}}
			d := newDispatcher(t, []backends.Backend{cdn}, dispatcher.WithEscalation("cdn", tt.esc))

			tk, err := d.Submit(t.Context(), backends.NewRequest(pages(tt.urls), []string{"post-1"}))
			require.NoError(t, err)
			out := wait(t, tk)

			require.Len(t, out, 1)
			assert.Equal(t, dispatcher.Delivered, out[0].Outcome)
			assert.Equal(t, tt.want, cdn.Delivered())
			assert.Equal(t, tt.alls, cdn.alls.Load())
			s, _ := d.Stats().Backend("cdn")
			if tt.escalated {
				assert.Equal(t, uint64(1), s.Escalated)
				assert.Equal(t, uint64(tt.urls), s.EscalatedURLs)
			} else {
				assert.Zero(t, s.Escalated)
				assert.Zero(t, s.EscalatedURLs)
			}
		})
	}
}

func TestEscalationAppliesOnlyToItsBackend(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	cdn, varnish := &fakeBackend{name: "cdn"}, &fakeBackend{name: "varnish"}
	d := newDispatcher(t, []backends.Backend{cdn, varnish},
		dispatcher.WithLogger(logger),
		dispatcher.WithEscalation("cdn", dispatcher.Escalation{Above: 100, Tags: []string{"pages"}}))

	r := backends.NewRequest(pages(600), nil)
	require.NoError(t, d.Enqueue(t.Context(), r))
	require.NoError(t, d.Flush(t.Context()))

	assert.Equal(t, backends.NewRequest(nil, []string{"pages"}), cdn.Union())
	assert.Equal(t, r, varnish.Union(), "the other backend still gets the URLs")
	stats := map[string]dispatcher.BackendStats{}
	for _, s := range d.Stats().Backends {
		stats[s.Backend] = s
	}
	assert.Equal(t, uint64(1), stats["cdn"].Escalated)
	assert.Equal(t, uint64(600), stats["cdn"].EscalatedURLs)
	assert.Equal(t, uint64(1), stats["cdn"].Enqueued, "the tag replaced the URLs")
	assert.Equal(t, uint64(1), stats["cdn"].Delivered)
	assert.Zero(t, stats["varnish"].Escalated)
	assert.Equal(t, uint64(600), stats["varnish"].Delivered)

	var escalated []map[string]any
	for line := range strings.Lines(buf.String()) {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m))
		if m["msg"] == "dispatcher: escalated" {
			escalated = append(escalated, m)
		}
	}
	require.Len(t, escalated, 1)
	assert.Equal(t, "WARN", escalated[0]["level"])
	assert.Equal(t, "cdn", escalated[0]["backend"])
	assert.EqualValues(t, 600, escalated[0]["urls"])
	assert.Equal(t, "tags [pages]", escalated[0]["to"])
}

// A purge of everything subsumes the requests merged with it in its linger
// window, before and after the escalated one: one call to PurgeAll, none to
// Purge, none to Pace, and every ticket settled by it.
func TestEscalationToAllSubsumesTheWindow(t *testing.T) {
	t.Parallel()
	var got collector
	cdn := &allBackend{fakeBackend: fakeBackend{name: "cdn"}}
	// Only Flush ends the window.
	d := newDispatcher(t, []backends.Backend{cdn},
		dispatcher.WithLinger(time.Hour),
		dispatcher.WithOnResult(got.add),
		dispatcher.WithEscalation("cdn", dispatcher.Escalation{Above: 500, All: true}))

	reqs := []backends.Request{
		backends.NewRequest([]string{"/p/0000", "/a"}, []string{"t"}), // /p/0000 is also in the escalated one
		backends.NewRequest(pages(600), nil),
		urls("/b"),
	}
	var tickets []*dispatcher.Ticket
	for _, r := range reqs {
		tk, err := d.Submit(t.Context(), r)
		require.NoError(t, err)
		tickets = append(tickets, tk)
	}
	require.NoError(t, d.Flush(t.Context()))

	assert.Empty(t, cdn.Attempts(), "no call to Purge")
	assert.EqualValues(t, 1, cdn.alls.Load(), "one call to PurgeAll")
	assert.Zero(t, cdn.paced.Load(), "PurgeAll paces itself")
	for i, tk := range tickets {
		out := wait(t, tk)
		assert.Equal(t, dispatcher.Delivered, out[0].Outcome, "request %d", i)
		assert.Equal(t, 1, out[0].Attempts, "request %d", i)
	}
	reports := got.all()
	require.Len(t, reports, 1)
	assert.True(t, reports[0].All)
	assert.Equal(t, dispatcher.Delivered, reports[0].Outcome)
	union := reqs[0].Merge(reqs[1]).Merge(reqs[2])
	assert.Equal(t, union, reports[0].Request, "the report lists what the purge of everything subsumed")
	s, _ := d.Stats().Backend("cdn")
	assert.Equal(t, uint64(3+600+1), s.Enqueued)
	assert.Equal(t, uint64(1), s.Coalesced, "/p/0000 twice")
	assert.Equal(t, uint64(union.Len()), s.Delivered)
	assert.Zero(t, s.Queued)
	assert.Zero(t, s.InFlight)
	assert.Equal(t, uint64(1), s.Escalated)
	assert.Equal(t, uint64(600), s.EscalatedURLs)

	// A later window without an escalated handoff is purged URL by URL.
	require.NoError(t, d.Enqueue(t.Context(), urls("/c")))
	require.NoError(t, d.Flush(t.Context()))
	assert.Equal(t, []backends.Request{urls("/c")}, cdn.Delivered())
	assert.EqualValues(t, 1, cdn.alls.Load())
	require.Len(t, got.all(), 2)
	assert.False(t, got.all()[1].All)
}

// A purge of everything is retried and settles the tickets of every request
// it subsumed like any batch.
func TestEscalationToAllOutcome(t *testing.T) {
	t.Parallel()
	refused := errors.New("403 Forbidden")
	tests := []struct {
		name     string
		fn       func(ctx context.Context, n int) (backends.Result, error)
		want     dispatcher.Outcome
		attempts int
		retried  uint64
	}{
		{"temporary errors, then delivered", func(_ context.Context, n int) (backends.Result, error) {
			if n < 2 {
				return backends.Result{}, errors.New("503 service unavailable")
			}
			return backends.Result{IDs: map[string]string{"purgeId": "p-1"}}, nil
		}, dispatcher.Delivered, 3, 2},
		{"permanent error", func(context.Context, int) (backends.Result, error) {
			// The objects a Partial names cannot be told apart from the
			// others in a purge of everything: all of them fail.
			return backends.Result{}, backends.Partial(urls("/a"), backends.Permanent(refused))
		}, dispatcher.Failed, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got collector
			cdn := &allBackend{fakeBackend: fakeBackend{name: "cdn"}, allFn: tt.fn}
			d := newDispatcher(t, []backends.Backend{cdn},
				dispatcher.WithLinger(time.Hour),
				dispatcher.WithOnResult(got.add),
				dispatcher.WithEscalation("cdn", dispatcher.Escalation{Above: 2, All: true}))

			plain, err := d.Submit(t.Context(), urls("/a"))
			require.NoError(t, err)
			escalated, err := d.Submit(t.Context(), urls("/b", "/c", "/d"))
			require.NoError(t, err)
			require.NoError(t, d.Flush(t.Context()))

			for _, tk := range []*dispatcher.Ticket{plain, escalated} {
				out := wait(t, tk)
				assert.Equal(t, tt.want, out[0].Outcome)
				assert.Equal(t, tt.attempts, out[0].Attempts)
				if tt.want == dispatcher.Failed {
					assert.ErrorIs(t, out[0].Err, refused)
				} else {
					assert.NoError(t, out[0].Err)
					assert.Equal(t, "p-1", out[0].Result.IDs["purgeId"])
				}
			}
			assert.Empty(t, cdn.Attempts())
			assert.EqualValues(t, tt.attempts, cdn.alls.Load())
			reports := got.all()
			require.Len(t, reports, 1)
			assert.True(t, reports[0].All)
			assert.Equal(t, tt.want, reports[0].Outcome)
			s, _ := d.Stats().Backend("cdn")
			assert.Equal(t, tt.retried, s.Retried)
			if tt.want == dispatcher.Failed {
				assert.Equal(t, uint64(4), s.Failed)
				assert.Zero(t, s.Delivered)
			} else {
				assert.Equal(t, uint64(4), s.Delivered)
				assert.Zero(t, s.Failed)
			}
		})
	}
}

// Above is compared with a handoff's distinct, non-empty URLs: a Request
// built by hand with repeated or empty URLs is not escalated for them.
func TestEscalationCountsDistinctURLs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		req       backends.Request
		escalated bool
		want      []backends.Request // calls to Purge
	}{
		{"repeated and empty URLs", backends.Request{URLs: []string{"/b", "/a", "", "/b", "/a", ""}},
			false, []backends.Request{urls("/a", "/b")}},
		{"more distinct URLs than Above", backends.Request{URLs: []string{"/c", "/a", "/b", "/a", ""}},
			true, []backends.Request{backends.NewRequest(nil, []string{"pages"})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf syncBuffer
			cdn := &fakeBackend{name: "cdn"}
			d := newDispatcher(t, []backends.Backend{cdn},
				dispatcher.WithLogger(slog.New(slog.NewJSONHandler(&buf, nil))),
				dispatcher.WithEscalation("cdn", dispatcher.Escalation{Above: 2, Tags: []string{"pages"}}))

			require.NoError(t, d.Enqueue(t.Context(), tt.req))
			require.NoError(t, d.Flush(t.Context()))

			assert.Equal(t, tt.want, cdn.Delivered())
			s, _ := d.Stats().Backend("cdn")
			if !tt.escalated {
				assert.Zero(t, s.Escalated)
				assert.NotContains(t, buf.String(), "dispatcher: escalated")
				return
			}
			assert.Equal(t, uint64(1), s.Escalated)
			assert.Equal(t, uint64(3), s.EscalatedURLs, "distinct URLs")
			assert.Contains(t, buf.String(), `"urls":3`)
		})
	}
}

// allPacerBackend is an allBackend whose purge of everything must wait its
// turn: PaceAll answers RetryAfter until busy calls have been made.
type allPacerBackend struct {
	allBackend
	busy      int32
	pacedAlls atomic.Int32
}

var _ backends.AllPacer = (*allPacerBackend)(nil)

func (a *allPacerBackend) PaceAll(context.Context) error {
	if a.pacedAlls.Add(1) <= a.busy {
		return backends.RetryAfter(5*time.Millisecond, errors.New("the wildcard budget is full"))
	}
	return nil
}

// A backend that paces its purges of everything makes the dispatcher wait
// before PurgeAll, as Pace does for a batch: the waits are not attempts, so
// a long wait for room cannot use up the batch's attempts.
func TestEscalationToAllWaitsForPaceAll(t *testing.T) {
	t.Parallel()
	var got collector
	cdn := &allPacerBackend{allBackend: allBackend{fakeBackend: fakeBackend{name: "cdn"}}, busy: 5}
	d := newDispatcher(t, []backends.Backend{cdn},
		dispatcher.WithMaxAttempts(1),
		dispatcher.WithOnResult(got.add),
		dispatcher.WithEscalation("cdn", dispatcher.Escalation{Above: 2, All: true}))
	tk, err := d.Submit(t.Context(), urls("/b", "/c", "/d"))
	require.NoError(t, err)
	require.NoError(t, d.Flush(t.Context()))
	out := wait(t, tk)
	assert.Equal(t, dispatcher.Delivered, out[0].Outcome)
	assert.Equal(t, 1, out[0].Attempts, "the waits for PaceAll are not attempts")
	assert.Equal(t, int32(1), cdn.alls.Load(), "PurgeAll ran once, after PaceAll allowed it")
	assert.Equal(t, int32(6), cdn.pacedAlls.Load())
	assert.Zero(t, cdn.paced.Load(), "a purge of everything is not paced as a batch")
}

// Above is compared with the URLs the handoff named: the "+" spelling the
// dispatcher adds for a URL whose query holds a space does not count, so a
// handoff of exactly Above URLs is never escalated for it.
func TestEscalationCountsTheHandoffsOwnURLs(t *testing.T) {
	t.Parallel()
	var got collector
	cdn := &allBackend{fakeBackend: fakeBackend{name: "cdn"}}
	d := newDispatcher(t, []backends.Backend{cdn},
		dispatcher.WithOnResult(got.add),
		dispatcher.WithEscalation("cdn", dispatcher.Escalation{Above: 2, All: true}))
	tk, err := d.Submit(t.Context(), urls("/a", "/search?q=blue%20teapot"))
	require.NoError(t, err)
	require.NoError(t, d.Flush(t.Context()))
	out := wait(t, tk)
	assert.Equal(t, dispatcher.Delivered, out[0].Outcome)
	assert.Zero(t, cdn.alls.Load(), "two URLs are not above 2, whatever their spellings")
	assert.Contains(t, cdn.Union().URLs, "/search?q=blue+teapot", "the form spelling is still purged")
}
