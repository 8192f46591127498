package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/akamai"
	"github.com/gormpurge/gormpurge/backends/httppurge"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// Defaults of the purge command's flags.
const (
	defaultPurgeTimeout = 30 * time.Minute
	defaultEdgerc       = "~/.edgerc"
	defaultBanHeader    = "X-Ban-Tags"
	// chunkSize is how many objects one Submit to the dispatcher holds: the
	// progress bar advances as each chunk settles. The dispatcher merges
	// chunks into batches as large as the backend takes.
	chunkSize = 100
	// defaultAttemptTimeout bounds one call to a backend (one batch).
	defaultAttemptTimeout = 2 * time.Minute
	// httpBatchRequests is about how many requests one batch sends to each
	// HTTP cache node: a path is one request per --site-host, so a batch
	// holds httpBatchRequests/len(siteHosts) objects. With the default
	// node concurrency and request timeout, such a batch ends within
	// --attempt-timeout even on a slow node.
	httpBatchRequests = 100
	// maxNodeConcurrency bounds --node-concurrency.
	maxNodeConcurrency = 256
)

// purgeOptions are the purge command's flags.
type purgeOptions struct {
	files       []string
	tags        bool
	cpcodes     bool
	skipInvalid bool
	siteHosts   []string

	akamai  bool
	edgerc  string
	section string
	network string
	action  string

	nodes     []string
	method    string
	tagMode   string
	banHeader string
	headers   []string

	requestTimeout  time.Duration
	nodeConcurrency int

	maxAttempts    int
	attemptTimeout time.Duration
	timeout        time.Duration
	dryRun         bool

	json       bool
	noProgress bool
}

// Flags that apply to one kind of backend only.
var (
	akamaiOnlyFlags = []string{"section", "network", "action", "cpcodes"}
	httpOnlyFlags   = []string{"method", "tag-mode", "ban-header", "header", "request-timeout", "node-concurrency"}
)

