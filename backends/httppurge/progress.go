package httppurge

import (
	"maps"
	"slices"

	"github.com/gormpurge/gormpurge/backends"
)

// progressEntries bounds how many partly delivered requests a Backend
// remembers. When one is forgotten, its next retry goes to every node
// again, which is harmless: a purge can be repeated.
const progressEntries = 1024

// requestKey identifies one Request value: the arrays behind its slices and
// their lengths. The dispatcher retries a batch by passing the very same
// Request, so a retry has the key of the first attempt, while a later
// request for the same pages (built anew, after another commit) has a key
// of its own and goes to every node again, as it must. While an entry holds
// the pointers, the arrays cannot be freed and their addresses reused.
type requestKey struct {
	urls, tags   *string
	nURLs, nTags int
}

func keyOf(r backends.Request) requestKey {
	k := requestKey{nURLs: len(r.URLs), nTags: len(r.Tags)}
	if len(r.URLs) > 0 {
		k.urls = &r.URLs[0]
	}
	if len(r.Tags) > 0 {
		k.tags = &r.Tags[0]
	}
	return k
}

// progress is what earlier attempts at one request achieved on each node:
// the nodes that purged it, and those that failed for good. It is never
// modified once stored; a nil *progress is a first attempt.
type progress struct {
	req    backends.Request // the request it is about, to tell a reused buffer
	done   map[string]bool
	failed map[string]*NodeError
}

// of reports whether p is about r's objects (false for nil).
func (p *progress) of(r backends.Request) bool {
	return p != nil && slices.Equal(p.req.URLs, r.URLs) && slices.Equal(p.req.Tags, r.Tags)
}

// settled reports whether the node needs no further attempt.
func (p *progress) settled(key string) bool {
	if p == nil {
		return false
	}
	_, failed := p.failed[key]
	return p.done[key] || failed
}

// with returns p updated with this attempt's outcomes for r.
func (p *progress) with(r backends.Request, outs []nodeOutcome) *progress {
	next := &progress{req: r, done: map[string]bool{}, failed: map[string]*NodeError{}}
	if p != nil {
		maps.Copy(next.done, p.done)
		maps.Copy(next.failed, p.failed)
	}
	for _, o := range outs {
		switch {
		case o.err == nil:
			next.done[o.node.key] = true
		case !o.err.Temporary:
			next.failed[o.node.key] = o.err
		}
	}
	return next
}

// failures returns the permanent failures of earlier attempts on nodes that
// are still in the cluster.
func (p *progress) failures(nodes []*node) []error {
	if p == nil {
		return nil
	}
	var errs []error
	for _, n := range nodes {
		if e, ok := p.failed[n.key]; ok {
			errs = append(errs, e)
		}
	}
	return errs
}

// describe says what earlier attempts did on the node, for Result.IDs, and
// whether that was a failure; "" when they did not settle it.
func (p *progress) describe(key string) (string, bool) {
	switch {
	case p == nil:
		return "", false
	case p.done[key]:
		return "ok in an earlier attempt", false
	case p.failed[key] != nil:
		return "failed in an earlier attempt: " + p.failed[key].short(), true
	}
	return "", false
}
