package otelpurge

import (
	"context"
	"encoding/hex"
	"slices"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/observe"
)

// Bounds on what a span carries.
const (
	// MaxSampled is how many URLs, tags and backend ids a span names; its
	// count attributes tell how many there were.
	MaxSampled = 20
	// MaxLinks is how many handoffs a call's span links to; the
	// "gormpurge.links.dropped" attribute counts the others.
	MaxLinks = 128
)

// Span attribute keys.
const (
	URLCountKey     = attribute.Key("gormpurge.url.count")     // how many URLs a handoff or call names
	TagCountKey     = attribute.Key("gormpurge.tag.count")     // how many tags a handoff or call names
	URLsKey         = attribute.Key("gormpurge.urls")          // the first MaxSampled URLs, redacted (backends.RedactURL)
	TagsKey         = attribute.Key("gormpurge.tags")          // the first MaxSampled tags
	InTxKey         = attribute.Key("gormpurge.in_tx")         // the handoff was written inside the transaction
	AttemptKey      = attribute.Key("gormpurge.attempt")       // the call's number for its batch, from 1
	ObjectCountKey  = attribute.Key("gormpurge.object.count")  // URLs plus tags of a call
	AllKey          = attribute.Key("gormpurge.all")           // the call purges everything the backend caches
	HandoffCountKey = attribute.Key("gormpurge.handoff.count") // how many handoffs a call's batch carries
	LinksDroppedKey = attribute.Key("gormpurge.links.dropped") // traced handoffs beyond MaxLinks
	RetryKey        = attribute.Key("gormpurge.retry")         // another call will follow this failed one
	IDCountKey      = attribute.Key("gormpurge.id.count")      // how many ids the backend returned
	IDPrefix        = "gormpurge.ids."                         // followed by an id's name, for the first MaxSampled ids
)

// Outcomes of a call, the gormpurge.outcome attribute of the duration
// histogram.
const (
	OutcomeOK    = "ok"
	OutcomeError = "error"
)

// StartHandoff starts the handoff's span, a child of the span in ctx, and
// returns a context holding it, its W3C traceparent ("" when it has no
// valid span context) and the function that ends it.
func (o *Observer) StartHandoff(ctx context.Context, h observe.Handoff) (context.Context, string, func(observe.HandoffEnd)) {
	ctx, span := o.tracer.Start(ctx, observe.SpanHandoff,
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(
			URLCountKey.Int(len(h.URLs)),
			TagCountKey.Int(len(h.Tags)),
			InTxKey.Bool(h.InTx),
		))
	if span.IsRecording() {
		span.SetAttributes(samples(h.URLs, h.Tags)...)
	}
	return ctx, traceParent(ctx), func(e observe.HandoffEnd) {
		span.SetAttributes(OutcomeKey.String(e.Outcome))
		if e.Outcome == observe.HandoffFailed || e.Outcome == observe.Aborted {
			desc := e.Outcome
			if e.Err != nil {
				span.RecordError(e.Err)
				desc = e.Err.Error()
			}
			span.SetStatus(codes.Error, desc)
		}
		span.End()
	}
}

// traceParent returns the W3C traceparent of ctx's span, "" when its span
// context is not valid. It is what propagation.TraceContext injects, without
// its carrier.
func traceParent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	const hexDigits = "0123456789abcdef"
	b := make([]byte, 0, 55)
	b = append(b, "00-"...)
	b = hex.AppendEncode(b, tid[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, sid[:])
	flags := byte(sc.TraceFlags() & trace.FlagsSampled)
	b = append(b, '-', hexDigits[flags>>4], hexDigits[flags&0xf])
	return string(b)
}

// StartAttempt starts the span of a call to a backend, a child of the span
// in ctx if any, linked to the span of each handoff a.Origins names, and
// returns a context holding it and the function that ends it and records
// the call's duration.
func (o *Observer) StartAttempt(ctx context.Context, a observe.Attempt) (context.Context, func(observe.AttemptEnd)) {
	links, dropped := originLinks(a.Origins)
	attrs := []attribute.KeyValue{
		BackendKey.String(a.Backend),
		AttemptKey.Int(a.Number),
		ObjectCountKey.Int(len(a.URLs) + len(a.Tags)),
		URLCountKey.Int(len(a.URLs)),
		TagCountKey.Int(len(a.Tags)),
		AllKey.Bool(a.All),
		HandoffCountKey.Int(len(a.Origins)),
	}
	if dropped > 0 {
		attrs = append(attrs, LinksDroppedKey.Int(dropped))
	}
	ctx, span := o.tracer.Start(ctx, observe.SpanAttempt,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithLinks(links...),
		trace.WithAttributes(attrs...))
	if span.IsRecording() {
		span.SetAttributes(samples(a.URLs, a.Tags)...)
	}
	return ctx, func(e observe.AttemptEnd) {
		o.endAttempt(ctx, span, a.Backend, e)
	}
}

