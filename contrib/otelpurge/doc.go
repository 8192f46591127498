// Package otelpurge feeds OpenTelemetry with what gormpurge does: it is an
// [observe.Observer] that turns the components' figures into metrics and
// their handoffs and calls to backends into spans.
//
// Create one with [New] and pass it to the WithObserver option of every
// component: the plugin (gormpurge.WithObserver), the dispatcher, the
// outbox relay, the local cache and the warmer. Close it on shutdown, after
// the components.
//
// # Metrics
//
// Every [observe.Metric] becomes an observable instrument named
// "gormpurge." followed by its [observe.Info] Name, with its unit and
// description: "gormpurge.purge.objects", "gormpurge.outbox.pending", and
// so on. Counters are Float64ObservableCounters, gauges
// Float64ObservableGauges; one callback reads every watched
// [observe.Source] when the MeterProvider collects, and adds their
// readings up with [observe.Sources]: readings with an Owner count once per
// Owner and are summed across Owners; of the others, readings of one
// counter with the same attributes from several sources are summed, and of
// a gauge the last one read is kept. The attributes are "gormpurge.backend" and
// "gormpurge.outcome", for the metrics whose Info names them.
//
// Two histograms, in seconds, complete them:
//
//   - "gormpurge.purge.latency": the time from a transaction's commit to
//     the purge of its objects in a backend, per "gormpurge.backend" and
//     "gormpurge.outcome" (delivered, failed, dropped), with the buckets
//     of [observe.LatencyBuckets].
//   - "gormpurge.purge.duration": the duration of each call to a backend,
//     per "gormpurge.backend" and "gormpurge.outcome" ("ok" or "error"),
//     with "error.type" (an observe Class constant) when it failed, and the
//     buckets of [observe.DurationBuckets].
//
// URLs and tags are never metric attributes: they are not bounded.
//
// # Spans
//
// A handoff is a span named [observe.SpanHandoff], a child of the span in
// the transaction's context; its traceparent travels with the request, in
// the dispatcher and in outbox rows. Each call to a backend is a span
// named [observe.SpanAttempt] of kind client, usually a root span (the
// dispatcher calls backends in its own context), with a link to the span
// of every handoff the batch carries. Both carry counts and a sample of the
// URLs and tags.
package otelpurge
