package backends

import (
	"slices"
)

// Request says what to purge: URLs (absolute http(s) URLs or site-relative
// paths beginning with "/") and cache tags (surrogate keys).
//
// The plugin, the dispatcher and the outbox hand backends Requests whose
// objects are in canonical form ([CanonicalURL], [CanonicalTag]), so that
// every backend receives the same names for the same page. A Request built
// by hand is brought to that form by [CanonicalRequest]; backends called
// directly apply the same rules and refuse what has none.
//
// A Request built with [NewRequest] or [Request.Merge] is normalised: each list
// is sorted and holds no duplicates or empty strings, so equal Requests compare
// equal and backends can batch deterministically. The zero value is an empty
// Request. A Request is a plain value; do not modify its slices after handing
// it to a Sink or Backend.
type Request struct {
	// URLs are the pages to purge.
	URLs []string `json:"urls,omitempty"`
	// Tags are cache tags or surrogate keys to purge.
	Tags []string `json:"tags,omitempty"`
}

// NewRequest returns a normalised Request holding copies of urls and tags:
// sorted, deduplicated, without empty strings.
func NewRequest(urls, tags []string) Request {
	return Request{URLs: normalise(urls), Tags: normalise(tags)}
}

// Empty reports whether r purges nothing.
func (r Request) Empty() bool { return len(r.URLs) == 0 && len(r.Tags) == 0 }

// Len returns the number of objects in r: URLs plus tags.
func (r Request) Len() int { return len(r.URLs) + len(r.Tags) }

// Merge returns the normalised union of r and o. Neither is modified.
func (r Request) Merge(o Request) Request {
	return Request{
		URLs: normalise(slices.Concat(r.URLs, o.URLs)),
		Tags: normalise(slices.Concat(r.Tags, o.Tags)),
	}
}

// normalise returns a sorted copy of in without duplicates or empty strings,
// or nil when nothing is left.
func normalise(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil
	}
	slices.Sort(out)
	return slices.Compact(out)
}
