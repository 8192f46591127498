package gormpurge

import (
	"slices"
	"strings"
	"sync"

	"github.com/gormpurge/gormpurge/backends"
)

// collector accumulates the targets of one transaction, deduplicated, with
// savepoint marks so that ROLLBACK TO SAVEPOINT can drop what came after.
type collector struct {
	mu           sync.Mutex
	urls, tags   []string
	seenU, seenT map[string]struct{}
	points       []savepointMark
}

type savepointMark struct {
	name       string
	urls, tags int
}

func (c *collector) add(urls, tags []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.urls = appendNew(c.urls, &c.seenU, urls)
	c.tags = appendNew(c.tags, &c.seenT, tags)
}

// smallSet is how many entries a collector dedupes by scanning before it
// builds a map: most transactions touch a handful of pages.
const smallSet = 16

func appendNew(dst []string, seen *map[string]struct{}, src []string) []string {
	if len(src) == 0 {
		return dst
	}
	if *seen == nil && len(dst)+len(src) <= smallSet {
		for _, s := range src {
			if !slices.Contains(dst, s) {
				dst = append(dst, s)
			}
		}
		return dst
	}
	if *seen == nil {
		*seen = make(map[string]struct{}, len(dst)+len(src))
		for _, s := range dst {
			(*seen)[s] = struct{}{}
		}
	}
	for _, s := range src {
		if _, ok := (*seen)[s]; !ok {
			(*seen)[s] = struct{}{}
			dst = append(dst, s)
		}
	}
	return dst
}

func (c *collector) savepoint(op spOp, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if op == spCreate {
		c.points = append(c.points, savepointMark{name: name, urls: len(c.urls), tags: len(c.tags)})
		return
	}
	i := len(c.points) - 1
	for i >= 0 && !strings.EqualFold(c.points[i].name, name) {
		i--
	}
	if i < 0 {
		return // a savepoint set before the plugin saw the transaction
	}
	switch op {
	case spRollback: // the savepoint stays; what came after it goes
		m := c.points[i]
		for _, u := range c.urls[m.urls:] {
			delete(c.seenU, u) // a no-op while the set is small and has no map
		}
		for _, g := range c.tags[m.tags:] {
			delete(c.seenT, g)
		}
		c.urls, c.tags = c.urls[:m.urls], c.tags[:m.tags]
		c.points = c.points[:i+1]
	case spRelease: // the savepoint and later ones go; what they hold stays
		c.points = c.points[:i]
	}
}

func (c *collector) request() backends.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return backends.NewRequest(c.urls, c.tags)
}

func (c *collector) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.urls, c.tags, c.seenU, c.seenT, c.points = nil, nil, nil, nil, nil
}

type spOp int

const (
	spNone spOp = iota
	spCreate
	spRollback
	spRelease
)

// parseSavepoint recognises the savepoint statements GORM's dialects send:
// SAVEPOINT n, ROLLBACK TO [SAVEPOINT] n, RELEASE [SAVEPOINT] n, and SQL
// Server's SAVE TRANSACTION n / ROLLBACK TRANSACTION n.
func parseSavepoint(query string) (spOp, string) {
	q := strings.TrimSpace(query)
	if q == "" || (q[0]|0x20 != 's' && q[0]|0x20 != 'r') {
		return spNone, ""
	}
	f := strings.Fields(strings.TrimRight(q, "; \t\r\n"))
	word := func(i int, w string) bool { return len(f) > i && strings.EqualFold(f[i], w) }
	name := func(i int) string {
		if len(f) != i+1 {
			return ""
		}
		return strings.Trim(f[i], "`\"[]")
	}
	var (
		op spOp
		n  string
	)
	switch {
	case word(0, "SAVEPOINT"):
		op, n = spCreate, name(1)
	case word(0, "SAVE") && word(1, "TRANSACTION"):
		op, n = spCreate, name(2)
	case word(0, "ROLLBACK") && word(1, "TO") && word(2, "SAVEPOINT"):
		op, n = spRollback, name(3)
	case word(0, "ROLLBACK") && word(1, "TO"):
		op, n = spRollback, name(2)
	case word(0, "ROLLBACK") && word(1, "TRANSACTION"):
		op, n = spRollback, name(2)
	case word(0, "RELEASE") && word(1, "SAVEPOINT"):
		op, n = spRelease, name(2)
	case word(0, "RELEASE"):
		op, n = spRelease, name(1)
	}
	if n == "" {
		return spNone, ""
	}
	return op, n
}