func newPurgeCmd(a *app) *cobra.Command {
	o := &purgeOptions{}
	cmd := &cobra.Command{
		Use:   "purge [flags] (URL... | -)",
		Short: "Purge URLs, cache tags or CP codes from Akamai or HTTP caches",
		Long: `Purge URLs, cache tags (--tags) or Akamai CP codes (--cpcodes) from one backend:
Akamai Fast Purge (--akamai-edgerc FILE, or --akamai), or HTTP caches that accept
PURGE, such as Varnish, nginx and Squid (--http-nodes).

Objects come from the arguments, from files (--file, one per line; blank lines and
lines starting with # are skipped), or from standard input with - . They are
checked before anything is sent: a URL must be an absolute http(s) URL, or a path
beginning with / when --site-host names the site's hosts, and is purged in its
canonical form (host in lower case and punycode, path and query percent-encoded
as browsers send them); a tag must hold no space, comma or control character (nor,
for Akamai, any character Fast Purge refuses); a CP code is a positive number. One invalid input refuses the whole run with exit
status 2, naming each by file and line, unless --skip-invalid purges the rest.

Everything goes through the gormpurge dispatcher: batched to the backend's limits
(Akamai: 50,000-byte bodies, at most 10,000 URLs or 5,000 tags a request), retried
with exponential backoff (--max-attempts), and, for Akamai, paced to the account's
rate limits so that a large list does not end in 429s. A progress bar shows on a
terminal for more than 50 objects.

The summary on stdout counts what was purged, gives the ids Akamai returned
(purgeId, supportId) or each node's answers, and lists every object not purged
with its cause; --json prints it as JSON. Exit status 0 when everything was
purged, 1 when anything was not, 2 for a usage error (nothing sent).

Akamai credentials: --akamai-edgerc FILE reads a section (--section, "ccu", falling
back to "default") of an .edgerc file. --akamai reads the environment
(AKAMAI_CCU_HOST, AKAMAI_CCU_CLIENT_TOKEN, AKAMAI_CCU_CLIENT_SECRET,
AKAMAI_CCU_ACCESS_TOKEN, or AKAMAI_<SECTION>_* for another --section, or plain
AKAMAI_*), then ~/.edgerc. The API client needs the "CCU APIs" grant.`,
		Example: `  # Invalidate two pages on Akamai's production network
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
  gormpurge purge --http-nodes 10.0.0.5:6081 --tags --dry-run post-1 post-2`,
		Args: cobra.ArbitraryArgs,
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

	f.BoolVar(&o.akamai, "akamai", false, "purge from Akamai, with credentials from AKAMAI_* variables or ~/.edgerc")
	f.StringVar(&o.edgerc, "akamai-edgerc", "", "purge from Akamai, with credentials from this .edgerc `FILE` (--akamai reads ~/.edgerc after the environment)")
	f.StringVar(&o.section, "section", akamai.DefaultSection, "the .edgerc `SECTION` (or AKAMAI_<SECTION>_* variables); \"ccu\" falls back to \"default\"")
	f.StringVar(&o.network, "network", string(akamai.Production), "Akamai `NETWORK`: production or staging")
	f.StringVar(&o.action, "action", string(akamai.Invalidate), "`ACTION`: invalidate (revalidate with the origin) or delete (fetch anew)")
	group(f, "Akamai", "akamai", "akamai-edgerc", "section", "network", "action")

	f.Var((*commaList)(&o.nodes), "http-nodes", "purge from HTTP caches: each `NODE`'s base URL, such as http://10.0.0.5:6081 (comma-separated or repeated)")
	f.StringVar(&o.method, "method", httppurge.DefaultMethod, "HTTP `METHOD` of URL purges, such as BAN for a VCL that bans by URL")
	f.StringVar(&o.tagMode, "tag-mode", "xkey", "how the caches purge tags (`MODE`): xkey, xkey-soft, surrogate-key, ban, or none")
	f.StringVar(&o.banHeader, "ban-header", defaultBanHeader, "the `HEADER` holding the ban expression with --tag-mode ban")
	f.StringArrayVarP(&o.headers, "header", "H", nil, "add `'Name: value'` to every purge request, such as a token the cache checks; repeatable")
	f.DurationVar(&o.requestTimeout, "request-timeout", httppurge.DefaultRequestTimeout, "give up on one purge request to a node after this `DURATION`")
	f.IntVar(&o.nodeConcurrency, "node-concurrency", httppurge.DefaultNodeConcurrency, fmt.Sprintf("send at most `N` purge requests to each node at once (1 to %d)", maxNodeConcurrency))
	group(f, "HTTP caches", "http-nodes", "method", "tag-mode", "ban-header", "header", "request-timeout", "node-concurrency")

	f.IntVar(&o.maxAttempts, "max-attempts", dispatcher.DefaultMaxAttempts, "try each batch at most `N` times, with backoff, before it fails; 1 disables retries")
	f.DurationVar(&o.attemptTimeout, "attempt-timeout", defaultAttemptTimeout, "give up on one attempt at a batch after this `DURATION` (at most --timeout); HTTP caches get about 100 requests per node per batch")
	f.DurationVar(&o.timeout, "timeout", defaultPurgeTimeout, "give up on what is not purged after this `DURATION`, in all")
	f.BoolVarP(&o.dryRun, "dry-run", "n", false, "check the objects and the configuration, print what would be sent, send nothing")
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

func (a *app) purge(cmd *cobra.Command, o *purgeOptions, args []string) error {
	flags := cmd.Flags()
	useAkamai := o.akamai || flags.Changed("akamai-edgerc")
	useHTTP := len(o.nodes) > 0
	switch {
	case useAkamai && useHTTP:
		return usageErrorf("choose one backend: Akamai (--akamai-edgerc, --akamai) or HTTP caches (--http-nodes), not both")
	case !useAkamai && !useHTTP:
		return usageErrorf("choose a backend: --akamai-edgerc FILE or --akamai for Akamai, or --http-nodes URL,... for HTTP caches")
	}
	misplaced, backendName := httpOnlyFlags, "Akamai"
	if useHTTP {
		misplaced, backendName = akamaiOnlyFlags, "HTTP caches"
	}
	for _, name := range misplaced {
		if flags.Changed(name) {
			return usageErrorf("--%s does not apply to %s", name, backendName)
		}
	}
	if o.tags && o.cpcodes {
		return usageErrorf("--tags and --cpcodes: choose one")
	}
	// Host names are case-insensitive: lowercased, equal ones merge.
	var hosts []string
	for _, h := range o.siteHosts {
		if h = strings.ToLower(strings.TrimSpace(h)); !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	o.siteHosts = hosts
	if o.cpcodes && len(o.siteHosts) > 0 {
		return usageErrorf("--site-host does not apply to --cpcodes")
	}
	if o.maxAttempts < 1 {
		return usageErrorf("--max-attempts %d: need at least 1", o.maxAttempts)
	}
	if o.timeout <= 0 {
		return usageErrorf("--timeout %v: need a positive duration", o.timeout)
	}
	if o.attemptTimeout <= 0 {
		return usageErrorf("--attempt-timeout %v: need a positive duration", o.attemptTimeout)
	}
	if o.requestTimeout <= 0 {
		return usageErrorf("--request-timeout %v: need a positive duration", o.requestTimeout)
	}
	if o.nodeConcurrency < 1 || o.nodeConcurrency > maxNodeConcurrency {
		return usageErrorf("--node-concurrency %d: need 1 to %d", o.nodeConcurrency, maxNodeConcurrency)
	}

	kind := kindURLs
	var checker checkFunc
	switch {
	case o.cpcodes:
		kind, checker = kindCPCodes, checkCPCode
	case o.tags:
		kind, checker = kindTags, checkTag(useAkamai)
	default:
		checker = checkURL(len(o.siteHosts) > 0, "name the site's hosts with --site-host, or give absolute URLs")
	}

	// The backend first: a configuration error is reported before the
	// inputs are read, and dry runs check it too.
	var (
		b    backends.Backend
		desc string
		err  error
	)
	if useAkamai {
		b, desc, err = a.akamaiBackend(flags.Changed("akamai-edgerc"), o)
	} else {
		b, desc, err = a.httpBackend(o, kind)
	}
	if err != nil {
		return err
	}
	defer closeBackend(b)

	ins, err := readInputs(args, o.files, a.stdin)
	if err != nil {
		return err
	}
	if len(ins) == 0 {
		return usageErrorf("nothing to purge: give %s as arguments, --file FILE, or - to read standard input", kind.plural)
	}
	valid, bad := check(ins, checker)
	if len(bad) > 0 && !o.skipInvalid {
		return invalidError(bad, "fix them, or pass --skip-invalid to purge the rest")
	}
	if len(valid) == 0 {
		return usageErrorf("nothing to purge: every input is invalid")
	}
	objects := backends.NewRequest(valid, nil).URLs // sorted, without duplicates

	rep := &purgeReport{
		Backend:     b.Name(),
		Description: desc,
		Kind:        kind.name,
		Objects:     len(objects),
		Duplicates:  len(valid) - len(objects),
		Invalid:     bad,
		kind:        kind,
	}
	if o.dryRun {
		rep.DryRun = true
		rep.List = objects
		rep.EstimatedRequests, rep.PerNode = estimateRequests(b, kind, objects, o)
		if err := rep.write(a.stdout, o.json); err != nil {
			return err
		}
		if len(bad) > 0 {
			return failedf("%d invalid %s skipped", len(bad), plural(len(bad), "input", "inputs"))
		}
		return nil
	}

	ctx := cmd.Context()
	start := time.Now()
	if o.cpcodes {
		a.purgeCPCodes(ctx, b.(*akamai.Backend), objects, o, rep)
	} else {
		a.deliver(ctx, b, objects, kind, o, rep)
	}
	rep.Elapsed = time.Since(start).Round(time.Millisecond).String()
	if err := rep.write(a.stdout, o.json); err != nil {
		return err
	}
	switch {
	case rep.Failed > 0 && len(bad) > 0:
		return failedf("%d of %s not purged, and %d invalid %s skipped", rep.Failed, kind.count(rep.Objects), len(bad), plural(len(bad), "input", "inputs"))
	case rep.Failed > 0:
		return failedf("%d of %s not purged", rep.Failed, kind.count(rep.Objects))
	case len(bad) > 0:
		return failedf("%d invalid %s skipped", len(bad), plural(len(bad), "input", "inputs"))
	}
	return nil
}

// plural returns one or many for n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// akamaiBackend builds the Akamai backend the flags describe, and a short
// description of it.
func (a *app) akamaiBackend(edgercGiven bool, o *purgeOptions) (*akamai.Backend, string, error) {
	network := akamai.Network(strings.ToLower(o.network))
	if network != akamai.Production && network != akamai.Staging {
		return nil, "", usageErrorf("--network %q: use production or staging", o.network)
	}
	action := akamai.Action(strings.ToLower(o.action))
	if action != akamai.Invalidate && action != akamai.Delete {
		return nil, "", usageErrorf("--action %q: use invalidate or delete", o.action)
	}
	opts := []akamai.Option{
		akamai.WithNetwork(network),
		akamai.WithAction(action),
		akamai.WithLogger(a.logger),
	}
	if edgercGiven {
		if o.edgerc == "" {
			return nil, "", usageErrorf("--akamai-edgerc: name the .edgerc file")
		}
		opts = append(opts, akamai.WithEdgerc(o.edgerc, o.section))
	} else {
		opts = append(opts, akamai.WithEnv(o.section), akamai.WithEdgerc(defaultEdgerc, o.section))
	}
	if len(o.siteHosts) > 0 {
		opts = append(opts, akamai.WithHostnames(o.siteHosts...))
	}
	if a.httpClient != nil {
		opts = append(opts, akamai.WithHTTPClient(a.httpClient))
	}
	b, err := akamai.New(opts...)
	if err != nil {
		return nil, "", usageErrorf("%v", err)
	}
	return b, fmt.Sprintf("%s on %s", action, network), nil
}

// tagModes maps --tag-mode to the backend's tag modes.
var tagModes = map[string]func(banHeader string) httppurge.TagMode{
	"xkey":          func(string) httppurge.TagMode { return httppurge.XKey() },
	"xkey-soft":     func(string) httppurge.TagMode { return httppurge.XKeySoft() },
	"surrogate-key": func(string) httppurge.TagMode { return httppurge.SurrogateKey() },
	"ban":           httppurge.BanTags,
	"none":          func(string) httppurge.TagMode { return httppurge.NoTags() },
}

// httpBackend builds the HTTP cache backend the flags describe, and a
// short description of it.
func (a *app) httpBackend(o *purgeOptions, kind purgeKind) (*httppurge.Backend, string, error) {
	mode, ok := tagModes[strings.ToLower(o.tagMode)]
	if !ok {
		return nil, "", usageErrorf("--tag-mode %q: use xkey, xkey-soft, surrogate-key, ban or none", o.tagMode)
	}
	if kind == kindTags && strings.EqualFold(o.tagMode, "none") {
		return nil, "", usageErrorf("--tags with --tag-mode none: the caches would purge nothing; choose how they purge tags")
	}
	opts := []httppurge.Option{
		httppurge.WithNodes(o.nodes...),
		httppurge.WithMethod(strings.ToUpper(o.method)),
		httppurge.WithTagMode(mode(o.banHeader)),
		httppurge.WithLogger(a.logger),
		httppurge.WithRequestTimeout(o.requestTimeout),
		httppurge.WithNodeConcurrency(o.nodeConcurrency),
		httppurge.WithMaxObjects(httpBatchObjects(len(o.siteHosts))),
	}
	if len(o.siteHosts) > 0 {
		opts = append(opts, httppurge.WithSiteHost(o.siteHosts...))
	}
	for _, h := range o.headers {
		name, value, err := parseHeader(h)
		if err != nil {
			return nil, "", err
		}
		opts = append(opts, httppurge.WithHeader(name, value))
	}
	b, err := httppurge.New(opts...)
	if err != nil {
		return nil, "", usageErrorf("%v", err)
	}
	nodes := b.Nodes()
	what := strings.ToUpper(o.method)
	if kind == kindTags {
		what = "tags (" + strings.ToLower(o.tagMode) + ")"
	}
	return b, fmt.Sprintf("%s to %d %s: %s", what, len(nodes), plural(len(nodes), "node", "nodes"), strings.Join(nodes, ", ")), nil
}

// httpBatchObjects returns how many objects one batch to HTTP caches
// holds, so that it sends about httpBatchRequests requests to each node
// when each path is purged on siteHosts hosts.
func httpBatchObjects(siteHosts int) int {
	return max(1, httpBatchRequests/max(1, siteHosts))
}

// parseHeader parses a --header value, "Name: value". Its errors never
// show the value, which may be a token.
func parseHeader(h string) (name, value string, err error) {
	name, value, ok := strings.Cut(h, ":")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	switch {
	case !ok && validHeaderName(name):
		return "", "", usageErrorf("--header %s: no colon; want 'Name: value'", name)
	case !ok || name == "":
		return "", "", usageErrorf("--header: want 'Name: value' (value not shown)")
	case !validHeaderName(name):
		return "", "", usageErrorf("--header: %q is not a valid header name; want 'Name: value'", name)
	case strings.ContainsFunc(value, func(r rune) bool { return r != '\t' && (r < ' ' || r == 0x7f) }):
		return "", "", usageErrorf("--header %s: the value holds a control character (value not shown)", name)
	}
	return name, value, nil
}

// validHeaderName reports whether s is an HTTP token, as header names are.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r >= 0x7f || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// closeBackend releases a backend's connections. The dispatcher closes
// the backend when it closes; this covers the runs that make none (dry
// runs, CP codes, errors before the purge). A second Close is harmless.
func closeBackend(b backends.Backend) {
	if c, ok := b.(backends.Closer); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	}
}

// retryPolicy is the retry policy the flags describe, shared by the
// dispatcher and the CP-code purges: the dispatcher's default backoff,
// --max-attempts, and --timeout as the bound on the time retried.
func (o *purgeOptions) retryPolicy() dispatcher.RetryPolicy {
	p := dispatcher.DefaultRetryPolicy()
	p.MaxAttempts = o.maxAttempts
	p.MaxElapsed = o.timeout
	return p
}

// deliver purges objects through a dispatcher, recording the outcome in
// rep.
func (a *app) deliver(ctx context.Context, b backends.Backend, objects []string, kind purgeKind, o *purgeOptions, rep *purgeReport) {
	runCtx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	var (
		mu      sync.Mutex
		reports []dispatcher.Report
		states  = map[string]*objectState{} // what the reports say of each object
	)
	var rec *attemptRecorder
	if hb, ok := b.(*httppurge.Backend); ok {
		rec = &attemptRecorder{Backend: hb}
		b = rec
	}
	d, err := dispatcher.New([]backends.Backend{b},
		dispatcher.WithLogger(a.logger),
		dispatcher.WithRetry(o.retryPolicy()),
		dispatcher.WithAttemptTimeout(min(o.attemptTimeout, o.timeout)),
		dispatcher.WithOnResult(func(r dispatcher.Report) {
			mu.Lock()
			defer mu.Unlock()
			reports = append(reports, r)
			recordReport(states, r)
		}),
	)
	if err != nil { // the flags were checked: a bug, reported per object rather than lost
		for _, obj := range objects {
			rep.fail(obj, "not purged: "+err.Error())
		}
		return
	}

	chunks := slices.Collect(slices.Chunk(objects, chunkSize))
	tickets := make([]*dispatcher.Ticket, 0, len(chunks))
	settledCh := make(chan int, len(chunks))
	for _, c := range chunks {
		if runCtx.Err() != nil {
			break
		}
		r := backends.Request{URLs: c}
		if kind == kindTags {
			r = backends.Request{Tags: c}
		}
		t, _ := d.Submit(runCtx, r) // a refusal is the ticket's outcome
		if t == nil {
			break // closed: cannot happen before Close
		}
		i := len(tickets)
		tickets = append(tickets, t)
		go func() {
			<-t.Done() // every ticket is done once Close returns
			settledCh <- i
		}()
	}

	bar := a.newProgress(len(objects), "purging", o.noProgress)
	why := func(err error) string { // why an object was not sent
		switch {
		case ctx.Err() != nil:
			return "not purged: interrupted"
		case runCtx.Err() != nil:
			return fmt.Sprintf("not purged: --timeout %v ran out", o.timeout)
		case err != nil:
			return "not purged: " + errorText(err)
		}
		return "not purged: not sent"
	}
	// settle counts the objects of chunk i by the reports of the batches
	// that held them: the dispatcher calls the hook before the ticket is
	// done, and a chunk may be spread over several batches, so the
	// ticket's single outcome does not tell each object's.
	settle := func(i int) {
		c := chunks[i]
		mu.Lock()
		defer mu.Unlock()
		for _, obj := range c {
			st := states[obj]
			switch {
			case st != nil && st.delivered:
				rep.Purged++
			case st != nil && st.outcome == dispatcher.Failed && st.err != nil:
				rep.fail(obj, reasonFor(obj, st.err))
			case st != nil:
				rep.fail(obj, why(st.err))
			default:
				rep.fail(obj, why(nil))
			}
		}
		bar.add(len(c))
	}

	pending := len(tickets)
wait:
	for pending > 0 {
		select {
		case i := <-settledCh:
			settle(i)
			pending--
		case <-runCtx.Done():
			break wait
		}
	}
	// With everything settled, Close returns at once; after a timeout or
	// an interruption, it drops what is left, settling its tickets.
	if runCtx.Err() != nil {
		closeNow(d)
	} else {
		closeCtx, closeCancel := context.WithTimeout(context.Background(), time.Minute)
		if err := d.Close(closeCtx); err != nil {
			a.logger.Debug("dispatcher: closed with undelivered requests", "error", err)
		}
		closeCancel()
	}
	for ; pending > 0; pending-- {
		settle(<-settledCh)
	}
	for _, c := range chunks[len(tickets):] {
		for _, obj := range c {
			rep.fail(obj, why(nil))
		}
	}
	bar.finish()

	mu.Lock()
	defer mu.Unlock()
	var attempts []backends.Result
	if rec != nil {
		attempts = rec.results()
	}
	rep.addResults(reports, attempts)
}

// attemptRecorder is an HTTP cache backend that keeps the result of every
// call to Purge: each attempt at a batch, for the per-node counts.
type attemptRecorder struct {
	*httppurge.Backend
	mu  sync.Mutex
	res []backends.Result
}

func (r *attemptRecorder) Purge(ctx context.Context, req backends.Request) (backends.Result, error) {
	res, err := r.Backend.Purge(ctx, req)
	r.mu.Lock()
	r.res = append(r.res, res)
	r.mu.Unlock()
	return res, err
}

func (r *attemptRecorder) results() []backends.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.res)
}

