package observe

import (
	"cmp"
	"context"
	"reflect"
	"slices"
	"sync"
)

// Sources is the set of Sources an Observer watches, and the one way to
// add up their readings of one series: those with an Owner count once per
// Owner and are summed across Owners (two stores' entries, however many
// middlewares report each); of the others, counters are summed and a
// gauge's last reading is kept. Exporters implement
// [Observer.Watch] with [Sources.Watch] and read with [Sources.Read]. The
// zero value is ready to use; it is safe for concurrent use.
type Sources struct {
	mu     sync.Mutex
	list   []watchedSource
	nextID uint64
}

type watchedSource struct {
	id  uint64
	src Source
}

// Watch adds src until the returned function is called; a nil src is
// ignored.
func (s *Sources) Watch(src Source) (stop func()) {
	if src == nil {
		return func() {}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	id := s.nextID
	s.list = append(s.list, watchedSource{id: id, src: src})
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.list = slices.DeleteFunc(s.list, func(w watchedSource) bool { return w.id == id })
	}
}

// Len returns the number of Sources watched.
func (s *Sources) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.list)
}

// Series identifies one figure: a Metric and the attributes its Info
// names ("" for the others).
type Series struct {
	Metric           Metric
	Backend, Outcome string
}

// Figure is a Series and its value.
type Figure struct {
	Series
	Value float64
}

// Read calls every Source, in the order they were watched, stopping early
// when ctx ends, and returns their figures ordered by Metric then
// attributes. Readings of an unknown Metric are ignored, and so are
// attributes its Info does not name. A Source that adds after it returned
// is ignored too.
func (s *Sources) Read(ctx context.Context) []Figure {
	s.mu.Lock()
	list := slices.Clone(s.list)
	s.mu.Unlock()

	type owned struct {
		Series
		owner any
	}
	var (
		mu     sync.Mutex // a Source might add from goroutines of its own
		done   bool
		sums   = make(map[Series]float64)
		byOwn  = make(map[owned]float64)
		seen   = make(map[Series]bool)
		owners = make(map[Series]bool) // series with readings that have an Owner
		gauges = make(map[Series]float64)
	)
	add := func(r Reading) {
		info := r.Metric.Info()
		if info.Name == "" {
			return
		}
		k := Series{Metric: r.Metric}
		if slices.Contains(info.Attrs, "backend") {
			k.Backend = r.Backend
		}
		if slices.Contains(info.Attrs, "outcome") {
			k.Outcome = r.Outcome
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case done:
			return
		case r.Owner != nil && reflect.TypeOf(r.Owner).Comparable(): // else it cannot be a map key
			byOwn[owned{k, r.Owner}] = r.Value
			owners[k] = true
		case info.Kind == Gauge:
			gauges[k] = r.Value
		default:
			sums[k] += r.Value
		}
		seen[k] = true
	}
	for _, w := range list {
		if ctx.Err() != nil {
			break
		}
		w.src(ctx, add)
	}
	mu.Lock()
	done = true
	mu.Unlock()

	for k, v := range byOwn {
		sums[k.Series] += v
	}
	out := make([]Figure, 0, len(seen))
	for k := range seen {
		v, ok := gauges[k]
		if !ok || owners[k] {
			v = sums[k]
		}
		out = append(out, Figure{Series: k, Value: v})
	}
	slices.SortFunc(out, func(a, b Figure) int {
		return cmp.Or(cmp.Compare(a.Metric, b.Metric), cmp.Compare(a.Backend, b.Backend), cmp.Compare(a.Outcome, b.Outcome))
	})
	return out
}
