package akamaitest

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/gormpurge/gormpurge/backends/akamai"
)

// ScaledClock is an [akamai.Clock] that runs factor times faster than real
// time: minutes of pacing at Akamai's published rate limits pass in seconds.
// Give the same ScaledClock to the fake ([WithClock]) and to the client under
// test so that both see the same time. It is safe for concurrent use.
type ScaledClock struct {
	start  time.Time
	factor float64
}

var _ akamai.Clock = (*ScaledClock)(nil)

// NewScaledClock returns a clock that starts at the current time and runs
// factor times as fast as real time. It panics unless factor is a positive
// finite number.
func NewScaledClock(factor float64) *ScaledClock {
	if !(factor > 0) || math.IsInf(factor, 0) {
		panic(fmt.Sprintf("akamaitest: NewScaledClock(%g): the factor must be a positive finite number", factor))
	}
	return &ScaledClock{start: time.Now(), factor: factor}
}

// Now returns the start time plus the real time elapsed since
// [NewScaledClock], multiplied by the factor.
func (c *ScaledClock) Now() time.Time {
	return c.start.Add(time.Duration(float64(time.Since(c.start)) * c.factor))
}

// Sleep waits until d has passed on this clock, that is d divided by the
// factor in real time, or until ctx is done, and then returns ctx.Err().
func (c *ScaledClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	deadline := c.Now().Add(d)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		left := deadline.Sub(c.Now())
		if left <= 0 {
			return nil
		}
		wait := time.Duration(math.Ceil(float64(left) / c.factor))
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
