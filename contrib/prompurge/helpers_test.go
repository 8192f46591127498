package prompurge_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// histogram returns the one histogram named name that g gathers.
func histogram(t *testing.T, g prometheus.Gatherer, name string) *dto.Histogram {
	t.Helper()
	families, err := g.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name {
			require.Len(t, f.GetMetric(), 1, name)
			return f.GetMetric()[0].GetHistogram()
		}
	}
	require.Failf(t, "no such metric", "%s is not gathered", name)
	return nil
}

// series returns the one series of the metric name that g gathers with
// exactly labels.
func series(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	families, err := g.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			got := make(map[string]string)
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k := range labels { // a label with an empty value is not exposed
				if _, ok := got[k]; !ok {
					got[k] = ""
				}
			}
			if assert.ObjectsAreEqual(labels, got) {
				return m
			}
		}
	}
	require.Failf(t, "no such series", "%s%v is not gathered", name, labels)
	return nil
}
