package main

import (
	"github.com/gormpurge/gormpurge/backends"
)

// dryRun fills in what a dry run with backend b shows of objects: the
// list, the Host headers each URL is purged with (HTTP caches) or what
// each object is sent as (CDNs), and about how many requests it takes.
func (r *purgeReport) dryRun(b *builtBackend, objects []string) {
	r.DryRun = true
	r.List = objects
	if b.hostsOf != nil {
		r.Hosts = map[string][]string{}
		for _, obj := range objects {
			r.Hosts[obj] = b.hostsOf(obj)
		}
	}
	if b.sentAs != nil {
		for _, obj := range objects {
			if sent := b.sentAs(r.kind, obj); sent != nil {
				if r.SentAs == nil {
					r.SentAs = map[string][]string{}
				}
				r.SentAs[obj] = sent
			}
		}
	}
	if b.estimate != nil {
		r.EstimatedRequests, r.PerNode = b.estimate(r.kind, objects)
	} else {
		r.EstimatedRequests = len(objects)
	}
}

// countBatches returns how many batches the dispatcher cuts objects into
// of kind for limits l: it packs them greedily, as the dispatcher does, finding
// each batch's end by doubling and bisection so that a long list costs
// few calls of l.Fits.
func countBatches(l backends.Limits, kind purgeKind, objects []string) int {
	fits := func(s []string) bool {
		if kind == kindTags {
			return l.Fits(backends.Request{Tags: s})
		}
		return l.Fits(backends.Request{URLs: s})
	}
	n := 0
	for i := 0; i < len(objects); n++ {
		rest := objects[i:]
		good, step := 1, 1 // a batch always takes at least one object
		for good < len(rest) && fits(rest[:min(good+step, len(rest))]) {
			good = min(good+step, len(rest))
			step *= 2
		}
		if good < len(rest) {
			bad := min(good+step, len(rest)) // does not fit
			for bad-good > 1 {
				mid := (good + bad) / 2
				if fits(rest[:mid]) {
					good = mid
				} else {
					bad = mid
				}
			}
		}
		i += good
	}
	return n
}