// objectState is what the dispatcher's reports say of one object: that a
// batch delivered it, else how the last batch that held it ended.
type objectState struct {
	delivered bool
	outcome   dispatcher.Outcome
	err       error
}

// recordReport records in states what r says of each object of its batch:
// delivered when r was, or when r failed in part and its error does not
// name the object ([backends.FailedObjects]); failed or dropped otherwise.
// A delivery is never undone by a later report.
func recordReport(states map[string]*objectState, r dispatcher.Report) {
	objs := slices.Concat(r.Request.URLs, r.Request.Tags)
	var failed map[string]bool // nil: the whole batch failed
	if r.Outcome == dispatcher.Failed {
		if fo, ok := backends.FailedObjects(r.Err); ok {
			failed = map[string]bool{}
			for _, s := range slices.Concat(fo.URLs, fo.Tags) {
				failed[s] = true
			}
			// A Partial naming none of the batch's objects is about all
			// of them, as the dispatcher counts it.
			if !slices.ContainsFunc(objs, func(s string) bool { return failed[s] }) {
				failed = nil
			}
		}
	}
	for _, obj := range objs {
		st := states[obj]
		if st == nil {
			st = &objectState{}
			states[obj] = st
		}
		if st.delivered {
			continue
		}
		switch {
		case r.Outcome == dispatcher.Delivered,
			r.Outcome == dispatcher.Failed && failed != nil && !failed[obj]:
			st.delivered = true
		default:
			st.outcome, st.err = r.Outcome, r.Err
		}
	}
}

