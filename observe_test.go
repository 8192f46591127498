package gormpurge_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/observe"
)

// handoffRecorder is an Observer that keeps the handoffs it is told of.
type handoffRecorder struct {
	observe.Nop
	mu      sync.Mutex
	started []handoffRecord
	sources []observe.Source
	panics  bool
}

type handoffRecord struct {
	parent any // the value of callerKey in the context StartHandoff got
	h      observe.Handoff
	end    *observe.HandoffEnd
}

type callerKey struct{}
type spanKey struct{}

func (r *handoffRecorder) Watch(s observe.Source) func() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sources = append(r.sources, s)
	return func() {}
}

func (r *handoffRecorder) StartHandoff(ctx context.Context, h observe.Handoff) (context.Context, string, func(observe.HandoffEnd)) {
	if r.panics {
		panic("observer panics")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started = append(r.started, handoffRecord{parent: ctx.Value(callerKey{}), h: h})
	i := len(r.started) - 1
	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	return context.WithValue(ctx, spanKey{}, i), tp, func(e observe.HandoffEnd) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.started[i].end = &e
	}
}

func (r *handoffRecorder) records() []handoffRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.started)
}

func (r *handoffRecorder) read(m observe.Metric, outcome string) float64 {
	r.mu.Lock()
	srcs := slices.Clone(r.sources)
	r.mu.Unlock()
	var v float64
	for _, s := range srcs {
		s(context.Background(), func(x observe.Reading) {
			if x.Metric == m && x.Outcome == outcome {
				v += x.Value
			}
		})
	}
	return v
}

// ctxSink records the context each request was handed off with.
type ctxSink struct {
	mu   sync.Mutex
	ctxs []context.Context
	err  error
}

func (s *ctxSink) Enqueue(ctx context.Context, _ backends.Request) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctxs = append(s.ctxs, ctx)
	return s.err
}

func observedDB(t *testing.T, sink gormpurge.Sink, obs observe.Observer) *gorm.DB {
	t.Helper()
	db := openSQLite(t, &Post{}, &outboxRow{})
	p := gormpurge.New(sink, gormpurge.WithObserver(obs), gormpurge.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, p.Register(&Post{}))
	require.NoError(t, db.Use(p))
	return db
}

func TestObserverStartsEachHandoffInTheTransactionsContext(t *testing.T) {
	obs := &handoffRecorder{}
	sink := &ctxSink{}
	db := observedDB(t, sink, obs)
	ctx := context.WithValue(context.Background(), callerKey{}, "request-42")
	before := time.Now()
	require.NoError(t, db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return tx.Create(&Post{Slug: "hello"}).Error
	}))

	recs := obs.records()
	require.Len(t, recs, 1)
	assert.Equal(t, "request-42", recs[0].parent, "the handoff starts in the context of the transaction")
	assert.Equal(t, []string{"/", "/posts/hello"}, recs[0].h.URLs)
	assert.False(t, recs[0].h.InTx)
	require.NotNil(t, recs[0].end)
	assert.Equal(t, observe.HandedOff, recs[0].end.Outcome)

	require.Len(t, sink.ctxs, 1)
	got := sink.ctxs[0]
	assert.Equal(t, 0, got.Value(spanKey{}), "the Sink gets the context StartHandoff returned")
	org, ok := observe.OriginFromContext(got)
	require.True(t, ok, "the Sink's context carries the handoff's origin")
	assert.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", org.TraceParent)
	assert.False(t, org.Committed.Before(before))
	assert.Equal(t, 1.0, obs.read(observe.Handoffs, observe.HandedOff))
}

func TestObserverSeesRefusedHandoffs(t *testing.T) {
	obs := &handoffRecorder{}
	db := observedDB(t, &ctxSink{err: errors.New("queue full")}, obs)
	require.NoError(t, db.Create(&Post{Slug: "refused"}).Error, "the write stands")
	recs := obs.records()
	require.Len(t, recs, 1)
	assert.Equal(t, observe.HandoffFailed, recs[0].end.Outcome)
	assert.ErrorContains(t, recs[0].end.Err, "queue full")
	assert.Equal(t, 1.0, obs.read(observe.Handoffs, observe.HandoffFailed))
	assert.Zero(t, obs.read(observe.Handoffs, observe.HandedOff))
}

func TestObserverSeesRequestsWrittenIntoTheTransaction(t *testing.T) {
	obs := &handoffRecorder{}
	sink := &originTxSink{tableSink: tableSink{kind: "sqlite"}}
	db := observedDB(t, sink, obs)
	require.NoError(t, db.Create(&Post{Slug: "in-tx"}).Error)

	sink.fail = true // the write fails: the request goes to Enqueue after the commit
	require.NoError(t, db.Create(&Post{Slug: "fallback"}).Error)

	recs := obs.records()
	require.Len(t, recs, 2)
	assert.True(t, recs[0].h.InTx)
	assert.Equal(t, observe.Written, recs[0].end.Outcome)
	assert.True(t, recs[1].h.InTx)
	assert.Equal(t, observe.HandedOff, recs[1].end.Outcome, "one handoff, ended once, by the fallback")
	require.Len(t, sink.origins, 2, "EnqueueTx got the origin, to write it into the row")
	assert.NotEmpty(t, sink.origins[0].TraceParent)
}

// originTxSink is a tableSink that keeps the origin each EnqueueTx got.
type originTxSink struct {
	tableSink
	origins []observe.Origin
}

func (s *originTxSink) EnqueueTx(ctx context.Context, tx gorm.ConnPool, r backends.Request) error {
	o, _ := observe.OriginFromContext(ctx)
	s.mu.Lock()
	s.origins = append(s.origins, o)
	s.mu.Unlock()
	return s.tableSink.EnqueueTx(ctx, tx, r)
}

func TestAPanickingObserverNeverFailsTheWrite(t *testing.T) {
	sink := &ctxSink{}
	db := observedDB(t, sink, &handoffRecorder{panics: true})
	require.NoError(t, db.Create(&Post{Slug: "still-purged"}).Error)
	require.Len(t, sink.ctxs, 1, "the request was handed off all the same")
}

func TestWithObserverNilIsRefused(t *testing.T) {
	for _, o := range []observe.Observer{nil, (*handoffRecorder)(nil)} {
		db := openSQLite(t, &Post{})
		err := db.Use(gormpurge.New(&ctxSink{}, gormpurge.WithObserver(o)))
		require.ErrorContains(t, err, "WithObserver(nil)")
	}
}

func TestObserverSeesSuspendedCommitsAndTheirResume(t *testing.T) {
	obs := &handoffRecorder{}
	sink := &ctxSink{}
	p := gormpurge.New(sink, gormpurge.WithObserver(obs), gormpurge.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, p.Register(&Post{}))
	db := openSQLite(t, &Post{})
	require.NoError(t, db.Use(p))

	ctx, job := p.Suspend(context.Background())
	for _, slug := range []string{"a", "b"} {
		require.NoError(t, db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			return tx.Create(&Post{Slug: slug}).Error
		}))
	}
	require.NoError(t, job.Resume())

	recs := obs.records()
	require.Len(t, recs, 3, "two commits held, then one handoff at Resume")
	assert.Equal(t, observe.Suspended, recs[0].end.Outcome)
	assert.Equal(t, observe.Suspended, recs[1].end.Outcome)
	assert.Equal(t, observe.HandedOff, recs[2].end.Outcome)
	assert.Len(t, recs[2].h.URLs, 3, "the merged request")
	assert.Equal(t, 2.0, obs.read(observe.Handoffs, observe.Suspended))
}
