package observe

import (
	"context"
	"slices"
)

// Kind says how a [Metric]'s readings add up.
type Kind int

const (
	// Counter readings are totals since the component started: they only
	// grow. Readings of one counter with the same attributes from several
	// components are added up.
	Counter Kind = iota + 1
	// Gauge readings are the state now. Of several readings of one gauge
	// with the same attributes and no Owner, an observer keeps one.
	Gauge
)

// Metric names a figure a component reports through a [Source]. Exporters
// name it from [Metric.Info], so that every one names it alike.
type Metric int

// The figures components report. Each one's Info gives its name, unit and
// attribute.
const (
	// Handoffs counts the plugin's handoffs by outcome ([HandedOff] (the
	// outbox's [Written] included), [HandoffFailed], [Suspended]).
	Handoffs Metric = iota + 1
	// Objects counts the dispatcher's objects (URLs plus tags) per backend
	// by outcome: [Delivered], [Failed], [Dropped]; [Coalesced] for those
	// merged with a duplicate, and [Retried] for those a failed call held,
	// once per retry.
	Objects
	// Retries counts the calls to a backend that failed and were followed
	// by another, per backend.
	Retries
	// Escalations counts the handoffs the dispatcher replaced with a
	// purge of tags or of everything, per backend.
	Escalations
	// QueueDepth is the number of objects waiting in a backend's queue.
	QueueDepth
	// InFlight is the number of objects taken from a backend's queue and
	// not yet settled.
	InFlight
	// OutboxPending is the number of pending rows in the outbox table.
	OutboxPending
	// OutboxDead is the number of dead rows in the outbox table.
	OutboxDead
	// OutboxOldestPendingAge is the age in seconds of the oldest pending
	// row; 0 when there is none.
	OutboxOldestPendingAge
	// OutboxRows counts the rows a relay settled, by outcome: [Delivered],
	// "retried", "dead".
	OutboxRows
	// CacheRequests counts the requests the local cache middleware saw, by
	// outcome: "hit", "miss", "bypass".
	CacheRequests
	// CacheStores counts the pages the local cache stored.
	CacheStores
	// CacheEvictions counts the entries a local cache store evicted to
	// make room.
	CacheEvictions
	// CacheEntries is the number of entries in a local cache store.
	CacheEntries
	// Warmed counts the warmer's URLs by outcome: "fetched", "failed",
	// "dropped".
	Warmed
	// WarmQueued is the number of URLs waiting in the warmer's queue.
	WarmQueued

	lastMetric // keep last
)

// Metrics returns every Metric, in order.
func Metrics() []Metric {
	ms := make([]Metric, 0, lastMetric-1)
	for m := Handoffs; m < lastMetric; m++ {
		ms = append(ms, m)
	}
	return ms
}

// Info describes a Metric for exporters.
type Info struct {
	// Name is dot-separated, without a prefix or a unit suffix:
	// "purge.objects". OpenTelemetry exporters prefix "gormpurge.";
	// Prometheus ones replace the dots with "_" and add a unit suffix
	// ("_total", "_seconds").
	Name string
	// Kind says whether it is a counter or a gauge.
	Kind Kind
	// Unit is the UCUM unit, as OpenTelemetry wants it: "{object}", "s".
	Unit string
	// Description is one sentence for the metric's help text.
	Description string
	// Attrs names the attributes its readings carry: "backend",
	// "outcome". Readings leave the others empty.
	Attrs []string
}

