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
