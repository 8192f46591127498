package cloudflare

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gormpurge/gormpurge/backends"
)

// maxAnswer bounds how much of an answer is read.
const maxAnswer = 1 << 20

// resendBudget is how many times one call may resend the rest of a
// request after Cloudflare refused some of its objects by name.
const resendBudget = 16

// tally collects what the requests of one call achieved.
type tally struct {
	ids        []string
	accepted   int
	requests   int
	rejected   []Rejected
	resends    int
	everything bool
}

func (t *tally) result(name string, objects int) backends.Result {
	res := backends.Result{Backend: name, Objects: objects}
	if len(t.ids) == 0 {
		return res
	}
	res.IDs = map[string]string{"purgeId": strings.Join(t.ids, ",")}
	res.Detail = fmt.Sprintf("Purged: %d objects in %d requests", t.accepted, t.requests)
	if t.everything {
		res.Detail = "Purged everything"
	}
	return res
}

// answer is Cloudflare's envelope.
type answer struct {
	Success bool       `json:"success"`
	Errors  []APIError `json:"errors"`
	Result  *struct {
		ID string `json:"id"`
	} `json:"result"`
}

// send posts q, for which Pace took a token, and deals with the answer:
// it records a success in t, drops the objects a refusal names and resends
// the rest, and returns the classified error of any other failure.
func (b *Backend) send(ctx context.Context, q request, t *tally) error {
	url := b.endpoint + "/zones/" + b.zone + "/purge_cache"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(requestBody(q)))
	if err != nil {
		b.pacer.unsend(tokensOf(urlTokens([]request{q}))) // paced, never sent
		return backends.Permanent(fmt.Errorf("cloudflare: building the request: %w", err))
	}
	req.Header.Set("Authorization", "Bearer "+b.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	b.pacer.sending(q.kind)
	resp, err := b.client.Do(req)
	if err != nil {
		b.pacer.done(q.kind, false) // it may have reached Cloudflare
		if ctx.Err() != nil {
			return fmt.Errorf("cloudflare: purge of %s (%d objects): %w", q.kind, len(q.objects), context.Cause(ctx))
		}
		return fmt.Errorf("cloudflare: purge of %s (%d objects): %w", q.kind, len(q.objects), redactErr(err, b.token))
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
		_ = resp.Body.Close()
	}()
	b.pacer.done(q.kind, resp.StatusCode == http.StatusTooManyRequests)
	a, err := b.readAnswer(q, resp)
	if err != nil {
		return err
	}
	return b.answered(ctx, q, t, resp, a)
}

// requestBody returns the JSON body of q.
func requestBody(q request) []byte {
	if q.kind == kindEverything {
		return []byte(`{"purge_everything":true}`)
	}
	body, _ := json.Marshal(map[string][]string{q.kind: q.objects}) // strings always encode
	return body
}

// readAnswer reads and decodes the answer to q. An answer that is not
// Cloudflare's JSON (a proxy's error page) becomes an error whose message
// is its start.
func (b *Backend) readAnswer(q request, resp *http.Response) (answer, error) {
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return answer{}, fmt.Errorf("cloudflare: reading the answer to a purge of %s (status %d): %w", q.kind, resp.StatusCode, redactErr(err, b.token))
	}
	var a answer
	if json.Unmarshal(raw, &a) != nil {
		// Not Cloudflare's JSON (a proxy's error page): keep its start.
		a = answer{Errors: []APIError{{Message: strings.TrimSpace(string(raw[:min(len(raw), 200)]))}}}
	}
	return a, nil
}

