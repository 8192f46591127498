package redisstore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestHealthCheckTiming drives a healthCheck with a fake clock: a ping is
// due one interval after Redis's last reply, whatever the subscription
// looked at meanwhile, and the connection fails only when the ping has
// gone unanswered for two intervals since it was sent.
func TestHealthCheckTiming(t *testing.T) {
	const hc = 200 * time.Millisecond
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	type step struct {
		at       time.Duration
		replied  bool // record a reply at at
		pinged   bool // record a ping sent at at
		want     checkAction
		wantWait time.Duration // checked unless zero
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"quiet: a ping after one interval, a failure two intervals after the ping", []step{
			{at: 0, replied: true, want: checkNothing, wantWait: hc},
			{at: hc / 2, want: checkNothing, wantWait: hc / 2},
			{at: hc, want: checkPing},
			{at: hc, pinged: true, want: checkNothing, wantWait: 2 * hc},
			{at: 3*hc - time.Millisecond, want: checkNothing, wantWait: time.Millisecond},
			{at: 3 * hc, want: checkFailed},
		}},
		{"a look just before half an interval does not put the ping off", []step{
			{at: 0, replied: true},
			{at: hc/2 - time.Millisecond, want: checkNothing, wantWait: hc/2 + time.Millisecond},
			{at: hc, want: checkPing},
		}},
		{"the pong has two intervals from when the ping was sent, however late", []step{
			{at: 0, replied: true},
			{at: 3 * hc, want: checkPing}, // the goroutine was busy
			{at: 3*hc + hc/10, pinged: true, want: checkNothing, wantWait: 2 * hc},
			{at: 5 * hc, want: checkNothing, wantWait: hc / 10},
			{at: 5*hc + hc/10, want: checkFailed},
		}},
		{"a reply after the ping (a message or the pong) restarts the interval", []step{
			{at: 0, replied: true},
			{at: hc, pinged: true},
			{at: hc + hc/2, replied: true, want: checkNothing, wantWait: hc},
			{at: 2 * hc, want: checkNothing, wantWait: hc / 2},
			{at: 2*hc + hc/2, want: checkPing},
		}},
		{"replies in a burst keep putting the ping off", []step{
			{at: 0, replied: true},
			{at: 3 * hc / 4, replied: true},
			{at: 6 * hc / 4, replied: true},
			{at: 9 * hc / 4, replied: true, want: checkNothing, wantWait: hc},
			{at: 13 * hc / 4, want: checkPing},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := healthCheck{interval: hc}
			for i, s := range tc.steps {
				now := at(s.at)
				switch {
				case s.replied:
					h.replied(now)
				case s.pinged:
					h.pinged(now)
				}
				assert.Equal(t, s.want, h.due(now), "step %d, at %v: action", i, s.at)
				if s.wantWait != 0 {
					assert.Equal(t, s.wantWait, h.wait(now), "step %d, at %v: wait", i, s.at)
				}
			}
		})
	}
}
