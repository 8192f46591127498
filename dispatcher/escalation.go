package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/gormpurge/gormpurge/backends"
)

// Escalation says what a backend purges instead of a handoff that names too
// many URLs, such as a data migration that would otherwise purge a site page
// by page and pay the CDN for each. Give it to [WithEscalation].
type Escalation struct {
	// Above is the most URLs a handoff (one call to Enqueue or Submit) may
	// name and still be purged URL by URL: a handoff with more than Above
	// URLs is escalated, for this backend only. It must be at least 1.
	Above int
	// Tags, when set, are purged instead of the handoff's URLs; the
	// handoff's own tags are kept. Each tag must be valid as the plugin
	// requires of a model's tags: not empty, with no space, comma or
	// control character. The backend must purge tags: if it implements
	// [backends.TagPurger], its CanPurgeTags must return nil. Set Tags or
	// All, not both.
	Tags []string
	// All, when set, purges everything the backend caches instead of the
	// handoff. The backend must implement [backends.PurgeAller], and its
	// CanPurgeAll must return nil.
	All bool
}

// WithEscalation makes the backend named backend purge what e says instead
// of any handoff that names more than e.Above URLs: a few tags (e.Tags) or
// everything it caches (e.All). Use it for a CDN that bills per purged
// object, so that a bulk change costs one coarse purge instead of thousands
// of URL purges. The other backends still get the handoff's URLs.
//
// The decision is made per handoff, when Enqueue or Submit hands it over,
// and is logged at Warn ("dispatcher: escalated") and counted in
// [BackendStats.Escalated]. Above is compared with the handoff's distinct,
// non-empty URLs. A purge of everything subsumes the requests merged with
// it in the same linger window: its [Report] has All set. With
// [WithWarmup], the Warmer gets at most Above of an escalated handoff's
// URLs, not all of them. By default no backend escalates.
//
// A purge of everything paces itself inside the call to PurgeAll, under
// the deadline of [WithAttemptTimeout], where ordinary batches are paced
// before the attempt: the Akamai backend waits there for its CP code and
// request rate limits, and that wait counts as part of the attempt. Keep
// the attempt timeout longer than such a wait may last, or the attempt
// fails and is retried.
func WithEscalation(backend string, e Escalation) Option {
	e.Tags = slices.Clone(e.Tags)
	return func(c *config) {
		if c.escalations == nil {
			c.escalations = make(map[string]Escalation)
		}
		c.escalations[backend] = e
	}
}

// escalationProblems says what is wrong with e for b, nil when no backend
// has e's name.
func escalationProblems(e Escalation, b backends.Backend) []string {
	var out []string
	if b == nil {
		out = append(out, "no backend has that name")
	}
	if e.Above < 1 {
		out = append(out, fmt.Sprintf("Above is %d: it must be at least 1", e.Above))
	}
	switch {
	case len(e.Tags) > 0 && e.All:
		out = append(out, "set Tags or All, not both")
	case len(e.Tags) == 0 && !e.All:
		out = append(out, "set Tags to purge instead of the URLs, or All to purge everything")
	case e.All:
		if b == nil {
			break
		}
		pa, ok := b.(backends.PurgeAller)
		if !ok {
			out = append(out, fmt.Sprintf("All: backend of type %T cannot purge everything: it does not implement backends.PurgeAller", b))
		} else if err := pa.CanPurgeAll(); err != nil {
			out = append(out, "All: the backend cannot purge everything: "+err.Error())
		}
	default: // Tags
		if slices.Contains(e.Tags, "") {
			out = append(out, fmt.Sprintf("Tags %q holds an empty tag", e.Tags))
		}
		for _, tag := range e.Tags {
			if problem := tagProblem(tag); problem != "" {
				out = append(out, fmt.Sprintf("Tags: tag %q %s", tag, problem))
			}
		}
		if tp, ok := b.(backends.TagPurger); ok {
			if err := tp.CanPurgeTags(); err != nil {
				out = append(out, "Tags: the backend cannot purge tags: "+err.Error())
			}
		}
	}
	return out
}

