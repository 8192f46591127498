package akamaitest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/akamai/akamaitest"
)

func TestScaledClock(t *testing.T) {
	c := akamaitest.NewScaledClock(100)
	realStart, start := time.Now(), c.Now()
	require.NoError(t, c.Sleep(t.Context(), 5*time.Second))
	elapsed := time.Since(realStart)
	assert.GreaterOrEqual(t, c.Now().Sub(start), 5*time.Second, "Sleep waits the whole duration on the clock")
	assert.GreaterOrEqual(t, elapsed, 50*time.Millisecond)
	assert.Less(t, elapsed, 2*time.Second)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	assert.ErrorIs(t, c.Sleep(ctx, time.Hour), context.Canceled)
	assert.ErrorIs(t, c.Sleep(ctx, 0), context.Canceled)
	assert.NoError(t, c.Sleep(t.Context(), -time.Second))

	ctx, cancel = context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, c.Sleep(ctx, time.Hour), context.DeadlineExceeded)
}
