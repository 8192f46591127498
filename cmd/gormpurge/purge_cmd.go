package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gormpurge/gormpurge/dispatcher"
)

// Defaults of the purge command's flags.
const (
	defaultPurgeTimeout = 30 * time.Minute
	// defaultAttemptTimeout bounds one call to a backend (one batch).
	defaultAttemptTimeout = 2 * time.Minute
)

// purgeOptions are the purge command's flags.
type purgeOptions struct {
	files       []string
	tags        bool
	cpcodes     bool
	skipInvalid bool
	siteHosts   []string

	// backends are the flags of each backend of [backendTable].
	backends []backendFlags

	maxAttempts    int
	attemptTimeout time.Duration
	timeout        time.Duration
	dryRun         bool

	json       bool
	noProgress bool
}

// purgeLong is the purge command's help, the backends' summaries in
// place of its %s.
const purgeLong = `Purge URLs, cache tags (--tags) or Akamai CP codes (--cpcodes) from one backend:
%s.

Objects come from the arguments, from files (--file, one per line; blank lines and
lines starting with # are skipped), or from standard input with - . They are
checked before anything is sent: a URL must be an absolute http(s) URL, or a path
beginning with / when --site-host names the site's hosts (or for CloudFront,
which invalidates a path on every host it serves), and is purged in its
canonical form (host in lower case and punycode, path and query percent-encoded
as browsers send them); a tag must hold no space, comma or control character
(nor, for Akamai, any character Fast Purge refuses); a CP code is a positive
number. One invalid input refuses the whole run with exit status 2, naming each
by file and line, unless --skip-invalid purges the rest.

Before sending to HTTP caches, the command connects once to each node: when every
node refuses the connection (or has no address), it stops at once, naming them,
instead of retrying for minutes.

Everything goes through the gormpurge dispatcher: batched to the backend's limits
(Akamai: 50,000-byte bodies, at most 10,000 URLs or 5,000 tags a request;
Cloudflare: 100 URLs or tags a request; Fastly: one request per URL, 256
surrogate keys a request; CloudFront: 3,000 paths an invalidation), retried with exponential backoff (--max-attempts),
and paced to the CDN's rate limits (Akamai's account limits, Cloudflare's purge
bucket, Fastly's 429s and Fastly-RateLimit headers) so that a large list does not
end in 429s. A progress bar shows on a terminal for more than 50 objects.

--dry-run checks everything (the AWS credentials too), sends nothing, and prints
what would be sent: each object, for HTTP caches the Host header each URL is
purged with, for CDNs what each URL is sent as (a path's URL on each
--site-host, Fastly's cached URL, CloudFront's invalidation path), and about how
many requests it takes.

The summary on stdout counts what was purged, gives the ids Akamai returned
(purgeId, supportId), the ids each CDN gave its requests (purge ids,
invalidation ids), or each node's answers, and lists every object not purged
with its cause; --json prints it as JSON. Exit status 0 when everything was
purged, 1 when anything was not, 2 for a usage error (nothing sent).

Akamai credentials: --akamai-edgerc FILE reads a section (--section, "ccu", falling
back to "default") of an .edgerc file. --akamai reads the environment
(AKAMAI_CCU_HOST, AKAMAI_CCU_CLIENT_TOKEN, AKAMAI_CCU_CLIENT_SECRET,
AKAMAI_CCU_ACCESS_TOKEN, or AKAMAI_<SECTION>_* for another --section, or plain
AKAMAI_*), then ~/.edgerc. The API client needs the "CCU APIs" grant.

API tokens never go on the command line, where the process list shows them:
they come from the environment, as the CDN's own tools read them, or from a
file flag.

Cloudflare: --cloudflare reads the API token from CLOUDFLARE_API_TOKEN and the
zone's ID from CLOUDFLARE_ZONE_ID; --cloudflare-token-file FILE and
--cloudflare-zone ID stand for them (either also chooses Cloudflare). The token
needs the Zone > Cache Purge > Purge permission. Requests are paced to the
plan's purge bucket (--cloudflare-plan, default pro); a refused token or an
unknown zone fails at once, without retries.

Fastly: --fastly reads the API token from FASTLY_API_TOKEN and the service's ID
from FASTLY_SERVICE_ID, as the Fastly CLI does; --fastly-token-file FILE and
--fastly-service ID stand for them (either also chooses Fastly). The token needs
the purge_select scope. --fastly-soft marks content stale instead of removing
it. A URL is purged by its host, path and query (the scheme is not part of
Fastly's cache key); tags are surrogate keys.

CloudFront: --cloudfront-distribution ID invalidates that distribution, with the
credentials and region of the AWS default chain, as the AWS CLI finds them
(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws, SSO, web
identity, the container or instance role); they need cloudfront:CreateInvalidation
and cloudfront:GetInvalidation. A URL becomes its path and query, invalidated on
every host the distribution serves, so paths need no --site-host; a path ending
in * is a wildcard. At most 3,000 paths and 15 wildcard paths may be in progress
on a distribution: past that, the purge waits for earlier invalidations to
complete (minutes) instead of failing. Tags need --cloudfront-cache-tags (a
distribution with a CacheTagConfig). Paths past the account's 1,000 free a month
cost $0.005 each, a wildcard counting as one: to purge a whole site, invalidate
'/*'.`

