package dispatcher

import (
	"iter"
	"slices"

	"github.com/gormpurge/gormpurge/backends"
)

// batchEnd is how one batch ended, as the lane's observers see it and as a
// group holding tickets keeps it to settle them.
type batchEnd struct {
	req      backends.Request
	outcome  Outcome // Dropped for a batch abandoned at Close
	err      error   // nil for Dropped: leftovers supplies it
	attempts int
	result   backends.Result
	// When partial, the batch failed and failed holds the objects of req
	// that its error names, normalised; the others were delivered.
	partial bool
	failed  backends.Request
}

// fails reports whether the object k of e's batch failed, e having
// failed.
func (e *batchEnd) fails(k objKey) bool {
	if !e.partial {
		return true
	}
	list := e.failed.URLs
	if k.tag {
		list = e.failed.Tags
	}
	_, found := slices.BinarySearch(list, k.s)
	return found
}

// objKey identifies an object: a URL, or a tag when tag is set.
type objKey struct {
	tag bool
	s   string
}

// severity orders outcomes for a request whose objects ended differently:
// one object failed for good decides, then one dropped.
func severity(o Outcome) int {
	switch o {
	case Failed:
		return 2
	case Dropped:
		return 1
	default:
		return 0
	}
}

// settleTickets settles the tickets of g's items from how g's batches
// ended; dropErr is the error of abandoned batches. It runs without the
// lane's lock, once nothing writes to g.
func (l *lane) settleTickets(g *group, dropErr error) {
	if dropErr == nil {
		dropErr = ErrClosed
	}
	// where says which batch holds each object; with one batch, there is
	// no need to look.
	var where map[objKey]int
	if len(g.ends) > 1 {
		n := 0
		for _, e := range g.ends {
			n += e.req.Len()
		}
		where = make(map[objKey]int, n)
		for i, e := range g.ends {
			for _, u := range e.req.URLs {
				where[objKey{s: u}] = i
			}
			for _, t := range e.req.Tags {
				where[objKey{tag: true, s: t}] = i
			}
		}
	}
	for _, it := range g.tickets {
		if it.tk != nil {
			o, objects := l.outcomeOf(it.req, g.ends, where, dropErr)
			if objects != nil && it.sub != nil && !it.sub.all {
				objects = replacedEnds(it.tk.t.asked, it.req, objects)
			}
			it.tk.settleObjects(o, objects)
		}
	}
}

// outcomeOf returns how the batches in ends settled r, whose objects they
// hold, and how each object of r that was not delivered ended (nil when
// all ended alike); where maps each object to its batch when there are
// several.
func (l *lane) outcomeOf(r backends.Request, ends []batchEnd, where map[objKey]int, dropErr error) (BackendOutcome, map[objKey]objEnd) {
	if len(ends) == 1 && !ends[0].partial {
		return l.outcomeFrom(ends, 0, ends[0].outcome, dropErr), nil
	}
	var (
		seen    bool
		worst   = Delivered // for an empty request
		decided = -1        // index in ends of the batch that decides
		objects map[objKey]objEnd
	)
	for k := range keys(r) {
		i, o := locate(k, ends, where)
		if !seen || severity(o) > severity(worst) {
			seen, worst, decided = true, o, i
		}
		if o == Delivered {
			continue
		}
		if objects == nil {
			objects = make(map[objKey]objEnd)
		}
		e := objEnd{outcome: o, err: dropErr}
		if o == Failed {
			e.err = ends[i].err
		}
		objects[k] = e
	}
	return l.outcomeFrom(ends, decided, worst, dropErr), objects
}

// replacedEnds adds to objects, how the objects of a lane's request r
// ended, an end for each object of asked that r does not hold: the worst
// end of r's objects that asked does not hold, the request that replaced
// them.
func replacedEnds(asked, r backends.Request, objects map[objKey]objEnd) map[objKey]objEnd {
	held := func(list []string, s string) bool { _, ok := slices.BinarySearch(list, s); return ok }
	var repl objEnd
	for k := range keys(r) {
		if k.tag && held(asked.Tags, k.s) || !k.tag && held(asked.URLs, k.s) {
			continue
		}
		if e, ok := objects[k]; ok && severity(e.outcome) > severity(repl.outcome) {
			repl = e
		}
	}
	if repl.outcome == 0 {
		return objects // the replacement was delivered
	}
	for k := range keys(asked) {
		if k.tag && !held(r.Tags, k.s) || !k.tag && !held(r.URLs, k.s) {
			objects[k] = repl
		}
	}
	return objects
}

// locate returns the index in ends of the batch holding k, or -1 if none
// does, and how k ended in it.
func locate(k objKey, ends []batchEnd, where map[objKey]int) (int, Outcome) {
	i := 0
	if where != nil {
		var ok bool
		if i, ok = where[k]; !ok {
			return -1, Dropped
		}
	}
	if i >= len(ends) {
		return -1, Dropped
	}
	if e := &ends[i]; e.outcome != Failed || e.fails(k) {
		return i, e.outcome
	}
	return i, Delivered // not among the objects a partial failure names
}

// keys yields r's objects.
func keys(r backends.Request) iter.Seq[objKey] {
	return func(yield func(objKey) bool) {
		for _, u := range r.URLs {
			if !yield(objKey{s: u}) {
				return
			}
		}
		for _, t := range r.Tags {
			if !yield(objKey{tag: true, s: t}) {
				return
			}
		}
	}
}

// outcomeFrom returns outcome o for a request, with the attempts and
// result of ends[i], the batch that decided it (none when i < 0).
func (l *lane) outcomeFrom(ends []batchEnd, i int, o Outcome, dropErr error) BackendOutcome {
	bo := BackendOutcome{Backend: l.name, Outcome: o}
	if i >= 0 {
		bo.Attempts, bo.Result = ends[i].attempts, ends[i].result
	}
	switch {
	case o == Dropped:
		bo.Err = dropErr
	case o == Failed:
		bo.Err = ends[i].err
	}
	return bo
}

// intersect returns the objects of f that r holds, normalised. r must be
// normalised, as every batch is.
func intersect(r, f backends.Request) backends.Request {
	var urls, tags []string
	for _, u := range f.URLs {
		if _, ok := slices.BinarySearch(r.URLs, u); ok {
			urls = append(urls, u)
		}
	}
	for _, t := range f.Tags {
		if _, ok := slices.BinarySearch(r.Tags, t); ok {
			tags = append(tags, t)
		}
	}
	return backends.NewRequest(urls, tags)
}
