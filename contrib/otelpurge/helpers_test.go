package otelpurge_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/gormpurge/gormpurge/contrib/otelpurge"
)

// harness is an Observer reporting to in-memory SDK providers.
type harness struct {
	obs    *otelpurge.Observer
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() {
		ctx := context.Background()
		require.NoError(t, tp.Shutdown(ctx))
		require.NoError(t, mp.Shutdown(ctx))
	})
	obs, err := otelpurge.New(otelpurge.WithMeterProvider(mp), otelpurge.WithTracerProvider(tp))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, obs.Close(context.Background())) })
	return &harness{obs: obs, reader: reader, spans: spans, tp: tp}
}

// collect returns the metrics the reader collects now, by name.
func (h *harness) collect(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, h.reader.Collect(context.Background(), &rm))
	byName := make(map[string]metricdata.Metrics)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			byName[m.Name] = m
		}
	}
	return byName
}

// attrEncoder spells attribute sets as "k1=v1,k2=v2", sorted by key.
var attrEncoder = attribute.DefaultEncoder()

// points returns a float sum's or gauge's data points, keyed by their
// attributes.
func points(t *testing.T, m metricdata.Metrics) map[string]float64 {
	t.Helper()
	var dps []metricdata.DataPoint[float64]
	switch d := m.Data.(type) {
	case metricdata.Sum[float64]:
		dps = d.DataPoints
	case metricdata.Gauge[float64]:
		dps = d.DataPoints
	default:
		t.Fatalf("metric %s is a %T, want a float64 sum or gauge", m.Name, m.Data)
	}
	out := make(map[string]float64, len(dps))
	for _, dp := range dps {
		out[dp.Attributes.Encoded(attrEncoder)] = dp.Value
	}
	return out
}

// histogram returns the only histogram of m's data points with the given
// attributes.
func histogram(t *testing.T, m metricdata.Metrics, attrs string) metricdata.HistogramDataPoint[float64] {
	t.Helper()
	h, ok := m.Data.(metricdata.Histogram[float64])
	require.True(t, ok, "metric %s is a %T, want a float64 histogram", m.Name, m.Data)
	var seen []string
	for _, dp := range h.DataPoints {
		enc := dp.Attributes.Encoded(attrEncoder)
		if enc == attrs {
			return dp
		}
		seen = append(seen, enc)
	}
	t.Fatalf("metric %s has no data point with attributes %q; it has %q", m.Name, attrs, seen)
	return metricdata.HistogramDataPoint[float64]{}
}
