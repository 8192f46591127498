package otelpurge_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/gormpurge/gormpurge/contrib/otelpurge"
	"github.com/gormpurge/gormpurge/observe"
)

// attrs returns a span's attributes by key.
func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	out := make(map[attribute.Key]attribute.Value)
	for _, kv := range s.Attributes() {
		out[kv.Key] = kv.Value
	}
	return out
}

// onlySpan returns the only ended span named name.
func (h *harness) onlySpan(t *testing.T, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range h.spans.Ended() {
		if s.Name() == name {
			found = append(found, s)
		}
	}
	require.Len(t, found, 1, "spans named %s", name)
	return found[0]
}

func TestHandoffSpanIsAChildOfTheTransaction(t *testing.T) {
	h := newHarness(t)
	ctx, parent := h.tp.Tracer("app").Start(context.Background(), "checkout")

	hctx, tp, end := h.obs.StartHandoff(ctx, observe.Handoff{URLs: []string{"/a", "/b"}, Tags: []string{"t"}})
	end(observe.HandoffEnd{Outcome: observe.HandedOff})
	parent.End()

	span := h.onlySpan(t, observe.SpanHandoff)
	assert.Equal(t, trace.SpanKindInternal, span.SpanKind())
	assert.Equal(t, parent.SpanContext().SpanID(), span.Parent().SpanID())
	assert.Equal(t, parent.SpanContext().TraceID(), span.SpanContext().TraceID())
	assert.Equal(t, span.SpanContext(), trace.SpanContextFromContext(hctx), "the returned context holds the handoff's span")
	assert.Equal(t, codes.Unset, span.Status().Code)

	a := attrs(span)
	assert.Equal(t, int64(2), a[otelpurge.URLCountKey].AsInt64())
	assert.Equal(t, int64(1), a[otelpurge.TagCountKey].AsInt64())
	assert.False(t, a[otelpurge.InTxKey].AsBool())
	assert.Equal(t, []string{"/a", "/b"}, a[otelpurge.URLsKey].AsStringSlice())
	assert.Equal(t, []string{"t"}, a[otelpurge.TagsKey].AsStringSlice())
	assert.Equal(t, observe.HandedOff, a[otelpurge.OutcomeKey].AsString())

	// The traceparent names the handoff's span, and parses back to it.
	want := fmt.Sprintf("00-%s-%s-01", span.SpanContext().TraceID(), span.SpanContext().SpanID())
	assert.Equal(t, want, tp)
	back := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(
		context.Background(), propagation.MapCarrier{"traceparent": tp}))
	assert.True(t, back.Equal(span.SpanContext().WithRemote(true)), "round trip: got %v", back)
}

func TestHandoffSpanEnds(t *testing.T) {
	boom := errors.New("sink refused")
	tests := []struct {
		end     observe.HandoffEnd
		code    codes.Code
		desc    string
		errored bool
	}{
		{observe.HandoffEnd{Outcome: observe.HandedOff}, codes.Unset, "", false},
		{observe.HandoffEnd{Outcome: observe.Written}, codes.Unset, "", false},
		{observe.HandoffEnd{Outcome: observe.Suspended}, codes.Unset, "", false},
		{observe.HandoffEnd{Outcome: observe.HandoffFailed, Err: boom}, codes.Error, "sink refused", true},
		{observe.HandoffEnd{Outcome: observe.Aborted, Err: boom}, codes.Error, "sink refused", true},
		{observe.HandoffEnd{Outcome: observe.Aborted}, codes.Error, observe.Aborted, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s error=%t", tt.end.Outcome, tt.end.Err != nil), func(t *testing.T) {
			h := newHarness(t)
			_, _, end := h.obs.StartHandoff(context.Background(), observe.Handoff{InTx: true})
			end(tt.end)
			span := h.onlySpan(t, observe.SpanHandoff)
			assert.False(t, span.Parent().IsValid(), "no parent span in the context: a root span")
			assert.Equal(t, tt.end.Outcome, attrs(span)[otelpurge.OutcomeKey].AsString())
			assert.True(t, attrs(span)[otelpurge.InTxKey].AsBool())
			assert.Equal(t, sdktrace.Status{Code: tt.code, Description: tt.desc}, span.Status())
			var exceptions int
			for _, e := range span.Events() {
				if e.Name == "exception" {
					exceptions++
				}
			}
			assert.Equal(t, map[bool]int{true: 1, false: 0}[tt.errored], exceptions)
		})
	}
}

func TestUntracedHandoffHasNoTraceParent(t *testing.T) {
	obs, err := otelpurge.New(otelpurge.WithTracerProvider(noop.NewTracerProvider()))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, obs.Close(context.Background())) })
	_, tp, end := obs.StartHandoff(context.Background(), observe.Handoff{URLs: []string{"/a"}})
	end(observe.HandoffEnd{Outcome: observe.HandedOff})
	assert.Empty(t, tp)
}

