package cloudflare

import (
	"fmt"
)

// Limits of the purge_cache API, from
// https://developers.cloudflare.com/cache/how-to/purge-cache/ ("Purge
// limits", "Max operations per request").
const (
	// MaxItemsPerRequest is the most operations (URLs, tags, hosts or
	// prefixes) in one request, on every plan.
	MaxItemsPerRequest = 100
	// MaxURLsPerRequestEnterprise is the most URLs in one request on the
	// Enterprise plan.
	MaxURLsPerRequestEnterprise = 500
)

// MaxTagLength is the longest cache tag a purge request may name, in
// characters (bytes: tags are printable ASCII), from
// https://developers.cloudflare.com/cache/how-to/purge-cache/purge-by-tags/
// ("For cache purges, the maximum length of a cache-tag in an API call is
// 1,024 characters").
const MaxTagLength = 1024

// Plan is a Cloudflare plan, whose purge rate limit the backend paces to.
type Plan int

// The plans, by their purge limits.
const (
	Free Plan = iota + 1
	Pro
	Business
	Enterprise
)

// DefaultPlan is the plan the backend paces to without [WithPlan] or
// [WithRate]: Pro, the lowest paid plan. Its request bucket (5 requests a
// second, 25 at once) and its URL rate (1,500 a second) are no larger and
// no faster than Business's or Enterprise's, so a backend left at the
// default never draws a 429 on a paid plan, and it purges tags 60 times
// faster than the Free plan's 5 requests a minute would allow. On a Free
// zone, say WithPlan(cloudflare.Free): at the default, a burst of more than
// 25 purges by tag in a minute, or of more than 800 URLs in a second, draws
// 429s, which the backend honours (Retry-After) but which cost a round
// trip each.
const DefaultPlan = Pro

// Rate is an account's purge limits: a token bucket of Burst requests at
// once, refilled at PerSecond, which purges by tag (and of everything)
// spend, one token a request; and URLsPerSecond, the limit on single-file
// purges (requests of URLs), which spend one URL token per URL and no
// request token.
type Rate struct {
	PerSecond     float64
	Burst         int
	URLsPerSecond float64
}

// publishedRates are the purge limits per plan, per account, from
// https://developers.cloudflare.com/cache/how-to/purge-cache/ ("Purge
// limits", as of 2026). The page gives two tables: requests per second
// or minute with a bucket size, and URLs per second ("the thresholds for
// URLs are calculated using a moving average"); "Cloudflare uses token
// bucket rate limiting" for the requests. An earlier version of the same
// page labels the rows "Purge limits (tags, prefix URL, hostname, and
// purge everything)" and "Purge limits (single file purge)", and the
// current URL table has its own operations per request (500 on
// Enterprise, against 100 in the request table): a single-file purge is
// limited in URLs a second only, and takes no request token.
var publishedRates = map[Plan]Rate{
	Free:       {PerSecond: 5.0 / 60, Burst: 25, URLsPerSecond: 800},
	Pro:        {PerSecond: 5, Burst: 25, URLsPerSecond: 1500},
	Business:   {PerSecond: 10, Burst: 50, URLsPerSecond: 1500},
	Enterprise: {PerSecond: 50, Burst: 500, URLsPerSecond: 3000},
}

// Rate returns the plan's published purge limits.
func (p Plan) Rate() Rate { return publishedRates[p] }

// String returns the plan's name, such as "Pro".
func (p Plan) String() string {
	switch p {
	case Free:
		return "Free"
	case Pro:
		return "Pro"
	case Business:
		return "Business"
	case Enterprise:
		return "Enterprise"
	}
	return fmt.Sprintf("Plan(%d)", int(p))
}
