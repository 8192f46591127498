package akamai

import (
	"github.com/gormpurge/gormpurge/backends"
)

// size returns an upper bound of the body size of r's largest request,
// exact when r holds no duplicates across schemes. It stops counting once
// past the body limit.
func (b *Backend) size(r backends.Request) int {
	limit := b.maxBody + 1
	n := 0
	if len(r.URLs) > 0 {
		n = len(bodyOpen) + len(bodyClose) - 1
		for _, u := range r.URLs {
			c, err := backends.CanonicalURL(u)
			switch {
			case err != nil: // refused, never sent
			case c[0] == '/':
				for _, h := range b.hostnames {
					n += 1 + jsonLen(c) + len("https://") + len(h)
				}
			default:
				n += 1 + jsonLen(httpsForm(c))
			}
			if n > limit {
				return n
			}
		}
	}
	if len(r.Tags) > 0 {
		n = max(n, bodyLen(r.Tags, limit))
	}
	return n
}

// objects returns the objects of kind in r as they will be sent, and those
// that cannot be sent.
func (b *Backend) objects(kind Kind, r backends.Request) (ok []string, bad []Rejected) {
	if kind == KindURL {
		return canonicalURLs(r.URLs, b.hostnames)
	}
	for _, t := range r.Tags {
		t = TagForm(t)
		if err := checkTag(t); err != nil {
			bad = append(bad, Rejected{Object: t, Reason: err.Error()})
			continue
		}
		ok = append(ok, t)
	}
	return ok, bad
}

// plan cuts objects into requests within the body limit and the bucket's
// size, greedily, keeping their order.
func (b *Backend) plan(kind Kind, objects []string) [][]string {
	burst := b.limits.ForKind(kind).Burst
	var out [][]string
	for len(objects) > 0 {
		n, size := 0, len(bodyOpen)+len(bodyClose)
		for n < len(objects) && n < burst {
			add := jsonLen(objects[n])
			if kind == KindCPCode {
				add = len(objects[n])
			}
			if n > 0 {
				add++
			}
			if size+add > b.maxBody && n > 0 {
				break
			}
			size += add
			n++
		}
		out = append(out, objects[:n:n])
		objects = objects[n:]
	}
	return out
}
