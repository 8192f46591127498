package dispatcher

import (
	"fmt"
	"slices"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/observe"
)

// item is one accepted request in a lane's queue. tk is the request's
// share of a Ticket, nil unless it came from Submit; sub is nil unless a
// layer (see admitter) queued something else than the request as handed
// off.
//
// The lane numbers items in the order it accepts them, and Flush waits on
// those numbers. The queue holds them without gaps, the newest being
// nextSeq-1, so an item's number is not stored: that keeps Enqueue's items
// small. For the same reason what only a substitute needs lives behind sub.
type item struct {
	req backends.Request
	tk  *ticketPart
	sub *substitute
	org *observe.Origin // the handoff's, for the Observer: nil without one
}

// substitute says how an item's request stands in for the request handed
// off: by tags that replace its URLs (req holds those tags and the
// handoff's own), or by a purge of everything (req is the handoff, which
// that purge subsumes).
type substitute struct {
	all  bool     // purge everything: the item's group becomes one batch calling PurgeAll
	tags []string // else the tags that replace the handoff's URLs, normalised
	// pages are URLs of the handoff that the substitute purges without
	// naming them, for the lane's observers: nil unless one wants them.
	pages []string
}

// group is the set of queued items one linger window merged. It settles when
// its last batch does.
type group struct {
	first uint64 // seq of the group's first item
	open  int    // batches not yet settled

	// Only for a group holding an item from Submit, nil otherwise; guarded
	// by lane.mu until open reaches 0.
	tickets []item     // the group's items, some with a ticket
	ends    []batchEnd // how each of its batches ended, settled or abandoned

	origins *originTrack // the handoffs of its items, for the Observer: nil without one
}

// batch is one call's worth of objects, cut to the backend's limits, or a
// purge of everything (all) that subsumes its group's objects, in req.
type batch struct {
	g   *group
	req backends.Request
	err error // set when the objects can never fit: fail without calling
	all bool  // call PurgeAll instead of Purge
	// pages are the URLs that the batch purges without naming them: those
	// of substitutes whose tags it holds (in via), or, for a purge of
	// everything, those of every request it subsumes.
	pages []string
	via   []string
	held  []int // indexes in g.origins of the handoffs whose objects it holds
}

// batches merges items, a group's, into batches: one purge of everything
// if an item asks for it, else the merged objects cut to the backend's
// limits. It returns them and the number of objects merged.
func (l *lane) batches(g *group, items []item) ([]*batch, int) {
	var (
		urls, tags []string
		all        bool
		offered    int
	)
	for _, it := range items {
		urls = append(urls, it.req.URLs...)
		tags = append(tags, it.req.Tags...)
		offered += it.req.Len()
		all = all || it.sub != nil && it.sub.all
	}
	merged := backends.NewRequest(urls, tags)
	l.n.coalesced.Add(uint64(offered - merged.Len()))
	if all {
		// One purge of everything, sent after every item of the group was
		// queued, covers them all.
		return []*batch{{g: g, req: merged, all: true, pages: pagesOfAll(items)}}, merged.Len()
	}
	bs := l.cutBatches(g, merged)
	attachPages(bs, items)
	return bs, merged.Len()
}

// pagesOfAll returns the pages a purge of everything subsuming items
// purges: each substitute's pages, and the URLs of the other requests.
func pagesOfAll(items []item) []string {
	var pages []string
	for _, it := range items {
		if it.sub != nil {
			pages = append(pages, it.sub.pages...)
		} else {
			pages = append(pages, it.req.URLs...)
		}
	}
	return backends.NewRequest(pages, nil).URLs
}

