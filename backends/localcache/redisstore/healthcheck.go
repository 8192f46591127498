package redisstore

import "time"

// checkAction is what a [healthCheck] says is due.
type checkAction int

const (
	checkNothing checkAction = iota // wait: see healthCheck.wait
	checkPing                       // send a ping, then call pinged
	checkFailed                     // the ping went unanswered: give the connection up
)

// healthCheck decides when a subscription pings Redis and when it gives
// a connection up: a ping is due once nothing has come from Redis for the
// interval since its last reply, and the connection has failed once
// nothing has come for twice the interval since the ping was sent (the
// pong comes after the messages Redis sent before it, which a busy
// instance may take a while to read). It takes the
// time from its caller, so that tests can drive it.
type healthCheck struct {
	interval time.Duration
	pingAt   time.Time // when a ping is due, unless one was sent
	deadline time.Time // when the ping sent fails, if not zero
}

// replied records a reply from Redis (any: a message, a confirmation or a
// pong) at now.
func (h *healthCheck) replied(now time.Time) {
	h.pingAt, h.deadline = now.Add(h.interval), time.Time{}
}

// pinged records that a ping was sent at now.
func (h *healthCheck) pinged(now time.Time) {
	h.deadline = now.Add(2 * h.interval)
}

// due returns what is due at now.
func (h *healthCheck) due(now time.Time) checkAction {
	switch {
	case !h.deadline.IsZero():
		if now.Before(h.deadline) {
			return checkNothing
		}
		return checkFailed
	case now.Before(h.pingAt):
		return checkNothing
	default:
		return checkPing
	}
}

// wait returns how long after now something may be due.
func (h *healthCheck) wait(now time.Time) time.Duration {
	if !h.deadline.IsZero() {
		return max(h.deadline.Sub(now), 0)
	}
	return max(h.pingAt.Sub(now), 0)
}
