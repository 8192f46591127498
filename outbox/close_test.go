package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/outbox"
)

// waitIdle waits until r has run claims claims and has no claim in
// progress and no batch in flight. With an hour's poll interval and
// nothing to wake it, it then stays idle until Close.
func waitIdle(t *testing.T, r *outbox.Relay, claims uint64) {
	t.Helper()
	require.Eventually(t, func() bool { return outbox.RelayIdle(r, claims) }, 10*time.Second, time.Millisecond,
		"the relay is still claiming or delivering")
}

// The first Close with an ended ctx returns nil when the relay holds
// nothing and claims nothing: drain used to wait for the claim loop to
// return, and an ended ctx won over it.
func TestFirstCloseWithAnEndedContextOnAnIdleRelay(t *testing.T) {
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	t.Run("never used", func(t *testing.T) {
		s := newSite(t, "sqlite", outbox.WithPollInterval(time.Hour))
		d := newDispatcher(t, newBackend("a"))
		defer func() { assert.NoError(t, d.Close(t.Context())) }()
		r := mustRelay(t, s.ob, d)
		waitIdle(t, r, 1) // the claim at start found nothing
		require.NoError(t, r.Close(ended), "nothing in flight: an ended ctx is no error")
		require.NoError(t, r.Close(ended), "twice")
	})
	t.Run("rows delivered", func(t *testing.T) {
		s := newSite(t, "sqlite", outbox.WithPollInterval(time.Hour))
		b := newBackend("a")
		d := newDispatcher(t, b)
		defer func() { assert.NoError(t, d.Close(t.Context())) }()
		// Enqueued before the relay starts, so that nothing wakes it: the
		// claim at start takes the row, the batch's end wakes it for one
		// more claim, which finds nothing.
		require.NoError(t, s.ob.Enqueue(t.Context(), backends.NewRequest([]string{"/pages/a"}, nil)))
		r := mustRelay(t, s.ob, d)
		settle(t, s.ob)
		waitIdle(t, r, 2)
		require.NoError(t, r.Close(ended), "nothing in flight: an ended ctx is no error")
		assert.Equal(t, map[string]int{"/pages/a": 1}, b.purged())
		assert.Zero(t, r.Stats().Held)
	})
}
