package outbox

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

const goodTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestValidTraceParent(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want bool
	}{
		{"the W3C example", goodTrace, true},
		{"not sampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true},
		{"empty", "", false},
		{"uppercase trace id", strings.ToUpper(goodTrace[:35]) + goodTrace[35:], false},
		{"uppercase flags", goodTrace[:53] + "0A", false},
		{"zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"zero span id", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false},
		{"version 01", "01" + goodTrace[2:], false},
		{"version ff", "ff" + goodTrace[2:], false},
		{"longer (a later version's extra field)", goodTrace + "-xx", false},
		{"shorter", goodTrace[:54], false},
		{"underscores for dashes", strings.ReplaceAll(goodTrace, "-", "_"), false},
		{"not hex", "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", false},
		{"a space", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7- 1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, validTraceParent(tc.in), "%q", tc.in)
		})
	}
}

var traceParentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$`)

// FuzzValidTraceParent checks the validator against the W3C grammar
// written as a regular expression.
func FuzzValidTraceParent(f *testing.F) {
	for _, s := range []string{goodTrace, "", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", strings.ToUpper(goodTrace), goodTrace + "-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m := traceParentRE.FindStringSubmatch(s)
		want := m != nil && strings.Trim(m[1], "0") != "" && strings.Trim(m[2], "0") != ""
		if got := validTraceParent(s); got != want {
			t.Fatalf("validTraceParent(%q) = %v, want %v", s, got, want)
		}
	})
}

func TestOriginOfARow(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_123)
	assert.Equal(t, at, originOf(at.UnixMilli(), goodTrace).Committed)
	assert.Equal(t, goodTrace, originOf(at.UnixMilli(), goodTrace).TraceParent)
	assert.Empty(t, originOf(at.UnixMilli(), "garbage").TraceParent, "a row written by hand with a bad trace")
	assert.True(t, originOf(0, "").Committed.IsZero(), "a row written by hand without created_at")
}
