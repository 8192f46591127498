package prompurge

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gormpurge/gormpurge/observe"
)

// namespace prefixes every metric's name.
const namespace = "gormpurge_"

// Label names of the histograms beyond an [observe.Info]'s attributes.
const (
	labelBackend    = "backend"
	labelOutcome    = "outcome"
	labelErrorClass = "error_class"
)

// Outcomes of a call to a backend, the outcome label of
// gormpurge_purge_duration_seconds.
const (
	outcomeOK    = "ok"
	outcomeError = "error"
)

// Help texts of the histograms, which have no [observe.Info].
const (
	latencyHelp  = "Time from a transaction's commit to the end of its purge in a backend, by outcome."
	durationHelp = "Duration of calls to backends, by outcome and error class."
)

// MetricName returns the name the Collector gives metric m: "gormpurge_",
// then m's [observe.Info] name with "." replaced by "_", then the suffix
// of its unit and "_total" for a counter, as [Prometheus naming
// conventions] ask: gormpurge_purge_objects_total,
// gormpurge_outbox_oldest_pending_age_seconds. It returns "" for an
// unknown Metric. Use it to name gormpurge's metrics in alerts and
// dashboards built in code.
//
// [Prometheus naming conventions]: https://prometheus.io/docs/practices/naming/
func MetricName(m observe.Metric) string {
	info := m.Info()
	if info.Name == "" {
		return ""
	}
	return promName(info.Name, info.Unit, info.Kind == observe.Counter)
}

// promName turns a dot-separated name and a UCUM unit into a Prometheus
// metric name.
func promName(name, unit string, counter bool) string {
	n := namespace + strings.ReplaceAll(name, ".", "_")
	if s := unitSuffix(unit); s != "" && !strings.HasSuffix(n, s) {
		n += s
	}
	if counter {
		n += "_total"
	}
	return n
}

// unitSuffix returns the name suffix of a UCUM unit: "" for an annotation
// in braces ("{object}"), which names what is counted rather than a unit,
// and for a unit it does not know.
func unitSuffix(unit string) string {
	switch unit {
	case "s":
		return "_seconds"
	case "By":
		return "_bytes"
	}
	return ""
}

// descs are the descriptors of the metrics read from Sources, by Metric.
type descs map[observe.Metric]*prometheus.Desc

func newDescs() descs {
	ds := make(descs)
	for _, m := range observe.Metrics() {
		info := m.Info()
		ds[m] = prometheus.NewDesc(MetricName(m), info.Description, info.Attrs, nil)
	}
	return ds
}

// valueType returns how Prometheus types a Metric's readings.
func valueType(m observe.Metric) prometheus.ValueType {
	if m.Info().Kind == observe.Counter {
		return prometheus.CounterValue
	}
	return prometheus.GaugeValue
}

// labelValue makes s a valid label value: Prometheus refuses a value that
// is not UTF-8, and would fail the scrape or panic on it.
func labelValue(s string) string {
	return strings.ToValidUTF8(s, "\uFFFD")
}
