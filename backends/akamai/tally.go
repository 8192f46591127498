package akamai

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/gormpurge/gormpurge/backends"
)

// finish turns what a call did into its Result and error.
func (b *Backend) finish(t *tally, objects int, rejected []Rejected) (backends.Result, error) {
	rejected = append(rejected, t.rejected...)
	res := t.result(b.name, objects)
	if len(rejected) == 0 {
		return res, nil
	}
	for _, r := range rejected {
		b.logger.Warn("akamai: object not purged", slog.String("object", r.Object), slog.String("reason", r.Reason))
	}
	return res, backends.Permanent(&RejectedError{Backend: "akamai", Rejected: rejected, Purged: t.accepted})
}

// tally collects what the requests of one call achieved.
type tally struct {
	purgeIDs, supportIDs []string
	estimated            float64
	accepted             int
	rejected             []Rejected
	resends              int // requests left for resending what a 400 or 403 did not refuse
}

// resendBudget is how many times one call may resend the rest of a request
// after a 400 or 403 refused some of its objects.
const resendBudget = 16

func newTally() *tally { return &tally{resends: resendBudget} }

func (t *tally) result(name string, objects int) backends.Result {
	res := backends.Result{Backend: name, Objects: objects}
	if len(t.purgeIDs) == 0 {
		return res
	}
	res.IDs = map[string]string{
		"purgeId":          strings.Join(t.purgeIDs, ","),
		"supportId":        strings.Join(t.supportIDs, ","),
		"estimatedSeconds": strconv.FormatFloat(t.estimated, 'f', -1, 64),
	}
	res.Detail = fmt.Sprintf("Request accepted: %d objects in %d requests, done in about %ss",
		t.accepted, len(t.purgeIDs), res.IDs["estimatedSeconds"])
	return res
}