var infos = [...]Info{
	Handoffs:               {"handoffs", Counter, "{handoff}", "Requests the plugin handed off after a commit, by outcome.", []string{"outcome"}},
	Objects:                {"purge.objects", Counter, "{object}", "URLs and tags the dispatcher ended, per backend and outcome.", []string{"backend", "outcome"}},
	Retries:                {"purge.retries", Counter, "{call}", "Calls to a backend that failed and were retried.", []string{"backend"}},
	Escalations:            {"purge.escalations", Counter, "{handoff}", "Handoffs replaced with a purge of tags or of everything.", []string{"backend"}},
	QueueDepth:             {"purge.queue.depth", Gauge, "{object}", "URLs and tags waiting in a backend's queue.", []string{"backend"}},
	InFlight:               {"purge.in_flight", Gauge, "{object}", "URLs and tags taken from a backend's queue and not yet settled.", []string{"backend"}},
	OutboxPending:          {"outbox.pending", Gauge, "{row}", "Pending rows in the outbox table.", nil},
	OutboxDead:             {"outbox.dead", Gauge, "{row}", "Dead rows in the outbox table.", nil},
	OutboxOldestPendingAge: {"outbox.oldest_pending.age", Gauge, "s", "Age of the oldest pending row of the outbox table.", nil},
	OutboxRows:             {"outbox.rows", Counter, "{row}", "Outbox rows a relay settled, by outcome.", []string{"outcome"}},
	CacheRequests:          {"cache.requests", Counter, "{request}", "Requests the local cache middleware answered, by outcome.", []string{"outcome"}},
	CacheStores:            {"cache.stores", Counter, "{entry}", "Pages the local cache stored.", nil},
	CacheEvictions:         {"cache.evictions", Counter, "{entry}", "Entries a local cache store evicted to make room.", nil},
	CacheEntries:           {"cache.entries", Gauge, "{entry}", "Entries in a local cache store.", nil},
	Warmed:                 {"warm.urls", Counter, "{url}", "URLs the warmer ended, by outcome.", []string{"outcome"}},
	WarmQueued:             {"warm.queue.depth", Gauge, "{url}", "URLs waiting in the warmer's queue.", nil},
}

// Info returns m's description; the zero Info for an unknown Metric.
func (m Metric) Info() Info {
	if m <= 0 || m >= lastMetric {
		return Info{}
	}
	info := infos[m]
	info.Attrs = slices.Clone(info.Attrs) // the caller's to change
	return info
}

// String returns m's name.
func (m Metric) String() string { return m.Info().Name }

// Reading is one figure of a [Source].
type Reading struct {
	Metric Metric
	// Backend and Outcome are the reading's attributes, when its Metric's
	// Info names them; "" otherwise.
	Backend, Outcome string
	Value            float64
	// Owner, when not nil, is what the figure belongs to when several
	// Sources may report it: a store that several middlewares share. Of
	// the readings of one series with the same Owner, an observer keeps
	// one, and adds up those of different Owners (see [Sources]). Use a
	// pointer: an Owner of a type that is not comparable is ignored.
	Owner any
}

// Source reads a component's figures and passes each to add. It is called
// when the observer collects, maybe concurrently with the component's
// work; ctx bounds any I/O it does (the outbox's reads its table).
type Source func(ctx context.Context, add func(Reading))

// Spans: names and attributes that every exporter of spans uses.
const (
	// SpanHandoff is the name of a handoff's span, a child of the
	// transaction's.
	SpanHandoff = "gormpurge.handoff"
	// SpanAttempt is the name of a call to a backend's span, linked to
	// the span of every handoff the batch carries.
	SpanAttempt = "gormpurge.purge"
	// Latency is the name of the commit-to-purge latency histogram.
	Latency = "purge.latency"
	// AttemptDuration is the name of the histogram of calls to backends.
	AttemptDuration = "purge.duration"
)

// LatencyBuckets returns the upper bounds, in seconds, of the
// commit-to-purge latency histogram's buckets: from 10ms (a purge in
// process) to an hour (an outbox whose relay was down).
func LatencyBuckets() []float64 {
	return []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}
}

// DurationBuckets returns the upper bounds, in seconds, of the buckets of
// the histogram of calls to backends: from 1ms (a local cache) to 30s (the
// dispatcher's default deadline).
func DurationBuckets() []float64 {
	return []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
}
