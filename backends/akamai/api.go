package akamai

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"time"
)

// Network is the Akamai network a purge applies to.
type Network string

const (
	// Production purges the live network. It is the default.
	Production Network = "production"
	// Staging purges the staging network, for testing a configuration
	// before it goes live.
	Staging Network = "staging"
)

// Action says how the purged objects leave the cache.
type Action string

const (
	// Invalidate marks objects stale: the edge revalidates them with the
	// origin (If-Modified-Since) and may still serve them if the origin is
	// down. It is the default and what Akamai recommends.
	Invalidate Action = "invalidate"
	// Delete removes objects outright: the next request is a full fetch
	// from the origin. Use it for content that must never be served again.
	Delete Action = "delete"
)

// Kind is the kind of object a Fast Purge request names: it selects the
// endpoint and the rate-limit bucket.
type Kind string

const (
	// KindURL is an absolute URL (or ARL); one URL purges both http and
	// https.
	KindURL Kind = "url"
	// KindTag is a cache tag, set by the origin in Edge-Cache-Tag.
	KindTag Kind = "tag"
	// KindCPCode is a CP code: every object served under it.
	KindCPCode Kind = "cpcode"
)

// Path returns the Fast Purge v3 endpoint path for action, kind and network,
// such as "/ccu/v3/invalidate/url/production". An empty network gives the
// path without it, which Akamai treats as production.
func Path(action Action, kind Kind, network Network) string {
	p := "/ccu/v3/" + string(action) + "/" + string(kind)
	if network != "" {
		p += "/" + string(network)
	}
	return p
}

// MaxBodyBytes is the largest request body Fast Purge accepts; a larger one
// is answered with 413.
const MaxBodyBytes = 50_000

// Credentials are an EdgeGrid API client's values, as found in a section of
// an .edgerc file. Their String and LogValue methods hide the secret and the
// tokens, so a Credentials value can be logged or printed safely.
type Credentials struct {
	// Host is the API host, such as
	// "akab-xxxx.luna.akamaiapis.net", without scheme or slash. A port
	// may follow ("127.0.0.1:8443"), as for a local fake.
	Host string
	// ClientToken, ClientSecret and AccessToken sign each request.
	ClientToken  string
	ClientSecret string
	AccessToken  string
	// AccountKey, when set, is sent as accountSwitchKey, for API clients
	// that manage several accounts.
	AccountKey string
}

// String returns the host and a redacted form of the tokens.
func (c Credentials) String() string {
	return fmt.Sprintf("akamai.Credentials{Host: %q, ClientToken: %s, ClientSecret: %s, AccessToken: %s}",
		c.Host, redact(c.ClientToken), redact(c.ClientSecret), redact(c.AccessToken))
}

// GoString is String, so that %#v does not print the secret either.
func (c Credentials) GoString() string { return c.String() }

// LogValue logs the host only, so that a log/slog record never holds the
// secret or the tokens.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("host", c.Host))
}

// MarshalJSON writes the host and redacted tokens, so that a Credentials
// value encoded by accident (in a JSON log, say) leaks nothing.
func (c Credentials) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"host": c.Host, "clientToken": redact(c.ClientToken), "clientSecret": redact(c.ClientSecret), "accessToken": redact(c.AccessToken),
	})
}

func redact(s string) string {
	if s == "" {
		return `""`
	}
	return "[redacted]"
}

// Bucket is a token bucket: Burst tokens at most, refilled at PerSecond.
type Bucket struct {
	// Burst is the most tokens the bucket holds, and so the most that one
	// request can spend.
	Burst int
	// PerSecond is the refill rate, in tokens per second.
	PerSecond float64
}

// RateLimits are Fast Purge's token buckets, one per account. A request costs
// one Requests token plus one token per object from the bucket of its kind,
// all or nothing.
type RateLimits struct {
	Requests Bucket
	URLs     Bucket
	Tags     Bucket
	CPCodes  Bucket
}