// attachPages gives the pages of the substitutes among items to the batch
// of bs that holds their first tag: they are purged when it is delivered.
func attachPages(bs []*batch, items []item) {
	for _, it := range items {
		if it.sub == nil || len(it.sub.pages) == 0 {
			continue
		}
		for _, b := range bs {
			if _, ok := slices.BinarySearch(b.req.Tags, it.sub.tags[0]); ok {
				b.pages = append(b.pages, it.sub.pages...)
				b.via = append(b.via, it.sub.tags...)
				break
			}
		}
	}
	for _, b := range bs {
		if b.pages != nil {
			b.pages = backends.NewRequest(b.pages, nil).URLs
			b.via = backends.NewRequest(nil, b.via).Tags
		}
	}
}

// cutBatches cuts merged, the objects of g, into batches.
func (l *lane) cutBatches(g *group, merged backends.Request) []*batch {
	parts, tooBig := cut(merged, l.limits, l.maxObjects)
	batches := make([]*batch, 0, len(parts)+len(tooBig))
	for _, p := range parts {
		batches = append(batches, &batch{g: g, req: p})
	}
	for _, p := range tooBig {
		err := backends.Permanent(fmt.Errorf("dispatcher: object of %d bytes exceeds backend %q's MaxBytes of %d",
			l.limits.SizeOf(p), l.name, l.limits.MaxBytes))
		batches = append(batches, &batch{g: g, req: p, err: err})
	}
	return batches
}

// purgedPages returns the URLs whose pages b, which ended as end says,
// purged: all of its own and its pages, but none that failed, and none of
// its pages if one of the tags they depend on failed. For a purge of
// everything, its pages hold them all.
func (b *batch) purgedPages(end *batchEnd) []string {
	switch {
	case end.outcome == Delivered && b.all:
		return b.pages
	case end.outcome == Delivered && len(b.pages) == 0:
		return b.req.URLs
	case end.outcome == Delivered:
		return backends.NewRequest(slices.Concat(b.req.URLs, b.pages), nil).URLs
	case end.outcome == Failed && end.partial:
		var urls []string
		for _, u := range b.req.URLs {
			if !end.fails(objKey{s: u}) {
				urls = append(urls, u)
			}
		}
		if !slices.ContainsFunc(b.via, func(t string) bool { return end.fails(objKey{tag: true, s: t}) }) {
			urls = append(urls, b.pages...)
		}
		return backends.NewRequest(urls, nil).URLs
	default:
		return nil
	}
}

// cut splits r into requests that each satisfy lim and hold at most
// maxObjects objects (0: no cap of its own), keeping r's order: URLs first,
// then tags. Objects that do not fit lim even alone are returned one by one
// in tooBig.
//
// With a custom lim.Size, cut assumes that a request's size grows with its
// objects, and finds each batch's length by binary search, so it calls Size
// O(log n) times per batch.
func cut(r backends.Request, lim backends.Limits, maxObjects int) (parts, tooBig []backends.Request) {
	n := r.Len()
	for i := 0; i < n; {
		hi := n - i
		if maxObjects > 0 {
			hi = min(hi, maxObjects)
		}
		if lim.Fits(span(r, i, i+hi)) {
			parts = append(parts, span(r, i, i+hi))
			i += hi
			continue
		}
		// Largest k in [0, hi) such that span(i, i+k) fits: 0 always
		// does, hi does not.
		lo := 0
		for hi-lo > 1 {
			mid := lo + (hi-lo)/2
			if lim.Fits(span(r, i, i+mid)) {
				lo = mid
			} else {
				hi = mid
			}
		}
		if lo == 0 {
			tooBig = append(tooBig, span(r, i, i+1))
			i++
			continue
		}
		parts = append(parts, span(r, i, i+lo))
		i += lo
	}
	return parts, tooBig
}

// span returns objects [from, to) of r, counting URLs then tags. The
// result shares r's arrays, capped so that appending to it cannot write
// into r.
func span(r backends.Request, from, to int) backends.Request {
	nu := len(r.URLs)
	var out backends.Request
	if from < nu {
		end := min(to, nu)
		out.URLs = r.URLs[from:end:end]
	}
	if to > nu {
		start := max(from-nu, 0)
		out.Tags = r.Tags[start : to-nu : to-nu]
	}
	return out
}
