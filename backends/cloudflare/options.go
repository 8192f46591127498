package cloudflare

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/gormpurge/gormpurge/backends"
)

// Option configures a [Backend] at [New].
type Option func(*config)

type config struct {
	zone, zoneSource   string
	token, tokenSource string
	endpoint           string
	client             *http.Client
	hostnames          []string
	maxItems           int
	plan               Plan
	rate               *Rate
	logger             *slog.Logger
	name               string
	errs               []error
}

// ConfigError reports an option, or an environment variable standing for
// one, that [New] cannot use, and how to fix it. It never quotes the token.
type ConfigError struct {
	// Option names the option or the environment variable, such as
	// "WithZone" or "CLOUDFLARE_API_TOKEN".
	Option string
	// Err is the problem.
	Err error
}

func (e *ConfigError) Error() string { return "cloudflare: " + e.Option + ": " + e.Err.Error() }

// Unwrap returns the problem.
func (e *ConfigError) Unwrap() error { return e.Err }

// Environment variables read by [New] when the matching option is left out:
// the names Cloudflare's own tools (Wrangler, Terraform's provider) use.
const (
	EnvAPIToken = "CLOUDFLARE_API_TOKEN"
	EnvZoneID   = "CLOUDFLARE_ZONE_ID"
)

// zoneIDPattern is the form of a Cloudflare zone ID: 32 hex digits.
var zoneIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)

// WithZone sets the zone to purge, by its ID: 32 hex digits, shown on the
// zone's Overview page in the dashboard (not its name). Without it, [New]
// reads CLOUDFLARE_ZONE_ID.
func WithZone(id string) Option {
	return func(c *config) {
		if err := checkZone(id); err != nil {
			c.errs = append(c.errs, &ConfigError{Option: "WithZone", Err: err})
			return
		}
		c.zone, c.zoneSource = strings.ToLower(id), "WithZone"
	}
}

func checkZone(id string) error {
	if !zoneIDPattern.MatchString(id) {
		shown := id
		if len(shown) > 40 {
			shown = shown[:40] + "…"
		}
		return fmt.Errorf("%q is not a zone ID: want the 32 hex digits of the zone's ID (dashboard: the zone's Overview page, API section), not its name", shown)
	}
	return nil
}

// WithAPIToken sets the API token, sent as "Authorization: Bearer <token>".
// It needs the Zone > Cache Purge > Purge permission on the zone. Without
// it, [New] reads CLOUDFLARE_API_TOKEN. Legacy global API keys are not
// supported.
func WithAPIToken(token string) Option {
	return func(c *config) {
		if err := checkToken(token); err != nil {
			c.errs = append(c.errs, &ConfigError{Option: "WithAPIToken", Err: err})
			return
		}
		c.token, c.tokenSource = token, "WithAPIToken"
	}
}

func checkToken(token string) error {
	switch {
	case token == "":
		return errors.New("empty token: pass the API token, or leave the option out to read " + EnvAPIToken)
	case strings.IndexFunc(token, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
		return fmt.Errorf("the token (%d bytes) holds white space or a character that is not printable ASCII: copy it again without the surrounding text", len(token))
	}
	return nil
}

// DefaultEndpoint is the base of Cloudflare's API.
const DefaultEndpoint = "https://api.cloudflare.com/client/v4"

// WithEndpoint sets the API base, [DefaultEndpoint] unless set: tests point
// it at cloudflaretest's Server.Endpoint. It is an absolute http or https
// URL without query or user information.
func WithEndpoint(endpoint string) Option {
	return func(c *config) {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			c.errs = append(c.errs, &ConfigError{Option: "WithEndpoint",
				Err: fmt.Errorf("%q: want an absolute http(s) URL such as %s", backends.RedactURL(endpoint), DefaultEndpoint)})
			return
		}
		c.endpoint = strings.TrimRight(endpoint, "/")
	}
}

// WithHTTPClient sets the client that sends requests, for a proxy, custom
// TLS or a test server. The default is a client of the backend's own with
// keep-alive connections and a timeout of [DefaultRequestTimeout]; nil is
// an error. [Backend.Close] closes idle connections only of its own client.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) {
		if hc == nil {
			c.errs = append(c.errs, &ConfigError{Option: "WithHTTPClient", Err: errors.New("nil client: pass an *http.Client, or leave the option out to use the backend's own")})
			return
		}
		c.client = hc
	}
}