func TestSpansSampleAtMostMaxSampledURLsAndTags(t *testing.T) {
	h := newHarness(t)
	urls := make([]string, 50)
	for i := range urls {
		urls[i] = fmt.Sprintf("/page/%d", i)
	}
	_, _, endH := h.obs.StartHandoff(context.Background(), observe.Handoff{URLs: urls, Tags: urls[:3]})
	endH(observe.HandoffEnd{Outcome: observe.HandedOff})
	_, endA := h.obs.StartAttempt(context.Background(), observe.Attempt{Backend: "cdn", Number: 1, Tags: urls})
	endA(observe.AttemptEnd{})

	a := attrs(h.onlySpan(t, observe.SpanHandoff))
	assert.Equal(t, int64(50), a[otelpurge.URLCountKey].AsInt64())
	assert.Equal(t, urls[:otelpurge.MaxSampled], a[otelpurge.URLsKey].AsStringSlice())
	assert.Equal(t, urls[:3], a[otelpurge.TagsKey].AsStringSlice())

	a = attrs(h.onlySpan(t, observe.SpanAttempt))
	assert.Equal(t, int64(50), a[otelpurge.TagCountKey].AsInt64())
	assert.Equal(t, urls[:otelpurge.MaxSampled], a[otelpurge.TagsKey].AsStringSlice())
	assert.NotContains(t, a, otelpurge.URLsKey)
}

// A URL's query values and user may be secrets: spans show them redacted,
// as logs do.
func TestSpansNeverCarryASecretOfAURL(t *testing.T) {
	h := newHarness(t)
	urls := []string{"https://user:hunter2@www.example.com/report?token=s3cret&page=2"}
	_, _, endH := h.obs.StartHandoff(context.Background(), observe.Handoff{URLs: urls})
	endH(observe.HandoffEnd{Outcome: observe.HandedOff})
	_, endA := h.obs.StartAttempt(context.Background(), observe.Attempt{Backend: "cdn", Number: 1, URLs: urls})
	endA(observe.AttemptEnd{})
	for _, name := range []string{observe.SpanHandoff, observe.SpanAttempt} {
		got := attrs(h.onlySpan(t, name))[otelpurge.URLsKey].AsStringSlice()
		require.Len(t, got, 1, name)
		assert.Contains(t, got[0], "www.example.com/report", name)
		for _, secret := range []string{"hunter2", "s3cret", "user"} {
			assert.NotContains(t, got[0], secret, name)
		}
	}
}

// tracedOrigin starts and ends a span, and returns an Origin naming it.
func tracedOrigin(t *testing.T, tp trace.TracerProvider) (observe.Origin, trace.SpanContext) {
	t.Helper()
	ctx, span := tp.Tracer("app").Start(context.Background(), "tx")
	span.End()
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	return observe.Origin{Committed: time.Now(), TraceParent: carrier.Get("traceparent")}, span.SpanContext()
}

func TestAttemptSpanLinksToEachHandoff(t *testing.T) {
	h := newHarness(t)
	o1, sc1 := tracedOrigin(t, h.tp)
	o2, sc2 := tracedOrigin(t, h.tp)
	origins := []observe.Origin{
		o1, o2, o1, // o1 twice: batches merge handoffs, one link each
		{Committed: time.Now()},                          // untraced
		{TraceParent: "00-not-a-traceparent"},            // unreadable
		{TraceParent: "00-" + "0000000000000000" + "-x"}, // unreadable
	}
	_, end := h.obs.StartAttempt(context.Background(), observe.Attempt{
		Backend: "cdn", Number: 2, URLs: []string{"/a"}, Tags: []string{"t1", "t2"}, All: true, Origins: origins,
	})
	end(observe.AttemptEnd{Duration: time.Millisecond})

	span := h.onlySpan(t, observe.SpanAttempt)
	assert.Equal(t, trace.SpanKindClient, span.SpanKind())
	assert.False(t, span.Parent().IsValid(), "the dispatcher's context carries no span: a root span")
	var linked []trace.SpanContext
	for _, l := range span.Links() {
		linked = append(linked, l.SpanContext.WithRemote(false))
	}
	assert.Equal(t, []trace.SpanContext{sc1, sc2}, linked)

	a := attrs(span)
	assert.Equal(t, "cdn", a[otelpurge.BackendKey].AsString())
	assert.Equal(t, int64(2), a[otelpurge.AttemptKey].AsInt64())
	assert.Equal(t, int64(3), a[otelpurge.ObjectCountKey].AsInt64())
	assert.True(t, a[otelpurge.AllKey].AsBool())
	assert.Equal(t, int64(len(origins)), a[otelpurge.HandoffCountKey].AsInt64())
	assert.NotContains(t, a, otelpurge.LinksDroppedKey)
}

func TestAttemptSpanLinksAtMostMaxLinks(t *testing.T) {
	h := newHarness(t)
	origins := make([]observe.Origin, otelpurge.MaxLinks+5)
	for i := range origins {
		origins[i], _ = tracedOrigin(t, h.tp)
	}
	_, end := h.obs.StartAttempt(context.Background(), observe.Attempt{Backend: "cdn", Number: 1, Origins: origins})
	end(observe.AttemptEnd{})

	span := h.onlySpan(t, observe.SpanAttempt)
	assert.Len(t, span.Links(), otelpurge.MaxLinks)
	assert.Zero(t, span.DroppedLinks())
	assert.Equal(t, int64(5), attrs(span)[otelpurge.LinksDroppedKey].AsInt64())
}

