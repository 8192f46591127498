package outbox

import "fmt"

// queries are the statements the outbox runs, built once for its table.
// Those that take a list of ids are built per call by the Outbox's
// ...Query methods below, for the list's length.
type queries struct {
	insert      string // created_at, available_at, urls, tags [, trace] [, channel]
	claimUpdate string // owner, lease end, now, limit: UPDATE ... RETURNING (PostgreSQL, SQLite)
	claimSelect string // now, limit: SELECT ... FOR UPDATE [SKIP LOCKED]
	renew       string // lease end, owner
	release     string // now, owner
	record      string // state, available_at, attempts, done_backends, last_error, id, owner
	// trace is set when the table has the trace column: insert takes
	// the row's traceparent and the claim returns it. Otherwise the
	// claim returns '' in its place.
	trace bool
	// traceExpr is what the claim and the listing select for the trace:
	// the column, or ''.
	traceExpr string
}

// buildQueries builds the statements of table on dialect d; hasTrace
// says whether the table has the trace column.
func buildQueries(d dialect, table string, hasTrace bool) queries {
	t := d.quote(table)
	q := queries{trace: hasTrace, traceExpr: "''"}
	next := 5
	if hasTrace {
		q.traceExpr = traceColumn
		q.insert = fmt.Sprintf("INSERT INTO %s (created_at, state, available_at, attempts, urls, tags, done_backends, last_error, %s) VALUES (%s, 'pending', %s, 0, %s, %s, '[]', '', %s)",
			t, traceColumn, d.ph(1), d.ph(2), d.ph(3), d.ph(4), d.ph(5))
		next = 6
	} else {
		q.insert = fmt.Sprintf("INSERT INTO %s (created_at, state, available_at, attempts, urls, tags, done_backends, last_error) VALUES (%s, 'pending', %s, 0, %s, %s, '[]', '')",
			t, d.ph(1), d.ph(2), d.ph(3), d.ph(4))
	}
	if d.name == "postgres" {
		// NOTIFY inside the transaction is delivered at its commit, and
		// not at all on rollback: exactly when the row becomes visible.
		q.insert = fmt.Sprintf("WITH ins AS (%s RETURNING 1) SELECT pg_notify(%s, '') FROM ins", q.insert, d.ph(next))
	}
	claimed := "id, attempts, urls, tags, done_backends, created_at, " + q.traceExpr
	due := fmt.Sprintf("SELECT id FROM %s WHERE state = 'pending' AND available_at <= %s ORDER BY available_at, id LIMIT %s", t, d.ph(3), d.ph(4))
	switch d.name {
	case "postgres":
		q.claimUpdate = fmt.Sprintf("UPDATE %s SET lease_owner = $1, available_at = $2 WHERE id IN (%s FOR UPDATE SKIP LOCKED) RETURNING %s", t, due, claimed)
	case "sqlite":
		// One statement is atomic under SQLite's single writer lock: a
		// second relay re-evaluates the WHERE after the first one's update.
		q.claimUpdate = fmt.Sprintf("UPDATE %s SET lease_owner = ?, available_at = ? WHERE id IN (%s) RETURNING %s", t, due, claimed)
	case "mysql":
		lock := " FOR UPDATE"
		if d.skipLocked {
			lock += " SKIP LOCKED"
		}
		q.claimSelect = fmt.Sprintf("SELECT %s FROM %s WHERE state = 'pending' AND available_at <= ? ORDER BY available_at, id LIMIT ?%s", claimed, t, lock)
	}
	q.renew = fmt.Sprintf("UPDATE %s SET available_at = %s WHERE lease_owner = %s AND state = 'pending'", t, d.ph(1), d.ph(2))
	q.release = fmt.Sprintf("UPDATE %s SET lease_owner = NULL, available_at = %s WHERE lease_owner = %s AND state = 'pending'", t, d.ph(1), d.ph(2))
	q.record = fmt.Sprintf("UPDATE %s SET state = %s, available_at = %s, attempts = %s, done_backends = %s, last_error = %s, lease_owner = NULL WHERE id = %s AND lease_owner = %s",
		t, d.ph(1), d.ph(2), d.ph(3), d.ph(4), d.ph(5), d.ph(6), d.ph(7))
	return q
}

// leaseQuery leases n rows by id, for the claim on MySQL and MariaDB, which
// have no UPDATE ... RETURNING: owner, lease end, then the ids.
func (o *Outbox) leaseQuery(n int) string {
	return fmt.Sprintf("UPDATE %s SET lease_owner = ?, available_at = ? WHERE id IN (%s)", o.d.quote(o.table), o.d.phs(3, n))
}

// renewQuery extends the leases of n rows by id: lease end, owner, then the
// ids.
func (o *Outbox) renewQuery(n int) string {
	return o.q.renew + fmt.Sprintf(" AND id IN (%s)", o.d.phs(3, n))
}

// deliveredQuery marks n rows by id delivered, or deletes them with
// WithDeleteDelivered: (now, unless deleting), owner, then the ids.
func (o *Outbox) deliveredQuery(n int) string {
	t := o.d.quote(o.table)
	if o.cfg.deleteOnDone {
		return fmt.Sprintf("DELETE FROM %s WHERE lease_owner = %s AND id IN (%s)", t, o.d.ph(1), o.d.phs(2, n))
	}
	return fmt.Sprintf("UPDATE %s SET state = 'delivered', available_at = %s, attempts = attempts + 1, lease_owner = NULL, last_error = '' WHERE lease_owner = %s AND id IN (%s)",
		t, o.d.ph(1), o.d.ph(2), o.d.phs(3, n))
}

// idChunk bounds the ids in one IN list, far below every database's limit
// on placeholders (999 in old SQLite builds), whatever the batch size.
const idChunk = 500

// idArgs returns the arguments first followed by ids.
func idArgs(ids []int64, first ...any) []any {
	args := make([]any, 0, len(first)+len(ids))
	args = append(args, first...)
	for _, id := range ids {
		args = append(args, id)
	}
	return args
}
