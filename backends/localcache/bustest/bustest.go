// Package bustest is a conformance suite for [localcache.Bus]
// implementations: what [localcache.Follow] and [localcache.Backend] rely
// on, checked in one line from a bus's own tests against its real server.
//
//	func TestBusConformance(t *testing.T) {
//		bustest.Run(t, func(t *testing.T) *bustest.Harness {
//			channel := uniqueName()
//			proxy := tcpproxy.New(t, serverAddr) // the follower's connection, to cut
//			return &bustest.Harness{
//				Publisher: newBus(t, serverAddr, channel),
//				Follower:  newBus(t, proxy.Addr(), channel),
//				Cut:       proxy.Cut, Restore: proxy.Restore,
//			}
//		})
//	}
//
// [Run] checks that a subscription starts with EventUp; that purges and
// clears reach other instances whole, in order, numbered without gaps,
// and never their publisher; that a purge larger than one message is split
// and arrives whole; that Publish and Next honour their context and Close;
// and, with Cut and Restore, that a broken connection yields EventDown, then
// EventUp once it is back, and events again after that.
//
// [Hub] is an in-process bus that passes the suite, for tests of code that
// uses a Bus without a Redis or NATS server.
package bustest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
)

// Harness is two instances of an application on one bus, made fresh for
// each check by a [Factory]: they must share a channel no other harness
// uses. Close the buses in t.Cleanup.
type Harness struct {
	// Publisher and Follower are the two instances' buses.
	Publisher, Follower localcache.Bus
	// Cut breaks the Follower's connection to the bus's server, and makes
	// it unable to reconnect, until Restore; nil skips the checks that need
	// it. A tcpproxy between the Follower and the server does both.
	Cut, Restore func()
	// CutPublisher breaks the Publisher's connection the same way, for
	// good; nil skips the check that Publish then fails.
	CutPublisher func()
}

// Factory returns a new Harness for one check.
type Factory func(t *testing.T) *Harness

// wait bounds how long a check waits for an event that must come.
const wait = 15 * time.Second

// Run runs the conformance checks, each as a subtest with a harness of its
// own.
func Run(t *testing.T, newHarness Factory) {
	t.Helper()
	checks := []struct {
		name  string
		fault bool
		fn    func(t *testing.T, h *Harness)
	}{
		{"FirstEventIsUp", false, checkUp},
		{"PurgeAndClearReachOthersNotSelf", false, checkDelivery},
		{"ConcurrentPublishesArriveNumberedWithoutGaps", false, checkOrder},
		{"LargePurgeIsSplitAndArrivesWhole", false, checkLarge},
		{"PublishHonoursItsContext", false, checkPublishCtx},
		{"NextHonoursItsContextAndClose", false, checkNextCtx},
		{"OnlyPurgeAndClearArePublished", false, checkKinds},
		{"BrokenConnectionIsDownThenUp", true, checkCut},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			if c.fault && (h.Cut == nil || h.Restore == nil) {
				t.Skip("the harness cannot cut the follower's connection")
			}
			c.fn(t, h)
		})
	}
	t.Run("PublishFailsWhenTheServerCannotBeReached", func(t *testing.T) {
		h := newHarness(t)
		if h.CutPublisher == nil {
			t.Skip("the harness cannot cut the publisher's connection")
		}
		checkPublishCut(t, h)
	})
}

// subscribe subscribes b and waits for its EventUp.
func subscribe(t *testing.T, b localcache.Bus) localcache.Subscription {
	t.Helper()
	sub, err := b.Subscribe(t.Context())
	require.NoError(t, err, "Subscribe")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sub.Close(ctx)
	})
	e := next(t, sub)
	require.Equal(t, localcache.EventUp, e.Kind, "a subscription's first event is EventUp")
	return sub
}

// next returns sub's next event, failing the test after wait.
func next(t *testing.T, sub localcache.Subscription) localcache.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	e, err := sub.Next(ctx)
	require.NoError(t, err, "Next")
	return e
}

// nextMessage returns sub's next EventPurge or EventClear, failing on any
// other event.
func nextMessage(t *testing.T, sub localcache.Subscription) localcache.Event {
	t.Helper()
	e := next(t, sub)
	require.Contains(t, []localcache.EventKind{localcache.EventPurge, localcache.EventClear}, e.Kind,
		"an unexpected %s event (reason %q)", e.Kind, e.Reason)
	return e
}

func publish(t *testing.T, b localcache.Bus, e localcache.Event) {
	t.Helper()
	require.NoError(t, b.Publish(t.Context(), e), "Publish %s", e.Kind)
}

func checkUp(t *testing.T, h *Harness) {
	subscribe(t, h.Follower)
}

func checkDelivery(t *testing.T, h *Harness) {
	fsub := subscribe(t, h.Follower)
	psub := subscribe(t, h.Publisher)

	publish(t, h.Publisher, localcache.Event{Kind: localcache.EventPurge, Indexes: []string{"p:/a", "t:post:1", "t:café ✓"}})
	publish(t, h.Publisher, localcache.Event{Kind: localcache.EventClear})
	e := nextMessage(t, fsub)
	assert.Equal(t, localcache.EventPurge, e.Kind)
	assert.Equal(t, []string{"p:/a", "t:post:1", "t:café ✓"}, e.Indexes)
	assert.NotEmpty(t, e.Origin)
	first := e.Seq
	e = nextMessage(t, fsub)
	assert.Equal(t, localcache.EventClear, e.Kind)
	assert.Empty(t, e.Indexes)
	assert.Equal(t, first+1, e.Seq)

	// The publisher's own subscription skips its messages: the first it
	// gets is the follower's.
	publish(t, h.Follower, localcache.Event{Kind: localcache.EventPurge, Indexes: []string{"t:from-follower"}})
	e = nextMessage(t, psub)
	assert.Equal(t, []string{"t:from-follower"}, e.Indexes, "a bus delivered an instance's own message to it")
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	e, err := fsub.Next(ctx) // nor to the follower
	assert.Error(t, err, "the follower received its own message: %+v", e)
}

