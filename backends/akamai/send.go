package akamai

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/gormpurge/gormpurge/backends"
)

// send posts one request of objects, for which a request token and
// reserved object tokens were taken (by Pace, by the caller, or kept from
// a refused request), and deals with its answer: it records a 201 in t,
// splits on 413, drops the objects a 400 or 403 names and resends the rest,
// and returns the classified error of any other failure.
func (b *Backend) send(ctx context.Context, kind Kind, objects []string, reserved int, t *tally) error {
	body := encode(kind, objects)
	if len(body) > b.maxBody && len(objects) > 1 {
		// The halves take request tokens of their own and keep the
		// object tokens.
		b.pacer.unsend(kind, 1, 0)
		return b.split(ctx, kind, objects, t)
	}
	ans, err := b.post(ctx, kind, body, len(objects), reserved)
	if err != nil {
		return err
	}
	b.pacer.answered(kind, reserved, keptTokens(kind, objects, ans, t), ans.status,
		headerFloat(ans.header, "X-Ratelimit-Remaining"), headerFloat(ans.header, "X-Ratelimit-Remaining-Objects"))
	switch {
	case ans.status == http.StatusCreated:
		b.recordAccepted(kind, objects, len(body), ans, t)
		return nil
	case ans.status == http.StatusRequestEntityTooLarge:
		b.logger.Warn("akamai: request too large, splitting", slog.String("kind", string(kind)),
			slog.Int("objects", len(objects)), slog.Int("bytes", len(body)))
		if len(objects) == 1 {
			t.rejected = append(t.rejected, Rejected{Object: objects[0], Reason: "413: larger than Akamai's body limit on its own"})
			return nil
		}
		return b.split(ctx, kind, objects, t)
	case ans.status == http.StatusBadRequest || ans.status == http.StatusForbidden:
		return b.dropRefused(ctx, kind, objects, ans, t)
	case ans.status == http.StatusTooManyRequests:
		wait := b.rateLimitWait(ans, kind, len(objects))
		apiErr := b.apiError(ans, kind, len(objects))
		b.logger.Warn("akamai: rate limited", slog.String("kind", string(kind)), slog.Int("objects", len(objects)),
			slog.Duration("wait", wait), slog.String("supportId", ans.body.SupportID))
		return backends.RetryAfter(wait, fmt.Errorf("%w: %w", ErrRateLimited, apiErr))
	case ans.status >= 500 || ans.status == http.StatusRequestTimeout:
		return b.apiError(ans, kind, len(objects))
	default: // 401, 404, 405, 415 and other refusals of the whole request
		return backends.Permanent(b.apiError(ans, kind, len(objects)))
	}
}

// keptTokens returns how many of the object tokens of a request that got
// ans are kept for resending its objects. Akamai spent nothing on a
// refused request: the object tokens of what send resends are kept for it.
func keptTokens(kind Kind, objects []string, ans *answer, t *tally) int {
	switch {
	case ans.status == http.StatusRequestEntityTooLarge && len(objects) > 1:
		return len(objects)
	case ans.status == http.StatusBadRequest || ans.status == http.StatusForbidden:
		if refused, rest := refusedObjects(kind, objects, ans); len(refused) > 0 && t.resends > 0 {
			return len(rest)
		}
	}
	return 0
}

// recordAccepted records in t the 201 answer to a request of objects, whose body
// was size bytes long.
func (b *Backend) recordAccepted(kind Kind, objects []string, size int, ans *answer, t *tally) {
	t.purgeIDs = append(t.purgeIDs, ans.body.PurgeID)
	t.supportIDs = append(t.supportIDs, ans.body.SupportID)
	t.estimated = max(t.estimated, ans.body.EstimatedSeconds)
	t.accepted += len(objects)
	b.logger.Debug("akamai: purge accepted",
		slog.String("kind", string(kind)), slog.String("action", string(b.action)), slog.String("network", string(b.network)),
		slog.Int("objects", len(objects)), slog.Int("bytes", size),
		slog.String("purgeId", ans.body.PurgeID), slog.String("supportId", ans.body.SupportID),
		slog.Float64("estimatedSeconds", ans.body.EstimatedSeconds))
}

// dropRefused deals with a 400 or 403 answer to a request of objects: it
// records the objects the answer refuses in t and resends the rest, or
// returns a permanent error when the answer is about the request as a
// whole.
func (b *Backend) dropRefused(ctx context.Context, kind Kind, objects []string, ans *answer, t *tally) error {
	apiErr := b.apiError(ans, kind, len(objects))
	refused, rest := refusedObjects(kind, objects, ans)
	if len(refused) == 0 {
		// About the request as a whole (a gateway's "Invalid
		// timestamp", an API client without the grant): retrying
		// or halving cannot help.
		return backends.Permanent(apiErr)
	}
	for _, o := range refused {
		t.rejected = append(t.rejected, Rejected{Object: o, Reason: apiErr.Error()})
	}
	if len(rest) == 0 {
		return nil
	}
	if t.resends == 0 {
		for _, o := range rest {
			t.rejected = append(t.rejected, Rejected{Object: o, Reason: "not sent: too many refused objects in one batch"})
		}
		return nil
	}
	t.resends--
	b.logger.Warn("akamai: objects refused, resending the rest", slog.String("kind", string(kind)),
		slog.Int("refused", len(refused)), slog.Int("rest", len(rest)), slog.String("supportId", ans.body.SupportID))
	return b.resend(ctx, kind, rest, t)
}

// split sends objects, whose object tokens are reserved, as two halves in
// turn.
func (b *Backend) split(ctx context.Context, kind Kind, objects []string, t *tally) error {
	h := len(objects) / 2
	if err := b.resend(ctx, kind, objects[:h:h], t); err != nil {
		b.pacer.unsend(kind, 0, len(objects)-h)
		return err
	}
	return b.resend(ctx, kind, objects[h:], t)
}

// resend sends objects again after Akamai refused the request they were
// part of. A refused request spends no object tokens at Akamai, and send
// kept those of objects reserved: only a request token is taken.
func (b *Backend) resend(ctx context.Context, kind Kind, objects []string, t *tally) error {
	if err := b.wait(ctx, kind, 0); err != nil {
		b.pacer.unsend(kind, 0, len(objects))
		return err
	}
	return b.send(ctx, kind, objects, len(objects), t)
}