func (o *Observer) endAttempt(ctx context.Context, span trace.Span, backend string, e observe.AttemptEnd) {
	outcome := OutcomeOK
	class := ""
	if e.Err != nil {
		outcome = OutcomeError
		class = e.Class
		if class == "" {
			class = observe.ClassOther
		}
		span.SetAttributes(ErrorTypeKey.String(class))
		span.RecordError(e.Err)
		span.SetStatus(codes.Error, e.Err.Error())
	}
	o.duration.Record(ctx, e.Duration.Seconds(), o.sets.get(backend, outcome, class))

	if span.IsRecording() {
		span.SetAttributes(OutcomeKey.String(outcome), RetryKey.Bool(e.Retry), IDCountKey.Int(len(e.IDs)))
		span.SetAttributes(idAttributes(e.IDs)...)
	}
	span.End()
}

// Settled records the handoff's commit-to-purge latency in the latency
// histogram. A handoff with no commit time is skipped; a negative latency
// (clocks of two hosts apart) is recorded as 0.
func (o *Observer) Settled(s observe.Settled) {
	if s.Origin.Committed.IsZero() || s.At.IsZero() {
		return
	}
	latency := max(s.At.Sub(s.Origin.Committed), 0)
	o.latency.Record(context.Background(), latency.Seconds(), o.sets.get(s.Backend, s.Outcome, ""))
}

// originLinks returns a link to each distinct traced handoff, up to
// MaxLinks, and how many handoffs it left out once it had as many (which
// may count one trace twice: it no longer looks).
func originLinks(origins []observe.Origin) ([]trace.Link, int) {
	if len(origins) == 0 {
		return nil, 0
	}
	var (
		links []trace.Link
		seen  = make(map[string]struct{}, min(len(origins), MaxLinks))
	)
	for i, org := range origins {
		if org.TraceParent == "" {
			continue
		}
		if _, dup := seen[org.TraceParent]; dup {
			continue
		}
		if len(links) == MaxLinks {
			return links, len(origins) - i
		}
		seen[org.TraceParent] = struct{}{}
		if sc := parseTraceParent(org.TraceParent); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	return links, 0
}

// parseTraceParent returns the remote span context of a version 00 W3C
// traceparent, as propagation.TraceContext extracts it; an invalid one when
// it cannot be parsed.
func parseTraceParent(tp string) trace.SpanContext {
	if len(tp) != 55 || tp[:3] != "00-" || tp[35] != '-' || tp[52] != '-' {
		return trace.SpanContext{}
	}
	tid, err := trace.TraceIDFromHex(tp[3:35])
	if err != nil {
		return trace.SpanContext{}
	}
	sid, err := trace.SpanIDFromHex(tp[36:52])
	if err != nil {
		return trace.SpanContext{}
	}
	flags, err := hex.DecodeString(tp[53:])
	if err != nil {
		return trace.SpanContext{}
	}
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.TraceFlags(flags[0]) & trace.FlagsSampled, Remote: true,
	})
}

// samples returns the first MaxSampled URLs, redacted as in logs
// (backends.RedactURL), and tags as attributes.
func samples(urls, tags []string) []attribute.KeyValue {
	var kvs []attribute.KeyValue
	if len(urls) > 0 {
		sample := make([]string, min(len(urls), MaxSampled))
		for i := range sample {
			sample[i] = backends.RedactURL(urls[i]) // a query value or a user may be a secret
		}
		kvs = append(kvs, URLsKey.StringSlice(sample))
	}
	if len(tags) > 0 {
		kvs = append(kvs, TagsKey.StringSlice(tags[:min(len(tags), MaxSampled)]))
	}
	return kvs
}

// idAttributes returns the first MaxSampled ids, by name, as attributes.
func idAttributes(ids map[string]string) []attribute.KeyValue {
	if len(ids) == 0 {
		return nil
	}
	names := make([]string, 0, len(ids))
	for name := range ids {
		names = append(names, name)
	}
	slices.Sort(names)
	names = names[:min(len(names), MaxSampled)]
	kvs := make([]attribute.KeyValue, 0, len(names))
	for _, name := range names {
		kvs = append(kvs, attribute.String(IDPrefix+name, ids[name]))
	}
	return kvs
}

// attrSets keeps the attribute sets of the histograms' series, so that
// recording a value does not build one each time. The series are few: a
// backend, an outcome and an error class.
type attrSets struct{ m sync.Map } // attrSetKey -> metric.MeasurementOption

type attrSetKey struct{ backend, outcome, class string }

// get returns the option that records with the attributes backend,
// outcome and, when not "", class (error.type).
func (a *attrSets) get(backend, outcome, class string) metric.MeasurementOption {
	k := attrSetKey{backend, outcome, class}
	if opt, ok := a.m.Load(k); ok {
		return opt.(metric.MeasurementOption)
	}
	kvs := []attribute.KeyValue{BackendKey.String(backend), OutcomeKey.String(outcome)}
	if class != "" {
		kvs = append(kvs, ErrorTypeKey.String(class))
	}
	opt, _ := a.m.LoadOrStore(k, metric.WithAttributeSet(attribute.NewSet(kvs...)))
	return opt.(metric.MeasurementOption)
}