// answered deals with a, the answer resp brought to q: it records a
// success in t, blocks the pacer on a rate limit, and drops the objects a
// refusal names and resends the rest; it returns the classified error of
// a failure.
func (b *Backend) answered(ctx context.Context, q request, t *tally, resp *http.Response, a answer) error {
	if a.Success && resp.StatusCode/100 == 2 {
		t.requests++
		t.accepted += len(q.objects)
		id := ""
		if a.Result != nil {
			id = a.Result.ID
		}
		t.ids = append(t.ids, id)
		b.logger.Debug("cloudflare: purge accepted", slog.String("kind", q.kind), slog.Int("objects", len(q.objects)), slog.String("purgeId", id))
		return nil
	}
	if ctx.Err() != nil { // an answer cut short by the end of ctx
		return fmt.Errorf("cloudflare: purge of %s (%d objects): %w", q.kind, len(q.objects), context.Cause(ctx))
	}
	apiErr := &Error{Status: resp.StatusCode, Errors: a.Errors, Kind: q.kind, Objects: len(q.objects)}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || apiErr.has(rateCodes...):
		wait := retryAfter(resp.Header, time.Now())
		apiErr.RetryAfter = wait
		b.pacer.block(time.Now().Add(wait))
		b.logger.Warn("cloudflare: rate limited", slog.String("kind", q.kind), slog.Int("objects", len(q.objects)), slog.Duration("wait", wait))
		return backends.RetryAfter(wait, fmt.Errorf("%w: %w", ErrRateLimited, apiErr))
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		return apiErr
	}
	if refused, rest := refusedObjects(q.objects, a.Errors); len(refused) > 0 {
		return b.resendRest(ctx, q, t, apiErr, refused, rest)
	}
	return backends.Permanent(apiErr)
}

// resendRest records in t the objects of q that apiErr refused by name,
// and resends the rest of q, while t has resends left (then the rest are
// recorded as not sent).
func (b *Backend) resendRest(ctx context.Context, q request, t *tally, apiErr *Error, refused, rest []string) error {
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
	b.logger.Warn("cloudflare: objects refused, resending the rest", slog.String("kind", q.kind),
		slog.Int("refused", len(refused)), slog.Int("rest", len(rest)))
	if err := b.pacer.wait(ctx, urlTokens([]request{{kind: q.kind, objects: rest}})); err != nil {
		return err
	}
	return b.send(ctx, request{kind: q.kind, objects: rest}, t)
}

// refusedObjects splits objects into those a refusal names and the rest,
// when it can tell them apart without guessing. Cloudflare does not
// document per-object errors; the ones it gives end with the object after
// a colon, as "Tag exceeds maximum length of 1024 characters: <tag>". So
// an error names an object when its message after the last ": " (or the
// whole message) is exactly one of objects. The refusal is mapped only
// when every error but the first (which may be a summary, such as "One or
// more cache purge errors") names an object; otherwise refused is empty
// and the whole request is refused: an error such as "Request is invalid"
// is about the request, even when a tag is called "invalid".
func refusedObjects(objects []string, errs []APIError) (refused, rest []string) {
	in := make(map[string]bool, len(objects))
	for _, o := range objects {
		in[o] = true
	}
	named := make(map[string]bool)
	for i, e := range errs {
		o := e.Message
		if j := strings.LastIndex(o, ": "); j >= 0 && !in[o] {
			o = o[j+len(": "):]
		}
		switch {
		case in[o]:
			named[o] = true
		case i > 0:
			return nil, objects // an error about something else
		}
	}
	if len(named) == 0 {
		return nil, objects
	}
	for _, o := range objects {
		if named[o] {
			refused = append(refused, o)
		} else {
			rest = append(rest, o)
		}
	}
	return refused, slices.Clip(rest)
}

// retryAfter returns the wait a 429's Retry-After header asks for (see
// backends.ParseRetryAfter), or DefaultRateLimitWait when it says nothing
// usable: no wait, or one over an hour.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if d, ok := backends.ParseRetryAfter(h, now); ok && d > 0 && d <= time.Hour {
		return d
	}
	return DefaultRateLimitWait
}

// redactErr keeps a transport error from quoting the token, should one
// ever hold it.
func redactErr(err error, token string) error {
	if token != "" && strings.Contains(err.Error(), token) {
		return redacted{err: err, msg: strings.ReplaceAll(err.Error(), token, "REDACTED")}
	}
	return err
}

type redacted struct {
	err error
	msg string
}

func (r redacted) Error() string { return r.msg }
func (r redacted) Unwrap() error { return r.err }
