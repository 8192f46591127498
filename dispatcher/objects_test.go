package dispatcher_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// objectsOf returns what tk's Objects say, without the errors, which the
// tests check apart.
func objectsOf(t *testing.T, tk *dispatcher.Ticket) []dispatcher.ObjectOutcome {
	t.Helper()
	wait(t, tk)
	out := tk.Objects()
	for i := range out {
		out[i].Err = nil
	}
	return out
}

func delivered(backend, obj string, tag bool) dispatcher.ObjectOutcome {
	return dispatcher.ObjectOutcome{Backend: backend, Object: obj, Tag: tag, Outcome: dispatcher.Delivered}
}

func TestObjectsOfAPartialFailure(t *testing.T) {
	t.Parallel()
	refused := errors.New("403: /b is not ours")
	ok := &fakeBackend{name: "ok"}
	picky := &fakeBackend{name: "picky", fn: func(context.Context, backends.Request, int) (backends.Result, error) {
		return backends.Result{}, backends.Partial(urls("/b"), backends.Permanent(refused))
	}}
	d := newDispatcher(t, []backends.Backend{ok, picky})

	tk, err := d.Submit(t.Context(), backends.NewRequest([]string{"/b", "/a"}, []string{"post-1"}))
	require.NoError(t, err)
	assert.Equal(t, []dispatcher.ObjectOutcome{
		delivered("ok", "/a", false), delivered("ok", "/b", false), delivered("ok", "post-1", true),
		delivered("picky", "/a", false),
		{Backend: "picky", Object: "/b", Outcome: dispatcher.Failed},
		delivered("picky", "post-1", true),
	}, objectsOf(t, tk), "per backend in New's order, URLs then tags, sorted")

	objs := tk.Objects()
	assert.ErrorIs(t, objs[4].Err, refused, "the batch's error")
	failed, ok2 := backends.FailedObjects(objs[4].Err)
	require.True(t, ok2)
	assert.Equal(t, urls("/b"), failed, "which names the objects that failed")
	for i, o := range objs {
		if i != 4 {
			assert.NoError(t, o.Err, "%s %s", o.Backend, o.Object)
		}
	}
	assert.Equal(t, dispatcher.Failed, tk.Outcomes()[1].Outcome, "Outcomes sum the objects up")
}

func TestObjectsAcrossBatchesAndRequests(t *testing.T) {
	t.Parallel()
	refused := errors.New("refused")
	// MaxBytes cuts [/a /b] [/c /d] without ending the window; the batch
	// holding /c fails for good without naming objects.
	a := &fakeBackend{name: "a", limits: backends.Limits{MaxBytes: 10}, fn: func(_ context.Context, r backends.Request, _ int) (backends.Result, error) {
		if slices.Contains(r.URLs, "/c") {
			return backends.Result{}, backends.Permanent(refused)
		}
		return backends.Result{}, nil
	}}
	d := newDispatcher(t, []backends.Backend{a}, dispatcher.WithLinger(time.Hour))

	first, err := d.Submit(t.Context(), urls("/a", "/c"))
	require.NoError(t, err)
	second, err := d.Submit(t.Context(), urls("/b", "/d"))
	require.NoError(t, err)
	require.NoError(t, d.Flush(t.Context()))

	failed := dispatcher.ObjectOutcome{Backend: "a", Outcome: dispatcher.Failed}
	fc, fd := failed, failed
	fc.Object, fd.Object = "/c", "/d"
	assert.Equal(t, []dispatcher.ObjectOutcome{delivered("a", "/a", false), fc}, objectsOf(t, first))
	assert.Equal(t, []dispatcher.ObjectOutcome{delivered("a", "/b", false), fd}, objectsOf(t, second),
		"/d shared the failed batch with the first request's /c")
	assert.ErrorIs(t, second.Objects()[1].Err, refused)
}

func TestObjectsAfterRetries(t *testing.T) {
	t.Parallel()
	flaky := &fakeBackend{name: "flaky", fn: func(_ context.Context, _ backends.Request, n int) (backends.Result, error) {
		if n < 2 {
			return backends.Result{}, errors.New("503 service unavailable")
		}
		return backends.Result{}, nil
	}}
	down := &fakeBackend{name: "down", fn: func(context.Context, backends.Request, int) (backends.Result, error) {
		return backends.Result{}, errors.New("503 service unavailable")
	}}
	d := newDispatcher(t, []backends.Backend{flaky, down}, dispatcher.WithMaxAttempts(3))

	tk, err := d.Submit(t.Context(), urls("/a"))
	require.NoError(t, err)
	assert.Equal(t, []dispatcher.ObjectOutcome{
		delivered("flaky", "/a", false),
		{Backend: "down", Object: "/a", Outcome: dispatcher.Failed},
	}, objectsOf(t, tk), "delivered on the third attempt; failed after three")
	assert.ErrorContains(t, tk.Objects()[1].Err, "gave up after 3 attempts")
}