func TestAttemptEnds(t *testing.T) {
	ids := make(map[string]string)
	for i := range 30 {
		ids[fmt.Sprintf("n%02d", i)] = fmt.Sprint("id-", i)
	}
	tests := []struct {
		name      string
		end       observe.AttemptEnd
		histAttrs string
		status    sdktrace.Status
	}{
		{
			name:      "ok",
			end:       observe.AttemptEnd{Duration: 40 * time.Millisecond, IDs: map[string]string{"purge": "p-1"}},
			histAttrs: "gormpurge.backend=cdn,gormpurge.outcome=ok",
		},
		{
			name:      "failed",
			end:       observe.AttemptEnd{Duration: 40 * time.Millisecond, Err: errors.New("503"), Class: observe.ClassTransient, Retry: true},
			histAttrs: "error.type=transient,gormpurge.backend=cdn,gormpurge.outcome=error",
			status:    sdktrace.Status{Code: codes.Error, Description: "503"},
		},
		{
			name:      "failed without a class",
			end:       observe.AttemptEnd{Duration: 40 * time.Millisecond, Err: errors.New("odd"), IDs: ids},
			histAttrs: "error.type=_OTHER,gormpurge.backend=cdn,gormpurge.outcome=error",
			status:    sdktrace.Status{Code: codes.Error, Description: "odd"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			_, end := h.obs.StartAttempt(context.Background(), observe.Attempt{Backend: "cdn", Number: 1, URLs: []string{"/a"}})
			end(tt.end)

			dur := h.collect(t)["gormpurge.purge.duration"]
			assert.Equal(t, "s", dur.Unit)
			dp := histogram(t, dur, tt.histAttrs)
			assert.Equal(t, uint64(1), dp.Count)
			assert.InDelta(t, 0.04, dp.Sum, 1e-9)
			assert.Equal(t, observe.DurationBuckets(), dp.Bounds)

			span := h.onlySpan(t, observe.SpanAttempt)
			assert.Equal(t, tt.status, span.Status())
			a := attrs(span)
			assert.Equal(t, tt.end.Retry, a[otelpurge.RetryKey].AsBool())
			assert.Equal(t, int64(len(tt.end.IDs)), a[otelpurge.IDCountKey].AsInt64())
			var idAttrs int
			for k, v := range a {
				if name, ok := strings.CutPrefix(string(k), otelpurge.IDPrefix); ok {
					idAttrs++
					assert.Equal(t, tt.end.IDs[name], v.AsString())
				}
			}
			assert.Equal(t, min(len(tt.end.IDs), otelpurge.MaxSampled), idAttrs)
		})
	}
}

func TestSettledRecordsTheLatency(t *testing.T) {
	h := newHarness(t)
	committed := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	h.obs.Settled(observe.Settled{Backend: "cdn", Origin: observe.Origin{Committed: committed}, Outcome: observe.Delivered, At: committed.Add(1500 * time.Millisecond)})
	h.obs.Settled(observe.Settled{Backend: "cdn", Origin: observe.Origin{Committed: committed}, Outcome: observe.Delivered, At: committed.Add(-time.Second)}) // clocks apart
	h.obs.Settled(observe.Settled{Backend: "cdn", Origin: observe.Origin{Committed: committed}, Outcome: observe.Dropped, At: committed.Add(time.Hour)})
	h.obs.Settled(observe.Settled{Backend: "cdn", Outcome: observe.Delivered, At: committed}) // no commit time: skipped

	lat := h.collect(t)["gormpurge.purge.latency"]
	assert.Equal(t, "s", lat.Unit)
	dp := histogram(t, lat, "gormpurge.backend=cdn,gormpurge.outcome=delivered")
	assert.Equal(t, uint64(2), dp.Count)
	assert.InDelta(t, 1.5, dp.Sum, 1e-9)
	assert.Equal(t, observe.LatencyBuckets(), dp.Bounds)
	dp = histogram(t, lat, "gormpurge.backend=cdn,gormpurge.outcome=dropped")
	assert.Equal(t, uint64(1), dp.Count)
	assert.InDelta(t, 3600, dp.Sum, 1e-9)
}

// Joined with other observers, the Observer's traceparent is the one the
// plugin gets.
func TestJoinKeepsTheTraceParent(t *testing.T) {
	h := newHarness(t)
	joined := observe.Join(observe.Nop{}, h.obs)
	_, tp, end := joined.StartHandoff(context.Background(), observe.Handoff{})
	end(observe.HandoffEnd{Outcome: observe.HandedOff})
	assert.Contains(t, tp, h.onlySpan(t, observe.SpanHandoff).SpanContext().SpanID().String())
}
