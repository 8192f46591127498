package observe

import "context"

// Join returns an Observer that passes everything to each of obs, in
// order: for example OpenTelemetry spans and a Prometheus collector. Nil
// observers are skipped; with one left, Join returns it. The traceparent of
// a handoff is the first non-empty one.
func Join(obs ...Observer) Observer {
	var list multi
	for _, o := range obs {
		if o != nil {
			list = append(list, o)
		}
	}
	switch len(list) {
	case 0:
		return Nop{}
	case 1:
		return list[0]
	}
	return list
}

type multi []Observer

func (m multi) Watch(s Source) func() {
	stops := make([]func(), len(m))
	for i, o := range m {
		stops[i] = o.Watch(s)
	}
	return func() {
		for _, stop := range stops {
			stop()
		}
	}
}

func (m multi) StartHandoff(ctx context.Context, h Handoff) (context.Context, string, func(HandoffEnd)) {
	ends := make([]func(HandoffEnd), len(m))
	var parent string
	for i, o := range m {
		var tp string
		ctx, tp, ends[i] = o.StartHandoff(ctx, h)
		if parent == "" {
			parent = tp
		}
	}
	return ctx, parent, func(e HandoffEnd) {
		for i := len(ends) - 1; i >= 0; i-- {
			ends[i](e)
		}
	}
}

func (m multi) StartAttempt(ctx context.Context, a Attempt) (context.Context, func(AttemptEnd)) {
	ends := make([]func(AttemptEnd), len(m))
	for i, o := range m {
		ctx, ends[i] = o.StartAttempt(ctx, a)
	}
	return ctx, func(e AttemptEnd) {
		for i := len(ends) - 1; i >= 0; i-- {
			ends[i](e)
		}
	}
}

func (m multi) Settled(s Settled) {
	for _, o := range m {
		o.Settled(s)
	}
}
