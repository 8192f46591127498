package otelpurge_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/contrib/otelpurge"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/observe"
	"github.com/gormpurge/gormpurge/purgetest"
)

// article is a model with a page of its own and a cache tag.
type article struct {
	ID   uint
	Slug string
}

func (a *article) AbsoluteURL() string      { return "/articles/" + a.Slug }
func (a *article) DependentPaths() []string { return []string{"/articles"} }
func (a *article) PurgeTags() []string      { return []string{"articles"} }

// A write committed in a traced request is purged in the same trace: the
// handoff's span is a child of the request's, the call to the backend
// links to it, and the metrics count the objects and the latency.
func TestCommitToPurgeIsTracedAndMeasured(t *testing.T) {
	h := newHarness(t)
	rec := purgetest.NewRecorder()
	d, err := dispatcher.New([]backends.Backend{rec}, dispatcher.WithObserver(h.obs))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, d.Close(context.Background())) })

	p := gormpurge.New(d, gormpurge.WithBaseURL("https://www.example.com"), gormpurge.WithObserver(h.obs))
	require.NoError(t, p.Register(&article{}))
	db, err := gorm.Open(sqlite.Open(filepath.Join(t.TempDir(), "test.db")), &gorm.Config{Logger: logger.Discard})
	require.NoError(t, err)
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	require.NoError(t, db.Use(p))
	require.NoError(t, db.AutoMigrate(&article{}))

	ctx, request := h.tp.Tracer("app").Start(context.Background(), "POST /articles")
	err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return tx.Create(&article{Slug: "hello"}).Error
	})
	require.NoError(t, err)
	request.End()
	require.NoError(t, d.Flush(context.Background()))
	require.ElementsMatch(t, []string{"https://www.example.com/articles", "https://www.example.com/articles/hello"}, rec.URLs())

	handoff := h.onlySpan(t, observe.SpanHandoff)
	assert.Equal(t, request.SpanContext().TraceID(), handoff.SpanContext().TraceID(), "the handoff is in the request's trace")
	assert.Equal(t, request.SpanContext().SpanID(), handoff.Parent().SpanID(), "the handoff is a child of the request's span")
	assert.Equal(t, observe.HandedOff, attrs(handoff)[otelpurge.OutcomeKey].AsString())

	call := h.onlySpan(t, observe.SpanAttempt)
	assert.Equal(t, trace.SpanKindClient, call.SpanKind())
	assert.Equal(t, "recorder", attrs(call)[otelpurge.BackendKey].AsString())
	require.Len(t, call.Links(), 1)
	assert.Equal(t, handoff.SpanContext().TraceID(), call.Links()[0].SpanContext.TraceID())
	assert.Equal(t, handoff.SpanContext().SpanID(), call.Links()[0].SpanContext.SpanID(), "the call links to the handoff")

	got := h.collect(t)
	assert.Equal(t, 3.0, points(t, got["gormpurge.purge.objects"])["gormpurge.backend=recorder,gormpurge.outcome=delivered"],
		"two URLs and a tag delivered")
	assert.Equal(t, 1.0, points(t, got["gormpurge.handoffs"])["gormpurge.outcome=handed_off"])
	latency := got["gormpurge.purge.latency"]
	assert.Equal(t, "s", latency.Unit)
	assert.Equal(t, uint64(1), histogram(t, latency, "gormpurge.backend=recorder,gormpurge.outcome=delivered").Count)
	duration := got["gormpurge.purge.duration"]
	assert.Equal(t, "s", duration.Unit)
	assert.Equal(t, uint64(1), histogram(t, duration, "gormpurge.backend=recorder,gormpurge.outcome=ok").Count)
}