// Fast Purge's token buckets, one set per account, as Akamai documents them
// in the Fast Purge API reference, "Rate limiting"
// (https://techdocs.akamai.com/purge-cache/reference/rate-limiting), and
// reports them in the X-Ratelimit-Limit* headers of every answer.
const (
	publishedRequestBurst = 100        // requests
	publishedRequestRate  = 50.0       // requests per second
	publishedURLBurst     = 10_000     // URL objects
	publishedURLRate      = 200.0      // URL objects per second
	publishedTagBurst     = 5_000      // tags
	publishedTagRate      = 500.0 / 60 // tags per second: 500 a minute
	publishedCPCodeBurst  = 300        // CP codes
	publishedCPCodeRate   = 30.0 / 60  // CP codes per second: 30 a minute
)

// PublishedRateLimits returns the limits Akamai documents for Fast Purge:
// requests 100 (refill 50/s), URLs 10,000 (200/s), tags 5,000 (500/min), CP
// codes 300 (30/min). They are the defaults, and the most that [New]
// accepts. The backend paces itself at 1% below these rates.
func PublishedRateLimits() RateLimits {
	return RateLimits{
		Requests: Bucket{Burst: publishedRequestBurst, PerSecond: publishedRequestRate},
		URLs:     Bucket{Burst: publishedURLBurst, PerSecond: publishedURLRate},
		Tags:     Bucket{Burst: publishedTagBurst, PerSecond: publishedTagRate},
		CPCodes:  Bucket{Burst: publishedCPCodeBurst, PerSecond: publishedCPCodeRate},
	}
}

// ForKind returns the bucket for objects of kind k.
func (l RateLimits) ForKind(k Kind) Bucket {
	switch k {
	case KindTag:
		return l.Tags
	case KindCPCode:
		return l.CPCodes
	default:
		return l.URLs
	}
}

// withDefaults returns l with each zero Bucket replaced by the published
// one.
func (l RateLimits) withDefaults() RateLimits {
	p := PublishedRateLimits()
	fill := func(b *Bucket, d Bucket) {
		if *b == (Bucket{}) {
			*b = d
		}
	}
	fill(&l.Requests, p.Requests)
	fill(&l.URLs, p.URLs)
	fill(&l.Tags, p.Tags)
	fill(&l.CPCodes, p.CPCodes)
	return l
}

// validate reports the first bucket that is not positive or exceeds
// Akamai's published limit.
func (l RateLimits) validate() error {
	p := PublishedRateLimits()
	check := func(name string, b, max Bucket) error {
		if b.Burst <= 0 || b.Burst > max.Burst {
			return fmt.Errorf("akamai: rate limit %s: burst %d must be between 1 and Akamai's published %d", name, b.Burst, max.Burst)
		}
		if !(b.PerSecond > 0) || math.IsInf(b.PerSecond, 0) || b.PerSecond > max.PerSecond+1e-9 {
			return fmt.Errorf("akamai: rate limit %s: refill %g/s must be above 0 and at most Akamai's published %g/s", name, b.PerSecond, max.PerSecond)
		}
		return nil
	}
	for _, c := range []struct {
		name   string
		b, max Bucket
	}{
		{"Requests", l.Requests, p.Requests},
		{"URLs", l.URLs, p.URLs},
		{"Tags", l.Tags, p.Tags},
		{"CPCodes", l.CPCodes, p.CPCodes},
	} {
		if err := check(c.name, c.b, c.max); err != nil {
			return err
		}
	}
	return nil
}

// Clock tells the time and waits. The backend paces its requests on it. The
// default is the system clock; tests pass a faster one (see
// akamaitest.ScaledClock) so that minutes of pacing at Akamai's real limits
// run in seconds.
type Clock interface {
	// Now returns the current time on this clock.
	Now() time.Time
	// Sleep waits until d has passed on this clock or ctx is done, and
	// returns ctx.Err() in the latter case.
	Sleep(ctx context.Context, d time.Duration) error
}

// SystemClock is the real clock, the default of [WithClock].
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// Sleep waits for d or until ctx is done.
func (SystemClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
