// Package observe is how gormpurge tells a metrics or tracing system what it
// does, without depending on one. It imports nothing but the standard
// library.
//
// Every component takes an [Observer] with its WithObserver option: the
// plugin (gormpurge.WithObserver), the dispatcher, the outbox relay, the
// local cache middleware (which also reports its store's figures, through
// localcache.StatsReporter), and the warmer. The modules
// github.com/gormpurge/gormpurge/contrib/otelpurge (OpenTelemetry) and
// github.com/gormpurge/gormpurge/contrib/prompurge (Prometheus) are
// Observers; [Join] feeds both. To feed another system, embed [Nop] in a
// type of yours and implement the methods you need.
//
// An Observer learns three kinds of things:
//
//   - Figures a component keeps anyway, read when the observer collects:
//     counters (objects delivered, rows dead, cache hits) and gauges (queue
//     depth, outbox backlog). A component registers a [Source] with
//     [Observer.Watch] when it is built, and removes it when it is closed.
//     [Metric] names each figure once, with its kind, unit and attribute,
//     so that every exporter names it alike, and [Sources] adds readings
//     up the one way every exporter should.
//   - Spans: a handoff ([Observer.StartHandoff]), in the context of the
//     transaction that committed, and each call to a backend
//     ([Observer.StartAttempt]), linked to every handoff its batch carries.
//   - The commit-to-purge latency of each handoff in each backend
//     ([Observer.Settled]).
//
// A handoff's [Origin] (when it committed, and the W3C traceparent of its
// span) travels with its request: in the context given to the Sink
// ([ContextWithOrigin]), through the dispatcher's batches and retries, and
// in the outbox's rows, so that a relay in another process links its
// deliveries to the transaction that wrote the row.
//
// Components call an Observer on their hot paths: its methods must be safe
// for concurrent use, return quickly and never block. A component given no
// Observer does none of this work.
package observe
