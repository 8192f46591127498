// Package prompurge feeds Prometheus with what gormpurge does.
//
// [New] builds a [Collector] and registers it on the registry it is given.
// The Collector is an [observe.Observer]: pass it to the WithObserver
// option of every component (the plugin, the dispatcher, the outbox relay,
// the local cache, the warmer), or combine it with another Observer, such
// as OpenTelemetry's, with [observe.Join]:
//
//	reg := prometheus.NewRegistry()
//	col, err := prompurge.New(reg)
//	...
//	defer col.Close(ctx)
//	d, err := dispatcher.New(bs, dispatcher.WithObserver(col))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// # Metrics
//
// Each [observe.Metric] becomes a metric named "gormpurge_" followed by
// its [observe.Info] name with its dots replaced by "_", then the suffix of
// its unit ("_seconds" for "s"; units in braces, such as "{object}", add
// none), then "_total" for counters. Its labels are its attributes,
// "backend" and "outcome", and its help is its description:
//
//	gormpurge_handoffs_total{outcome}
//	gormpurge_purge_objects_total{backend,outcome}
//	gormpurge_purge_retries_total{backend}
//	gormpurge_purge_escalations_total{backend}
//	gormpurge_purge_queue_depth{backend}
//	gormpurge_purge_in_flight{backend}
//	gormpurge_outbox_pending
//	gormpurge_outbox_dead
//	gormpurge_outbox_oldest_pending_age_seconds
//	gormpurge_outbox_rows_total{outcome}
//	gormpurge_cache_requests_total{outcome}
//	gormpurge_cache_stores_total
//	gormpurge_cache_evictions_total
//	gormpurge_cache_entries
//	gormpurge_warm_urls_total{outcome}
//	gormpurge_warm_queue_depth
//
// They are read from the components when Prometheus scrapes: counters
// with the same labels reported by several components (two dispatchers,
// say) are added up, and of several readings of a gauge with the same
// labels the last is kept. A metric no component reports is left out.
//
// Two histograms come from the events the components report:
//
//	gormpurge_purge_duration_seconds{backend,outcome,error_class}
//	gormpurge_purge_latency_seconds{backend,outcome}
//
// The first times each call to a backend, with outcome "ok" or "error" and
// the [observe.AttemptEnd] Class of a failed call ("" for a call that
// succeeded); its buckets are [observe.DurationBuckets] unless
// [WithDurationBuckets] changes them. The second is the time from a
// transaction's commit to the end of its purge in a backend, with the
// outcome of [observe.Settled] ("delivered", "failed", "dropped"); its
// buckets are [observe.LatencyBuckets] unless [WithLatencyBuckets] changes
// them.
//
// Prometheus has no spans: the Collector's StartHandoff adds nothing to
// the context and returns no traceparent. Join it with an Observer that
// traces to have both.
//
// # Registration
//
// The Collector describes every metric it may send, with its labels, so
// that registering it fails when the registry already holds a metric of
// the same name, and registering a second Collector on one registry fails
// too: build one Collector per registry and share it between components.
package prompurge
