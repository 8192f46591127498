package akamai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gormpurge/gormpurge/backends"
)

// answer is an HTTP answer from Fast Purge.
type answer struct {
	status int
	header http.Header
	body   apiBody
}

// apiBody holds the fields of Fast Purge's answers, success or problem.
type apiBody struct {
	HTTPStatus                  int      `json:"httpStatus"`
	EstimatedSeconds            float64  `json:"estimatedSeconds"`
	PurgeID                     string   `json:"purgeId"`
	SupportID                   string   `json:"supportId"`
	Detail                      string   `json:"detail"`
	Title                       string   `json:"title"`
	DescribedBy                 string   `json:"describedBy"`
	RateLimit                   *float64 `json:"rateLimit"`
	RateLimitCurrentRequestSize *float64 `json:"rateLimitCurrentRequestSize"`
	RateLimitRemaining          *float64 `json:"rateLimitRemaining"`
}

// maxAnswer bounds how much of an answer is read.
const maxAnswer = 1 << 20

// post signs and sends one request of n objects, for which a request token
// and reserved object tokens were taken. It returns an error only when
// there is no HTTP answer (then it has settled the tokens); otherwise the
// caller reports the answer to the pacer.
func (b *Backend) post(ctx context.Context, kind Kind, body []byte, n, reserved int) (*answer, error) {
	url := "https://" + b.host + Path(b.action, kind, b.network)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		b.pacer.unsend(kind, 1, reserved)
		return nil, backends.Permanent(fmt.Errorf("akamai: building request to %s: %w", url, err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	b.signer.SignRequest(req)
	b.pacer.sending(kind, reserved)
	resp, err := b.client.Do(req)
	if err != nil {
		b.pacer.lost(kind, reserved)
		return nil, fmt.Errorf("akamai: %s %s (%d objects): %w", b.action, kind, n, err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
		_ = resp.Body.Close()
	}()
	ans := &answer{status: resp.StatusCode, header: resp.Header}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		b.pacer.answered(kind, reserved, 0, ans.status,
			headerFloat(resp.Header, "X-Ratelimit-Remaining"), headerFloat(resp.Header, "X-Ratelimit-Remaining-Objects"))
		return nil, fmt.Errorf("akamai: reading the answer to %s %s (%d objects, status %d): %w", b.action, kind, n, resp.StatusCode, err)
	}
	if len(raw) > 0 && json.Unmarshal(raw, &ans.body) != nil {
		// Not Fast Purge's JSON (a proxy's error page, say): keep the start
		// of it as the detail.
		ans.body = apiBody{Detail: strings.TrimSpace(string(raw[:min(len(raw), 200)]))}
	}
	return ans, nil
}

func (b *Backend) apiError(a *answer, kind Kind, n int) *Error {
	title := a.body.Title
	if title == "" {
		title = http.StatusText(a.status)
	}
	return &Error{
		Status: a.status, Title: title, Detail: a.body.Detail, SupportID: a.body.SupportID,
		DescribedBy: a.body.DescribedBy, Kind: kind, Action: b.action, Network: b.network, Objects: n,
	}
}