// purgeExample is the purge command's examples.
const purgeExample = `  # Invalidate two pages on Akamai's production network
  gormpurge purge --akamai-edgerc ~/.edgerc https://www.example.com/ https://www.example.com/about

  # Delete on staging, credentials from AKAMAI_CCU_* variables, URLs from a file
  gormpurge purge --akamai --network staging --action delete --file urls.txt

  # Paths on two hosts, read from standard input
  grep -v draft paths.txt | gormpurge purge --akamai --site-host www.example.com --site-host example.com -

  # Cache tags, and whole CP codes
  gormpurge purge --akamai --tags product-42 category-7
  gormpurge purge --akamai --cpcodes 123456 234567

  # Every node of a Varnish cluster, paths served as www.example.com
  gormpurge purge --http-nodes http://10.0.0.5:6081,http://10.0.0.6:6081 --site-host www.example.com /posts/1 /

  # xkey tags on Varnish; see what would be sent first
  gormpurge purge --http-nodes 10.0.0.5:6081 --tags --dry-run post-1 post-2

  # Cloudflare, token and zone from CLOUDFLARE_API_TOKEN and CLOUDFLARE_ZONE_ID
  gormpurge purge --cloudflare --site-host www.example.com /posts/1 /
  gormpurge purge --cloudflare --cloudflare-plan business --tags post-1 post-2

  # Fastly soft purge of surrogate keys, token from a file
  FASTLY_SERVICE_ID=SU1Z0isxPaozGVKXdv0eY gormpurge purge --fastly-token-file ~/.fastly-token --fastly-soft --tags post-1

  # CloudFront, AWS credentials from the default chain: two pages, then everything
  AWS_PROFILE=prod gormpurge purge --cloudfront-distribution EDFDVBD6EXAMPLE /posts/1 '/posts/1?page=2'
  gormpurge purge --cloudfront-distribution EDFDVBD6EXAMPLE '/*'`

func newPurgeCmd(a *app) *cobra.Command {
	o := &purgeOptions{}
	cmd := &cobra.Command{
		Use:     "purge [flags] (URL... | -)",
		Short:   "Purge URLs, cache tags or CP codes from a CDN or HTTP caches",
		Long:    fmt.Sprintf(purgeLong, backendSummaries()),
		Example: purgeExample,
		Args:    cobra.ArbitraryArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.purge(cmd, o, args)
		}),
	}
	f := cmd.Flags()
	f.SortFlags = false

	f.StringArrayVarP(&o.files, "file", "f", nil, "read objects from `FILE`, one per line (# comments and blank lines skipped); - is standard input; repeatable")
	f.BoolVar(&o.tags, "tags", false, "the objects are cache tags (Akamai Edge-Cache-Tag, Varnish xkey, Surrogate-Key), not URLs")
	f.BoolVar(&o.cpcodes, "cpcodes", false, "the objects are Akamai CP codes: purge everything served under them")
	f.Var((*commaList)(&o.siteHosts), "site-host", "purge paths such as /posts/1 on the site `HOST` www.example.com; comma-separated or repeated for several")
	f.BoolVar(&o.skipInvalid, "skip-invalid", false, "purge the valid objects when some are invalid, and report those (exit status 1)")
	group(f, "Objects", "file", "tags", "cpcodes", "site-host", "skip-invalid")

	o.backends = addBackendFlags(f)

	f.IntVar(&o.maxAttempts, "max-attempts", dispatcher.DefaultMaxAttempts, "try each batch at most `N` times, with backoff, before it fails; 1 disables retries")
	f.DurationVar(&o.attemptTimeout, "attempt-timeout", defaultAttemptTimeout, "give up on one attempt at a batch after this `DURATION` (at most --timeout); HTTP caches get about 100 requests per node per batch")
	f.DurationVar(&o.timeout, "timeout", defaultPurgeTimeout, "give up on what is not purged after this `DURATION`, in all")
	f.BoolVarP(&o.dryRun, "dry-run", "n", false, "check the objects and the configuration, print what would be sent (with the Host header of each URL for HTTP caches, what each is sent as for CDNs), send nothing")
	group(f, "Delivery", "max-attempts", "attempt-timeout", "timeout", "dry-run")

	f.BoolVar(&o.json, "json", false, "print the summary as JSON")
	f.BoolVar(&o.noProgress, "no-progress", false, "draw no progress bar")
	group(f, "Output", "json", "no-progress")
	return cmd
}

// commaList is a flag that takes comma-separated values, and may be
// repeated. Unlike pflag's string slices, it does not read its value as CSV,
// so it never fails: a CSV error would quote the value, and a node URL may
// hold a password. The values are checked where they are used, by code that
// does not show credentials.
type commaList []string

func (l *commaList) String() string { return strings.Join(*l, ",") }

func (l *commaList) Set(v string) error {
	*l = append(*l, strings.Split(v, ",")...)
	return nil
}

func (l *commaList) Type() string { return "strings" }

// purgeKind is what the objects of a run are.
type purgeKind struct {
	name           string // "url", "tag", "cpcode", as in the JSON summary
	single, plural string // "URL", "URLs"
}

var (
	kindURLs    = purgeKind{"url", "URL", "URLs"}
	kindTags    = purgeKind{"tag", "tag", "tags"}
	kindCPCodes = purgeKind{"cpcode", "CP code", "CP codes"}
)

// count returns "1 URL" or "3 URLs".
func (k purgeKind) count(n int) string {
	if n == 1 {
		return "1 " + k.single
	}
	return strconv.Itoa(n) + " " + k.plural
}

// progressMode is the progress bar's mode the flags ask for.
func (o *purgeOptions) progressMode() progressMode { return progressModeOf(o.noProgress) }

// retryPolicy is the retry policy the flags describe, shared by the
// dispatcher and the CP-code purges: the dispatcher's default backoff,
// --max-attempts, and --timeout as the bound on the time retried.
func (o *purgeOptions) retryPolicy() dispatcher.RetryPolicy {
	p := dispatcher.DefaultRetryPolicy()
	p.MaxAttempts = o.maxAttempts
	p.MaxElapsed = o.timeout
	return p
}