// WithHostnames sets the zone's hostnames, such as "www.example.com": a
// site-relative path "/posts/1" becomes one URL on each,
// "https://www.example.com/posts/1". Without it, a path cannot be purged
// and fails on its own (backends.Partial, backends.Permanent); set
// gormpurge.WithBaseURL on the plugin, or list the hostnames here.
// Hostnames are given without scheme or path; a port may follow.
func WithHostnames(hosts ...string) Option {
	return func(c *config) {
		for _, h := range hosts {
			a, err := backends.CanonicalHost("https", strings.TrimSpace(h))
			if err != nil || strings.ContainsAny(h, "/?#@ ") {
				c.errs = append(c.errs, &ConfigError{Option: "WithHostnames",
					Err: fmt.Errorf("%q: want a host name such as www.example.com, without scheme or path", backends.RedactURL(h))})
				continue
			}
			if !slices.Contains(c.hostnames, a) {
				c.hostnames = append(c.hostnames, a)
			}
		}
	}
}

// WithMaxItems sets the most URLs or tags in one request: at most
// [MaxItemsPerRequest] (100, the default), or up to
// [MaxURLsPerRequestEnterprise] (500) for URLs with WithPlan(Enterprise);
// tags stay at 100 whatever n. Lower it to keep each request small.
func WithMaxItems(n int) Option {
	return func(c *config) {
		if n < 1 || n > MaxURLsPerRequestEnterprise {
			c.errs = append(c.errs, &ConfigError{Option: "WithMaxItems",
				Err: fmt.Errorf("%d: want 1 to %d (%d above %d needs WithPlan(cloudflare.Enterprise))", n, MaxItemsPerRequest, MaxURLsPerRequestEnterprise, MaxItemsPerRequest)})
			return
		}
		c.maxItems = n
	}
}

// WithPlan sets the zone's plan, whose published purge rate the backend
// paces to (see [Plan.Rate]). The default is [Pro]; see [DefaultPlan].
func WithPlan(p Plan) Option {
	return func(c *config) {
		if p < Free || p > Enterprise {
			c.errs = append(c.errs, &ConfigError{Option: "WithPlan", Err: fmt.Errorf("%d: want cloudflare.Free, Pro, Business or Enterprise", int(p))})
			return
		}
		c.plan = p
	}
}

// WithRate sets the request bucket the backend paces purges by tag (and
// of everything) to, instead of the plan's: burst requests at once,
// refilled at perSecond. Purges of URLs take no request token: they keep
// to the plan's URLs a second (see [Plan.Rate]). Lower it when
// other clients purge through the same account: Cloudflare's bucket is
// the account's, shared by every token and zone.
func WithRate(perSecond float64, burst int) Option {
	return func(c *config) {
		if !(perSecond > 0) || math.IsInf(perSecond, 0) || burst < 1 {
			c.errs = append(c.errs, &ConfigError{Option: "WithRate", Err: fmt.Errorf("(%g, %d): want a positive rate and a burst of at least 1", perSecond, burst)})
			return
		}
		c.rate = &Rate{PerSecond: perSecond, Burst: burst}
	}
}

// WithLogger sets where the backend logs: accepted purges at Debug, 429s
// and refused objects at Warn. The default is slog.Default(); nil is an
// error (pass slog.New(slog.DiscardHandler) to silence it). The token is
// never logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.errs = append(c.errs, &ConfigError{Option: "WithLogger", Err: errors.New("nil logger: pass slog.New(slog.DiscardHandler) to silence the backend, or leave the option out")})
			return
		}
		c.logger = l
	}
}

// WithName sets the backend's name in logs, metrics and results, "cloudflare"
// unless set: give each backend its own when a dispatcher purges two zones.
func WithName(name string) Option {
	return func(c *config) {
		if strings.TrimSpace(name) == "" {
			c.errs = append(c.errs, &ConfigError{Option: "WithName", Err: errors.New("empty name: leave the option out for \"cloudflare\"")})
			return
		}
		c.name = name
	}
}
