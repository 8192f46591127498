package observe_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/gormpurge/gormpurge/observe"
)

// tracer is an Observer that names itself in what it returns.
type tracer struct {
	observe.Nop
	tp   string
	log  *[]string
	name string
}

type nameKey struct{}

func (o tracer) StartHandoff(ctx context.Context, _ observe.Handoff) (context.Context, string, func(observe.HandoffEnd)) {
	*o.log = append(*o.log, "start "+o.name)
	return context.WithValue(ctx, nameKey{}, o.name), o.tp, func(e observe.HandoffEnd) { *o.log = append(*o.log, "end "+o.name+" "+e.Outcome) }
}

func (o tracer) Settled(s observe.Settled) { *o.log = append(*o.log, "settled "+o.name+" "+s.Backend) }

func TestJoinFeedsEveryObserver(t *testing.T) {
	var log []string
	o := observe.Join(nil, tracer{name: "prom", log: &log}, tracer{name: "otel", tp: "00-tp", log: &log})
	ctx, tp, end := o.StartHandoff(context.Background(), observe.Handoff{})
	assert.Equal(t, "00-tp", tp, "the first non-empty traceparent")
	assert.Equal(t, "otel", ctx.Value(nameKey{}), "each observer gets the context the previous one returned")
	end(observe.HandoffEnd{Outcome: observe.HandedOff})
	o.Settled(observe.Settled{Backend: "cdn"})
	assert.Equal(t, []string{"start prom", "start otel", "end otel handed_off", "end prom handed_off", "settled prom cdn", "settled otel cdn"}, log)

	assert.Equal(t, observe.Nop{}, observe.Join(), "nothing to join")
	one := tracer{name: "one", log: &log}
	assert.Equal(t, observe.Observer(one), observe.Join(nil, one))
}

// sloppy is an Observer that returns nil where it may, or panics.
type sloppy struct {
	observe.Nop
	panics bool
}

func (s *sloppy) StartHandoff(context.Context, observe.Handoff) (context.Context, string, func(observe.HandoffEnd)) {
	if s.panics {
		panic("sloppy observer")
	}
	return nil, "", nil
}

func (s *sloppy) Settled(observe.Settled) {
	if s.panics {
		panic("sloppy observer")
	}
}

func TestJoinSurvivesSloppyObservers(t *testing.T) {
	var log []string
	good := tracer{name: "good", tp: "00-tp", log: &log}
	var typedNil *sloppy
	assert.Equal(t, observe.Observer(good), observe.Join(typedNil, good), "a typed nil is skipped")

	o := observe.Join(&sloppy{}, good)
	ctx, tp, end := o.StartHandoff(context.Background(), observe.Handoff{})
	assert.NotNil(t, ctx, "a nil context returned is not passed on")
	assert.Equal(t, "00-tp", tp)
	assert.NotPanics(t, func() { end(observe.HandoffEnd{Outcome: observe.HandedOff}) }, "a nil end function is skipped")

	log = nil
	o = observe.Join(&sloppy{panics: true}, good)
	var end2 func(observe.HandoffEnd)
	assert.NotPanics(t, func() { _, _, end2 = o.StartHandoff(context.Background(), observe.Handoff{}) })
	assert.PanicsWithValue(t, "sloppy observer", func() { end2(observe.HandoffEnd{Outcome: observe.HandedOff}) },
		"the panic is raised once the others' spans are ended")
	assert.Equal(t, []string{"start good", "end good handed_off"}, log)
	assert.PanicsWithValue(t, "sloppy observer", func() { o.Settled(observe.Settled{Backend: "cdn"}) })
	assert.Equal(t, "settled good cdn", log[len(log)-1], "the other observer was told first")
}
