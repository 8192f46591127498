// Package dispatcher delivers purge requests to cache backends from its own
// goroutines, so that the code that produces them (the gormpurge plugin, after
// a commit) never waits on a network call.
//
// A [Dispatcher] gives every [backends.Backend] its own bounded queue, its own
// workers and its own retry and rate-limit state: a slow, failing or
// rate-limited backend never delays delivery to the others.
//
//	d, err := dispatcher.New([]backends.Backend{akamaiB, varnishB, local},
//		dispatcher.WithWorkers(4))
//	if err != nil {
//		return err // names each invalid option and how to fix it
//	}
//	defer d.Close(ctx) // drains what is queued within ctx, then closes the backends
//	p := gormpurge.New(d) // *Dispatcher implements gormpurge.Sink
//
// # What happens to a request
//
// [Dispatcher.Enqueue] copies the request into the queue of every backend and
// returns. Each backend's batcher waits a short linger window ([WithLinger])
// for more requests, merges what arrived and removes duplicates, then cuts the
// result into batches that respect the backend's [backends.Limits] and hands
// them to the backend's workers. A worker calls Purge with its own deadline
// ([WithAttemptTimeout]) and retries temporary failures with exponential
// backoff and jitter, as a [RetryPolicy] says ([WithRetry], or its
// shorthands [WithBackoff], [WithMaxAttempts], [WithMaxElapsed]). The
// outbox relay and the gormpurge command use the same RetryPolicy type.
// A failure marked [backends.Permanent] is not retried; one marked
// [backends.RetryAfter] waits as long as the backend asked.
//
// Every batch ends in exactly one [Outcome]: [Delivered], [Failed] or
// [Dropped]. Each one is logged with log/slog, counted in [Dispatcher.Stats]
// and passed to the [WithOnResult] hook. A backend whose error names the
// objects that failed ([backends.Partial]) has only those counted as
// failed.
//
// # Following a request
//
// [Dispatcher.Submit] enqueues like Enqueue and returns a [Ticket], done
// once every backend (or those chosen with [WithBackends]) has settled the
// request. Its outcomes, one [BackendOutcome] per backend, say whether the
// request was delivered, failed for good or dropped, although it was merged
// with others and cut into batches on the way:
//
//	t, err := d.Submit(ctx, r)
//	if t == nil {
//		return err // closed, or WithBackends named an unknown backend
//	}
//	outcomes, err := t.Wait(ctx)
//
// [Ticket.Objects] goes one step further and says, per backend, how each
// URL and tag of the request was settled, with the error of each one not
// delivered: a backend that purged part of a batch names the objects that
// failed ([backends.Partial]), so the others count as delivered.
//
// # Escalation and warm-up
//
// A bulk change, such as a data migration, can hand over thousands of URLs
// at once, and a CDN that bills per purged object charges for each.
// [WithEscalation] makes one backend purge something coarser instead of
// any handoff (one Enqueue or Submit call) that names more than a given
// number of URLs: a few cache tags, when the backend purges tags (see
// [backends.TagPurger]), or everything it caches when the backend
// implements [backends.PurgeAller]. The other backends still get the URLs.
//
//	d, err := dispatcher.New(bs, dispatcher.WithEscalation("akamai",
//		dispatcher.Escalation{Above: 500, All: true})) // with akamai.WithCPCodes
//
// A purge of everything subsumes the requests merged with it in the same
// linger window: they are settled by its outcome, and its [Report] has All
// set. Escalations are logged at Warn and counted in
// [BackendStats.Escalated].
//
// [WithWarmup] hands the URLs of every batch a backend delivered to a
// [Warmer], such as *warm.Warmer, which fetches them again so that the
// first visitor after a purge finds them cached. For an escalated handoff it
// gets at most Above of the URLs the handoff named, so that a bulk change
// does not become a flood of page fetches.
//
// # Guarantees
//
// Delivery is at most once and in memory: what is queued when the process
// dies is lost. [Dispatcher.Close] drains within its context's deadline and
// returns an [*UndeliveredError] naming what it could not deliver, so that a
// caller can log it or persist it; then it closes the backends that
// implement [backends.Closer], so a shutdown is: the HTTP server, the
// outbox relay, the dispatcher. A full queue follows the [FullPolicy]
// chosen with [WithFullPolicy]; every request it drops is counted and
// reported.
//
// # Options
//
// Every option is a With… function: [Option]s for [New], which checks them
// and returns an error naming each invalid one and how to fix it, and
// [SubmitOption]s ([WithBackends]) for one Submit. An option given nil
// where it expects a logger, a function or a Warmer ([WithLogger],
// [WithOnResult], [WithWarmup]) is such an error, not a request for the
// default, and so is a nil Option or SubmitOption: leave the option out
// for the default, and pass slog.New(slog.DiscardHandler) to silence the
// logs. The dispatcher logs a delivered batch at Debug, a retry, a drop or
// an escalation at Warn, and a batch that failed for good at Error.
package dispatcher
