package bustest_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache/bustest"
)

// TestHubConformance runs the suite on the in-process Hub, which also
// shows that the suite's fault checks can pass.
func TestHubConformance(t *testing.T) {
	bustest.Run(t, func(t *testing.T) *bustest.Harness {
		hub := bustest.NewHub()
		pub, err := hub.Instance()
		require.NoError(t, err)
		fol, err := hub.Instance()
		require.NoError(t, err)
		return &bustest.Harness{Publisher: pub, Follower: fol, Cut: fol.Cut, Restore: fol.Restore, CutPublisher: pub.Cut}
	})
}
