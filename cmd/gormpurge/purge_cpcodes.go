package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/akamai"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// purgeCPCodes purges whole CP codes, recording the outcome in rep. The
// backend (Akamai) paces them itself; a temporary failure is tried again with
// exponential backoff, as the dispatcher does, up to --max-attempts
// within --timeout.
func (a *app) purgeCPCodes(ctx context.Context, b cpCodePurger, objects []string, o *purgeOptions, rep *purgeReport) {
	runCtx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	codes := make([]int, len(objects))
	for i, s := range objects {
		codes[i], _ = strconv.Atoi(s) // checked by checkCPCode
	}
	err := retryCPCodes(runCtx, a.logger, o.retryPolicy(), func() error {
		res, err := b.PurgeCPCodes(runCtx, codes...)
		rep.addResults([]dispatcher.Report{{Result: res}}, nil)
		return err
	})
	var rej *akamai.RejectedError
	switch {
	case err == nil:
		rep.Purged = len(objects)
	case errors.As(err, &rej):
		refused := map[string]string{}
		for _, r := range rej.Rejected {
			refused[r.Object] = r.Reason
		}
		for _, s := range objects {
			if reason, ok := refused[s]; ok {
				rep.fail(s, reason)
			} else {
				rep.Purged++
			}
		}
	default:
		reason := errorText(err)
		switch {
		case ctx.Err() != nil:
			reason = "not purged: interrupted"
		case runCtx.Err() != nil:
			reason = fmt.Sprintf("not purged: --timeout %v ran out", o.timeout)
		}
		for _, s := range objects {
			rep.fail(s, reason)
		}
	}
}

// retryCPCodes calls purge until it succeeds, fails for good
// ([backends.IsPermanent], or Akamai refused some of the objects), has
// been called p.MaxAttempts times, or the next wait would end past ctx's
// deadline. The waits are p's, as the dispatcher's are, and at least what
// a [backends.RetryAfter] error asks.
func retryCPCodes(ctx context.Context, logger *slog.Logger, p dispatcher.RetryPolicy, purge func() error) error {
	for attempt := 1; ; attempt++ {
		err := purge()
		var rej *akamai.RejectedError
		if err == nil || backends.IsPermanent(err) || errors.As(err, &rej) || attempt >= p.MaxAttempts || ctx.Err() != nil {
			return err
		}
		wait := p.Backoff(attempt)
		if d, ok := backends.RetryDelay(err); ok {
			wait = max(wait, d)
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return err
		}
		logger.WarnContext(ctx, "cpcodes: purge failed; retrying", "attempt", attempt, "wait", wait, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}
