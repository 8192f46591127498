package akamai

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestRateLimitWait(t *testing.T) {
	b := &Backend{limits: PublishedRateLimits()}
	f := func(v float64) *float64 { return &v }
	headers := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name string
		a    answer
		kind Kind
		n    int
		want time.Duration // before the 5% and 10 ms margin
	}{
		{"request bucket from headers", answer{header: headers("X-Ratelimit-Remaining", "0", "X-Ratelimit-Limit-Per-Second", "50.00",
			"X-Ratelimit-Remaining-Objects", "10000")}, KindURL, 100, 20 * time.Millisecond},
		{"object bucket from headers", answer{header: headers("X-Ratelimit-Remaining", "99",
			"X-Ratelimit-Remaining-Objects", "94", "X-Ratelimit-Limit-Per-Second-Objects", "200.00")}, KindURL, 110, 80 * time.Millisecond},
		{"tag bucket from the body, without headers", answer{body: apiBody{Title: "TAG Rate Limit exceeded",
			RateLimitRemaining: f(34), RateLimitCurrentRequestSize: f(45)}}, KindTag, 45, time.Duration(11 / (500.0 / 60) * float64(time.Second))},
		{"request bucket from the body, without headers", answer{body: apiBody{Title: "Rate Limit exceeded",
			RateLimitRemaining: f(0)}}, KindTag, 5000, 20 * time.Millisecond},
		{"nothing to go by", answer{}, KindURL, 10, DefaultRateLimitWait},
		{"headers say there is room", answer{header: headers("X-Ratelimit-Remaining", "50", "X-Ratelimit-Remaining-Objects", "500",
			"X-Ratelimit-Seconds-To-Refresh-Limit-Objects", "600")}, KindTag, 10, DefaultRateLimitWait},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.a.status = http.StatusTooManyRequests
			got := b.rateLimitWait(&tt.a, tt.kind, tt.n)
			if tt.want == DefaultRateLimitWait {
				assert.Equal(t, tt.want, got)
				return
			}
			assert.InDelta(t, float64(tt.want)*1.05+float64(10*time.Millisecond), float64(got), float64(time.Millisecond))
		})
	}
}