func TestObjectsDropped(t *testing.T) {
	t.Parallel()
	d, g, _ := stuckLane(t, dispatcher.Reject)

	tk, err := d.Submit(t.Context(), backends.NewRequest([]string{"/3"}, []string{"post-3"}))
	require.ErrorIs(t, err, dispatcher.ErrQueueFull)
	objs := tk.Objects()
	require.Len(t, objs, 2, "settled when Submit returns")
	for _, o := range objs {
		assert.Equal(t, dispatcher.Dropped, o.Outcome, o.Object)
		assert.ErrorIs(t, o.Err, dispatcher.ErrQueueFull, o.Object)
	}
	g.Open()

	// Close drops what it cannot deliver in time.
	gc := newGate()
	t.Cleanup(gc.Open)
	stuck := &fakeBackend{name: "stuck", fn: gc.fn}
	d2 := mustNew(t, []backends.Backend{stuck}, dispatcher.WithLogger(quiet), dispatcher.WithLinger(0))
	tk2, err := d2.Submit(t.Context(), urls("/x"))
	require.NoError(t, err)
	<-gc.entered
	require.Error(t, d2.Close(ctxTimeout(t, 10*time.Millisecond)))
	objs = tk2.Objects()
	require.Len(t, objs, 1)
	assert.Equal(t, dispatcher.Dropped, objs[0].Outcome)
	assert.ErrorIs(t, objs[0].Err, dispatcher.ErrClosed)
}

// A URL purged in its form spelling too is listed once, as the worse of
// its two purges.
func TestObjectsFoldFormSpellings(t *testing.T) {
	t.Parallel()
	refused := errors.New("refused")
	plus := "/search?q=a+b"
	a := &fakeBackend{name: "a", fn: func(context.Context, backends.Request, int) (backends.Result, error) {
		return backends.Result{}, backends.Partial(urls(plus), backends.Permanent(refused))
	}}
	d := newDispatcher(t, []backends.Backend{a})

	tk, err := d.Submit(t.Context(), urls("/search?q=a b", "/x"))
	require.NoError(t, err)
	assert.Equal(t, []dispatcher.ObjectOutcome{
		{Backend: "a", Object: "/search?q=a%20b", Outcome: dispatcher.Failed},
		delivered("a", "/x", false),
	}, objectsOf(t, tk), "in canonical form, without the form spelling")
	assert.ErrorIs(t, tk.Objects()[0].Err, refused)
}

// A backend that escalated the request to tags settles its URLs as those
// tags; the other backends settle them one by one.
func TestObjectsOfAnEscalatedRequest(t *testing.T) {
	t.Parallel()
	refused := errors.New("refused")
	cdn := &fakeBackend{name: "cdn", fn: func(context.Context, backends.Request, int) (backends.Result, error) {
		return backends.Result{}, backends.Partial(backends.NewRequest(nil, []string{"site"}), backends.Permanent(refused))
	}}
	local := &fakeBackend{name: "local"}
	d := newDispatcher(t, []backends.Backend{cdn, local},
		dispatcher.WithEscalation("cdn", dispatcher.Escalation{Above: 1, Tags: []string{"site"}}))

	tk, err := d.Submit(t.Context(), backends.NewRequest([]string{"/a", "/b"}, []string{"post-1"}))
	require.NoError(t, err)
	failed := func(obj string) dispatcher.ObjectOutcome {
		return dispatcher.ObjectOutcome{Backend: "cdn", Object: obj, Outcome: dispatcher.Failed}
	}
	assert.Equal(t, []dispatcher.ObjectOutcome{
		failed("/a"), failed("/b"), delivered("cdn", "post-1", true),
		delivered("local", "/a", false), delivered("local", "/b", false), delivered("local", "post-1", true),
	}, objectsOf(t, tk))
	assert.ErrorIs(t, tk.Objects()[0].Err, refused)
}

func TestObjectsBeforeDoneAndForAnEmptyRequest(t *testing.T) {
	t.Parallel()
	g := newGate()
	t.Cleanup(g.Open)
	d := newDispatcher(t, []backends.Backend{&fakeBackend{name: "a", fn: g.fn}})

	tk, err := d.Submit(t.Context(), urls("/a"))
	require.NoError(t, err)
	<-g.entered
	assert.Nil(t, tk.Objects(), "not done yet")
	g.Open()
	assert.Equal(t, []dispatcher.ObjectOutcome{delivered("a", "/a", false)}, objectsOf(t, tk))

	empty, err := d.Submit(t.Context(), backends.Request{})
	require.NoError(t, err)
	assert.Empty(t, empty.Objects())
}

// One attempt is "1 attempt" in the error that gives up.
func TestGaveUpAfterOneAttempt(t *testing.T) {
	a := &fakeBackend{name: "a", fn: func(context.Context, backends.Request, int) (backends.Result, error) {
		return backends.Result{}, errors.New("down")
	}}
	d := newDispatcher(t, []backends.Backend{a}, dispatcher.WithMaxAttempts(1))
	tk, err := d.Submit(t.Context(), backends.NewRequest([]string{"/a"}, nil))
	require.NoError(t, err)
	_, err = tk.Wait(t.Context())
	require.NoError(t, err)
	objs := tk.Objects()
	require.Len(t, objs, 1)
	assert.ErrorContains(t, objs[0].Err, "gave up after 1 attempt: ")
}