func checkOrder(t *testing.T, h *Harness) {
	sub := subscribe(t, h.Follower)
	const goroutines, each = 8, 25
	// The publishers stop when the check ends, pass or fail, and the check
	// waits for them, so that none reports into a finished test.
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	defer func() {
		cancel()
		wg.Wait()
	}()
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				err := h.Publisher.Publish(ctx, localcache.Event{Kind: localcache.EventPurge, Indexes: []string{fmt.Sprintf("t:%d-%d", g, i)}})
				if err != nil {
					errs <- fmt.Errorf("publisher %d, message %d: %w", g, i, err)
					return
				}
			}
		}()
	}
	seen := make(map[string]bool)
	var last uint64
	for range goroutines * each {
		select {
		case err := <-errs:
			require.NoError(t, err, "Publish")
		default:
		}
		e := nextMessage(t, sub)
		if last != 0 {
			require.Equal(t, last+1, e.Seq, "messages arrive numbered without gaps, in order")
		}
		last = e.Seq
		for _, ix := range e.Indexes {
			seen[ix] = true
		}
	}
	assert.Len(t, seen, goroutines*each)
}

func checkLarge(t *testing.T, h *Harness) {
	sub := subscribe(t, h.Follower)
	// 4 MiB of indexes: larger than NATS's default 1 MiB message.
	want := make([]string, 50_000)
	for i := range want {
		want[i] = fmt.Sprintf("p:https://example.com/articles/%08d/with-a-long-slug", i)
	}
	publish(t, h.Publisher, localcache.Event{Kind: localcache.EventPurge, Indexes: want})
	publish(t, h.Publisher, localcache.Event{Kind: localcache.EventClear}) // marks the end
	var got []string
	var last uint64
	messages := 0
	for {
		e := nextMessage(t, sub)
		if last != 0 {
			require.Equal(t, last+1, e.Seq)
		}
		last = e.Seq
		if e.Kind == localcache.EventClear {
			break
		}
		messages++
		got = append(got, e.Indexes...)
	}
	assert.Greater(t, messages, 1, "a 4 MiB purge should be split")
	assert.True(t, slices.Equal(want, got), "the split purge arrives whole, in order (%d of %d indexes)", len(got), len(want))
}

func checkPublishCtx(t *testing.T, h *Harness) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := h.Publisher.Publish(ctx, localcache.Event{Kind: localcache.EventPurge, Indexes: []string{"t:x"}})
	assert.Error(t, err, "Publish with a cancelled context must fail, not report the event accepted")
}

func checkNextCtx(t *testing.T, h *Harness) {
	sub := subscribe(t, h.Follower)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := sub.Next(ctx)
		done <- err
	}()
	select {
	case err := <-done:
		assert.Error(t, err, "Next returned no error when its context ended")
	case <-time.After(wait):
		require.Fail(t, "Next did not return when its context ended")
	}

	go func() {
		_, err := sub.Next(t.Context())
		done <- err
	}()
	ctx, cancel = context.WithTimeout(t.Context(), wait)
	defer cancel()
	require.NoError(t, sub.Close(ctx))
	select {
	case err := <-done:
		assert.Error(t, err, "Next returned no error after Close")
	case <-time.After(wait):
		require.Fail(t, "Next did not return after Close")
	}
}

func checkKinds(t *testing.T, h *Harness) {
	for _, k := range []localcache.EventKind{localcache.EventUp, localcache.EventDown, 0, 99} {
		assert.Error(t, h.Publisher.Publish(t.Context(), localcache.Event{Kind: k}), "Publish of a %s event", k)
	}
}

func checkCut(t *testing.T, h *Harness) {
	sub := subscribe(t, h.Follower)
	h.Cut()
	e := next(t, sub)
	require.Equal(t, localcache.EventDown, e.Kind, "a broken connection must yield EventDown")
	assert.NotEmpty(t, e.Reason, "EventDown says why")
	// Lost while the follower is cut off.
	publish(t, h.Publisher, localcache.Event{Kind: localcache.EventPurge, Indexes: []string{"t:lost"}})
	h.Restore()
	for {
		e = next(t, sub)
		if e.Kind == localcache.EventUp {
			break
		}
		require.Equal(t, localcache.EventDown, e.Kind, "only EventDown may come before EventUp after a cut (got %s)", e.Kind)
	}
	publish(t, h.Publisher, localcache.Event{Kind: localcache.EventPurge, Indexes: []string{"t:after"}})
	e = nextMessage(t, sub)
	if slices.Equal(e.Indexes, []string{"t:lost"}) {
		e = nextMessage(t, sub) // a bus may deliver it late; never instead of EventDown
	}
	assert.Equal(t, []string{"t:after"}, e.Indexes, "events published after EventUp arrive")
}

func checkPublishCut(t *testing.T, h *Harness) {
	publish(t, h.Publisher, localcache.Event{Kind: localcache.EventPurge, Indexes: []string{"t:before"}})
	h.CutPublisher()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	err := h.Publisher.Publish(ctx, localcache.Event{Kind: localcache.EventPurge, Indexes: []string{"t:cut"}})
	assert.Error(t, err, "Publish must not report an event accepted when the server cannot be reached")
	assert.NoError(t, ctx.Err(), "Publish must fail before its context's deadline, not hang until it")
}