// tagProblem says what makes tag, not empty, invalid as a cache tag, or
// returns "". The rule is the canonical one ([backends.CanonicalTag]).
func tagProblem(tag string) string {
	if _, err := backends.CanonicalTag(tag); err != nil {
		return strings.TrimPrefix(err.Error(), backends.ErrInvalidTag.Error()+": ")
	}
	return ""
}

// escalator is the layer of [WithEscalation] for one backend: it replaces
// each handoff that names more than Above distinct URLs with a purge of
// the escalation's tags, or of everything, before the lane queues it.
type escalator struct {
	Escalation
	backend string
	tags    []string // Tags, normalised
	to      string   // what handoffs escalate to, for the log
	pages   pageUse  // whether an observer wants the pages of escalated handoffs
	logger  *slog.Logger

	handoffs, urls atomic.Uint64
}

var (
	_ admitter = (*escalator)(nil)
	_ counter  = (*escalator)(nil)
)

// pageUse says whether an escalator keeps, for the lane's observers, up to
// Above URLs of each escalated handoff.
type pageUse int

const (
	dropPages pageUse = iota // no observer wants the pages
	keepPages                // an observer, such as a warmup, wants them
)

// ownURLs counts the URLs of urls, sorted and distinct, less the form
// spellings the dispatcher added for URLs whose query holds a space
// ([backends.FormSpelling]): Above is compared with the URLs the handoff
// itself named.
func ownURLs(urls []string) int {
	n := len(urls)
	for _, u := range urls {
		if f := backends.FormSpelling(u); f != "" {
			if _, found := slices.BinarySearch(urls, f); found {
				n--
			}
		}
	}
	return n
}

// newEscalator returns the escalator of e, valid, for the backend named
// backend. pages says whether to keep, for the lane's observers, up to
// Above URLs of each escalated handoff.
func newEscalator(backend string, e Escalation, logger *slog.Logger, pages pageUse) *escalator {
	x := &escalator{Escalation: e, backend: backend, to: "all", pages: pages, logger: logger}
	if !e.All {
		x.tags = backends.NewRequest(nil, e.Tags).Tags
		x.to = fmt.Sprintf("tags %v", x.tags)
	}
	return x
}

// admit returns it, or, if its request names more distinct URLs than Above
// allows, the item that replaces it, which it counts and logs.
func (x *escalator) admit(ctx context.Context, it item) item {
	if len(it.req.URLs) <= x.Above {
		return it // the common case costs one comparison
	}
	// A Request built by hand may repeat a URL or hold empty ones.
	urls := backends.NewRequest(it.req.URLs, nil).URLs
	own := ownURLs(urls)
	if own <= x.Above {
		return it
	}
	x.handoffs.Add(1)
	x.urls.Add(uint64(own))
	x.logger.LogAttrs(ctx, slog.LevelWarn, "dispatcher: escalated",
		slog.String("backend", x.backend),
		slog.Int("urls", own),
		slog.String("to", x.to))
	sub := &substitute{all: x.All, tags: x.tags}
	if x.pages == keepPages {
		// No more of the handoff than Above allows one handoff to purge,
		// so that a bulk change does not turn into as many page fetches.
		// A copy lets the rest of urls go.
		sub.pages = slices.Clone(urls[:x.Above])
	}
	if x.All {
		// The handoff travels whole: the purge of everything subsumes it,
		// and Close reports it if it is left.
		it.sub = sub
		return it
	}
	it.req, it.sub = backends.NewRequest(nil, slices.Concat(x.tags, it.req.Tags)), sub
	return it
}

// count adds the escalated handoffs and their URLs to s.
func (x *escalator) count(s *BackendStats) {
	s.Escalated += x.handoffs.Load()
	s.EscalatedURLs += x.urls.Load()
}
