package otelpurge_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/contrib/otelpurge"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/internal/testdb"
	"github.com/gormpurge/gormpurge/observe"
	"github.com/gormpurge/gormpurge/outbox"
	"github.com/gormpurge/gormpurge/purgetest"
)

// The writer process of TestOutboxDeliveryLinksToTheWritersTrace: these
// variables name its database; the test binary runs itself with them.
const (
	writerKindEnv = "OTELPURGE_TEST_WRITER_KIND"
	writerDSNEnv  = "OTELPURGE_TEST_WRITER_DSN"
)

// TestOutboxWriterProcess is the other process of
// TestOutboxDeliveryLinksToTheWritersTrace, and does nothing unless run as
// such: a traced request commits a change into the outbox, and the process
// prints its handoff span's trace and span ids, then exits without
// delivering anything.
func TestOutboxWriterProcess(t *testing.T) {
	kind, dsn := os.Getenv(writerKindEnv), os.Getenv(writerDSNEnv)
	if kind == "" {
		t.Skip("run by TestOutboxDeliveryLinksToTheWritersTrace as another process")
	}
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())
	obs, err := otelpurge.New(otelpurge.WithTracerProvider(tp))
	require.NoError(t, err)
	defer obs.Close(context.Background())

	db, err := gorm.Open(testdb.Dialector(kind, dsn), &gorm.Config{Logger: logger.Discard})
	require.NoError(t, err)
	defer func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	}()
	ob, err := outbox.New(db, outbox.WithoutListen())
	require.NoError(t, err)
	p := gormpurge.New(ob, gormpurge.WithBaseURL("https://www.example.com"), gormpurge.WithObserver(obs))
	require.NoError(t, p.Register(&article{}))
	require.NoError(t, db.Use(p))

	ctx, request := tp.Tracer("app").Start(context.Background(), "POST /articles")
	require.NoError(t, db.WithContext(ctx).Create(&article{Slug: "from-afar"}).Error)
	request.End()
	for _, s := range spans.Ended() {
		if s.Name() == observe.SpanHandoff {
			fmt.Printf("HANDOFF %s %s %s\n", s.SpanContext().TraceID(), s.SpanContext().SpanID(), request.SpanContext().TraceID())
		}
	}
}

// A change committed into the outbox by one process is delivered by a
// relay in another, and the delivery's span links to the handoff's span in
// the writer's trace: the link travels in the row.
func TestOutboxDeliveryLinksToTheWritersTrace(t *testing.T) {
	for _, kind := range testdb.Kinds {
		t.Run(kind, func(t *testing.T) {
			dsn := testdb.DSN(t, kind)
			db := testdb.OpenDSN(t, kind, dsn, &gorm.Config{Logger: logger.Discard})
			require.NoError(t, db.AutoMigrate(&article{}))
			ob, err := outbox.New(db, outbox.WithoutListen(), outbox.WithPollInterval(20*time.Millisecond))
			require.NoError(t, err)

			traceID, spanID, requestTrace := runWriter(t, kind, dsn)
			assert.Equal(t, requestTrace, traceID, "the writer's handoff is in its request's trace")

			h := newHarness(t)
			rec := purgetest.NewRecorder()
			d, err := dispatcher.New([]backends.Backend{rec}, dispatcher.WithObserver(h.obs))
			require.NoError(t, err)
			relay, err := ob.Relay(d)
			require.NoError(t, err)
			require.Eventually(t, func() bool { return len(rec.URLs()) == 2 }, 10*time.Second, 10*time.Millisecond)
			require.NoError(t, relay.Close(context.Background()))
			require.NoError(t, d.Close(context.Background()))

			call := h.onlySpan(t, observe.SpanAttempt)
			require.Len(t, call.Links(), 1)
			link := call.Links()[0].SpanContext
			assert.Equal(t, traceID, link.TraceID().String(), "the relay's call links to the writer's trace")
			assert.Equal(t, spanID, link.SpanID().String(), "and to its handoff span")
			assert.True(t, link.IsRemote())

			latency := h.collect(t)["gormpurge.purge.latency"]
			hist := histogram(t, latency, "gormpurge.backend=recorder,gormpurge.outcome=delivered")
			assert.Equal(t, uint64(1), hist.Count, "one handoff's commit-to-purge latency, counted from the row's write")
			assert.Less(t, hist.Sum, 60.0)
		})
	}
}

// runWriter runs TestOutboxWriterProcess in another process on the
// database dsn, and returns the trace and span ids of its handoff and the
// trace id of its request.
func runWriter(t *testing.T, kind, dsn string) (traceID, spanID, requestTrace string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOutboxWriterProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), writerKindEnv+"="+kind, writerDSNEnv+"="+dsn)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the writer process failed:\n%s", out)
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "HANDOFF" {
			return f[1], f[2], f[3]
		}
	}
	require.FailNow(t, "the writer process printed no handoff", "%s", out)
	return "", "", ""
}
