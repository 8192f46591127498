package dispatcher

import (
	"github.com/gormpurge/gormpurge/backends"
)

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