// closeNow closes d at once, cancelling what is in flight and dropping
// what is queued.
func closeNow(d *dispatcher.Dispatcher) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	_ = d.Close(done) // the undelivered requests settle their tickets as dropped
}

// purgeCPCodes purges whole CP codes, recording the outcome in rep. The
// backend paces them itself; a temporary failure is tried again with
// exponential backoff, as the dispatcher does, up to --max-attempts
// within --timeout.
func (a *app) purgeCPCodes(ctx context.Context, b *akamai.Backend, objects []string, o *purgeOptions, rep *purgeReport) {
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

// errorText is err's message without the "permanent: " that marks errors
// the dispatcher does not retry.
func errorText(err error) string {
	return strings.TrimPrefix(err.Error(), "permanent: ")
}

// reasonFor says why obj failed in a batch that failed with err: Akamai's
// reason for that object when its answer names it, else err.
func reasonFor(obj string, err error) string {
	var rej *akamai.RejectedError
	if errors.As(err, &rej) {
		for _, r := range rej.Rejected {
			if sameObject(r.Object, obj) {
				return r.Reason
			}
		}
	}
	return errorText(err)
}

// sameObject reports whether sent, an object as Akamai got it (an https
// URL), is obj as given (an http(s) URL or a path).
func sameObject(sent, obj string) bool {
	if sent == obj {
		return true
	}
	s := stripScheme(sent)
	if strings.HasPrefix(obj, "/") {
		i := strings.Index(s, "/")
		return i >= 0 && s[i:] == obj
	}
	return strings.EqualFold(s, stripScheme(obj))
}

// stripScheme returns u without "http://" or "https://".
func stripScheme(u string) string {
	for _, p := range []string{"https://", "http://"} {
		if len(u) >= len(p) && strings.EqualFold(u[:len(p)], p) {
			return u[len(p):]
		}
	}
	return u
}

// estimateRequests returns about how many requests purging objects takes:
// for Akamai in all, for HTTP caches per node (perNode).
func estimateRequests(b backends.Backend, kind purgeKind, objects []string, o *purgeOptions) (n int, perNode bool) {
	switch b := b.(type) {
	case *akamai.Backend:
		if kind == kindCPCodes {
			burst := akamai.PublishedRateLimits().CPCodes.Burst
			return (len(objects) + burst - 1) / burst, false
		}
		return countBatches(b.Limits(), objects, kind == kindTags), false
	case *httppurge.Backend:
		if kind == kindTags {
			return tagRequests(tagModes[strings.ToLower(o.tagMode)](o.banHeader), objects), true
		}
		for _, u := range objects {
			if strings.HasPrefix(u, "/") {
				n += len(o.siteHosts)
			} else {
				n++
			}
		}
		return n, true
	}
	return len(objects), false
}

// countBatches returns how many batches the dispatcher cuts objects into
// for limits l: it packs them greedily, as the dispatcher does, finding
// each batch's end by doubling and bisection so that a long list costs
// few calls of l.Fits.
func countBatches(l backends.Limits, objects []string, tags bool) int {
	fits := func(s []string) bool {
		if tags {
			return l.Fits(backends.Request{Tags: s})
		}
		return l.Fits(backends.Request{URLs: s})
	}
	n := 0
	for i := 0; i < len(objects); n++ {
		rest := objects[i:]
		good, step := 1, 1 // a batch always takes at least one object
		for good < len(rest) && fits(rest[:min(good+step, len(rest))]) {
			good = min(good+step, len(rest))
			step *= 2
		}
		if good < len(rest) {
			bad := min(good+step, len(rest)) // does not fit
			for bad-good > 1 {
				mid := (good + bad) / 2
				if fits(rest[:mid]) {
					good = mid
				} else {
					bad = mid
				}
			}
		}
		i += good
	}
	return n
}

// tagRequests returns how many requests m takes to purge tags: each header
// holds as many as fit in m.MaxHeaderBytes.
func tagRequests(m httppurge.TagMode, tags []string) int {
	if m.MaxHeaderBytes <= 0 {
		return min(1, len(tags))
	}
	n, size := 0, 0
	for _, t := range tags {
		if m.Quote != nil {
			t = m.Quote(t)
		}
		switch {
		case size == 0:
			n++
			size = len(m.Prefix) + len(t) + len(m.Suffix)
		case size+len(m.Separator)+len(t) > m.MaxHeaderBytes:
			n++
			size = len(m.Prefix) + len(t) + len(m.Suffix)
		default:
			size += len(m.Separator) + len(t)
		}
	}
	return n
}
