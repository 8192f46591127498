package outbox

// RelayIdle reports whether r has run at least claims claims, has none in
// progress and no batch in flight, for tests that must wait until a relay
// is idle.
func RelayIdle(r *Relay, claims uint64) bool {
	return r.claims.Load() >= claims && r.busy.Len() == 0
}
