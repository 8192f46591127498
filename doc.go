// Package gormpurge purges cached pages when the rows they show change.
//
// A web application on GORM renders pages from rows, and those pages sit in
// caches: a CDN, HTTP caches that accept PURGE (Varnish, nginx, Squid), and
// the application's own response cache. gormpurge is a GORM plugin that
// collects, from every write to a registered model, the pages that show the
// row and the cache tags they carry, and hands them to a [Sink] (usually the
// asynchronous dispatcher in package dispatcher) once the write is committed.
//
//	p := gormpurge.New(d)
//	if err := p.Register(&Post{}, &Tag{}); err != nil { ... }
//	if err := db.Use(p); err != nil { ... }
//
// [WithBaseURL] turns the site-relative paths models return into absolute
// URLs, for a CDN; the local page cache purges paths on every host, so leave
// it out there. With a base URL, absolute URLs must be on its host, or on one
// [WithAllowedHosts] names. The runnable example in examples/blog wires the
// plugin, the dispatcher and the local cache together.
//
// To purge without a model callback, see [Plugin.Purge]; for bulk jobs,
// [Plugin.Suspend].
//
// Every option is a With… function. [New] checks them and db.Use returns
// an error naming each invalid one and how to fix it; an option given nil
// ([WithLogger], [WithErrorHandler]) is such an error, not a request for
// the default: leave the option out for the default, and pass
// slog.New(slog.DiscardHandler) to silence the logs.
//
// # What a model says
//
// A model names its pages by implementing any of [AbsoluteURLer] (its own
// page), [PurgeURLer] (more pages that show it), [DependentPather] (pages of
// related rows) and [PurgeTagger] (cache tags). A type that cannot be given
// methods is registered with a function through [TargetsOf].
//
// Every URL is handed off in its canonical form (backends.CanonicalURL:
// lower-case host in punycode, path and query percent-encoded one way, an
// encoded slash kept encoded), and every tag is checked by
// backends.CanonicalTag, so that each backend receives one spelling of a
// page. A value beginning with "//" is always refused, so that a
// user-chosen slug behind "/" + slug cannot name another host.
//
// # Guarantees
//
//   - After the commit, never before: targets are handed off once the
//     outermost transaction has committed, so a reader cannot re-cache the
//     old row. GORM's implicit per-statement transaction, db.Begin/Commit
//     and db.Transaction are all followed. Statements run outside any
//     transaction (SkipDefaultTransaction) hand off right after they succeed.
//   - Never for rolled-back work: Rollback, a Transaction function that
//     returns an error or panics, and a savepoint rolled back (nested
//     Transaction, RollbackTo) drop what they collected. A failed statement
//     collects nothing.
//   - Once per transaction: one Request per committed transaction, holding
//     the deduplicated, sorted union of its URLs and tags. Commit twice
//     hands off once.
//   - Old and new: updates and deletes read the affected rows in the same
//     transaction, before and after the write, so a changed slug purges both
//     the old and the new page, and a delete by primary key purges the row as
//     it was. Only registered models pay for this.
//   - Both sides of a link: many-to-many links added or removed purge the
//     rows on both sides; has-many changes purge the children (and, through
//     their DependentPaths, the parent).
//   - Never the user's error: a URL that is malformed, has control
//     characters or user information, begins with "//" or is on a host
//     that is not allowed, a method that panics, a failed lookup, or a Sink
//     that fails is reported to the logger and the error handler
//     ([WithErrorHandler]) and never fails or rolls back the write. A
//     rejected URL is shown as backends.RedactURL shows it: user
//     information and query values become REDACTED.
//
// # Delivery
//
// With an in-memory Sink (the dispatcher), delivery is at most once: a
// process that dies between the commit and the delivery loses the purge. A
// [TxSink] (the durable outbox) writes the request inside the transaction, so
// the database keeps it with the data and delivery is at least once.
//
// # Out of reach
//
// Writes GORM does not run through its create, update and delete callbacks
// are invisible: raw SQL through db.Exec or db.Raw, statements on db.Table
// without a model, and work in a *sql.Tx begun and committed by hand
// (including one begun with Begin inside db.Connection, which is reported as
// [ErrUntrackedTransaction]). For those, purge by name: [Plugin.PurgeTx]
// inside a transaction begun through GORM (handed off with its commit,
// dropped with its rollback), [Plugin.Purge] outside one or after the
// commit of a transaction the plugin cannot see.
//
// # Bulk jobs
//
// A data migration or an import runs its writes with the context
// [Plugin.Suspend] returns: their purges are merged and handed off once, by
// [Suspension.Resume], instead of once per commit. The dispatcher's
// escalation policy (dispatcher.WithEscalation) can then turn that one large
// handoff into a purge of tags or of everything.
//
// # Installing with other plugins
//
// Install gormpurge before gorm.io/plugin/dbresolver, so that the resolver's
// pools are tracked too; the other order is refused with an error. The
// plugin wraps the connection pool: code that asserted
// db.Statement.ConnPool.(*sql.Tx) should call [SQLTx] instead.
package gormpurge
