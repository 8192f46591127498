// Package outbox makes purges durable: a transactional outbox that the
// gormpurge plugin writes into inside the user's own transaction, and relays
// that deliver its rows through a dispatcher, so that no purge is lost even
// when the process dies between the commit and the delivery.
//
//	ob, err := outbox.New(db, outbox.WithTable("gormpurge_outbox")) // creates or migrates its table
//	p := gormpurge.New(ob)                                           // the plugin writes into the outbox
//	relay, err := ob.Relay(d)                                        // d: the dispatcher; starts workers
//	defer relay.Close(ctx)                                           // before d.Close
//
// # What the database decides
//
// The plugin writes a row holding the transaction's URLs and tags (several
// rows for a very large request, below), through the transaction's own
// connection just before the commit. A commit keeps the rows; a rollback, or
// a savepoint rolled back before the commit, drops them (the plugin leaves
// out what a rolled-back savepoint collected). Nothing reaches a backend
// before the commit. Statements run outside a transaction
// (SkipDefaultTransaction) write their rows right after they succeed (in
// one transaction of their own when there are several), with a short
// window in which a crash loses them.
//
// A row holds at most 1 MiB of URLs and tags (JSON); on MySQL and MariaDB
// at most a quarter of max_allowed_packet when that is smaller. A larger
// request (a bulk update of a few hundred thousand rows) is written as
// several rows, in the same transaction, so no statement comes near the
// server's packet limit and the user's transaction commits whatever the
// size of the purge. The rows are delivered, and their outcomes recorded,
// independently.
//
// # Relays
//
// A relay claims due rows with a lease (SELECT ... FOR UPDATE SKIP LOCKED on
// PostgreSQL, MySQL 8 and MariaDB 10.6+; one atomic UPDATE on SQLite), hands
// each row's request to the dispatcher with [dispatcher.Dispatcher.Submit],
// and records the outcome once every backend has settled it:
//
//   - every backend accepted it: the row is marked delivered (or deleted,
//     with [WithDeleteDelivered]) and pruned after [WithRetention];
//   - a backend failed for now: the row goes back with its attempts counted
//     and its next attempt set by [WithBackoff]; the backends that accepted it
//     are remembered and not sent it again;
//   - a backend refused it for good ([backends.Permanent]), or the attempts
//     ran out ([WithMaxAttempts]): the row is marked dead and reported as a
//     *[RowError]; it stays visible ([Outbox.Rows], [Outbox.Status]) until
//     [Outbox.Redrive] sends it again.
//
// Relays renew their leases while the dispatcher works. A relay that dies
// keeps its rows only until its lease runs out ([WithLease]); then another
// relay claims and delivers them. Delivery is therefore at least once: a
// crash after a backend accepted a row and before the row was marked sends
// it again. Purges are idempotent, so that is safe.
//
// Each row's outcome is recorded on its own account: if the database
// refuses one row's update, the others of the batch are still recorded (an
// error text the column cannot hold is stored in ASCII, or replaced by a
// placeholder, and the relay's log keeps the original). last_error is cut
// to 4,000 bytes on a character boundary and made valid UTF-8.
//
// # Latency
//
// A relay in the process that committed is woken by the commit. On
// PostgreSQL the write also sends NOTIFY (delivered at commit, never on
// rollback) and every relay LISTENs on one connection of the pool; elsewhere
// relays in other processes poll every [WithPollInterval].
//
// # The table
//
// One row per committed transaction (several for a very large one); times
// are Unix milliseconds; one index on (state, available_at, id) serves
// claims, pruning and listing. See the column list in the source of this
// package (schema.go) to query it by hand.
//
// # Observability
//
// Each row carries the W3C traceparent of the handoff that wrote it, in its
// trace column: [Outbox.EnqueueTx] and [Outbox.Enqueue] take it from the
// Origin in their context (observe.ContextWithOrigin, set by the plugin
// when it is given an observer), and write "" when there is none or it is
// not a well-formed version 00 traceparent. A relay submits each row with
// its Origin, when it was written and its traceparent, so that a
// dispatcher with an observer links its calls to the transaction that
// wrote the row, even in another process, and measures the latency from
// the write. [Row] shows it as TraceParent. A table checked with
// [WithoutMigrate] may lack the column: rows are then written without it.
//
// [WithObserver] makes each relay report, while it runs, the table's
// pending and dead rows, the age of the oldest pending one, and the rows
// it delivered, put back for a retry and killed.
//
// # Options
//
// Every option is a With… function (or a Without… switch). [New] checks
// them and returns an error naming each invalid one and how to fix it; an
// option given nil where it expects a logger or a function ([WithLogger],
// [WithErrorHandler]) is such an error, not a request for the default:
// leave the option out for the default, and pass
// slog.New(slog.DiscardHandler) to silence the logs.
package outbox
