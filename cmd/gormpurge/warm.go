package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gormpurge/gormpurge/warm"
)

// passwordEnv holds the password for --basic-auth USER, so that it stays
// out of the process list and the shell's history.
const passwordEnv = "GORMPURGE_WARM_PASSWORD"

// warmOptions are the warm command's flags.
type warmOptions struct {
	files       []string
	baseURL     string
	skipInvalid bool

	concurrency int
	timeout     time.Duration
	basicAuth   string
	headers     []string
	host        string
	userAgent   string

	json       bool
	noProgress bool
}

func newWarmCmd(a *app) *cobra.Command {
	o := &warmOptions{}
	cmd := &cobra.Command{
		Use:   "warm [flags] (URL... | -)",
		Short: "Fetch pages again after a purge, so that caches hold them",
		Long: `Fetch each page once with GET, a few at a time, and read it to the end, so that
the caches in front of the site store it again before visitors ask: run it after
a purge. Redirects are not followed (a 3xx counts as failed), and every fetch asks
for gzip, as browsers do.

Pages come from the arguments, from files (--file, one per line; blank lines and
lines starting with # are skipped), or from standard input with - . Paths such as
/posts/1 need --base-url. An invalid one refuses the run (exit status 2) unless
--skip-invalid.

The summary gives the status codes and timings (p50, p95, max), and lists every
page that failed; --json prints it, with each page's result, as JSON. Exit status
0 when every page answered 2xx, 1 when any did not.

Caches do not store answers to requests with credentials or cookies unless told
to: --basic-auth is for a site behind basic authentication (a staging site) whose
cache is configured for it.`,
		Example: `  # Warm the pages just purged, through the CDN
  gormpurge warm https://www.example.com/ https://www.example.com/about

  # Paths from a file, eight at a time
  gormpurge warm --base-url https://www.example.com --concurrency 8 --file paths.txt

  # Through one Varnish node, as the public host, the password from the environment
  GORMPURGE_WARM_PASSWORD=secret gormpurge warm --base-url http://10.0.0.5:6081 \
      --host www.example.com --basic-auth warmup - < paths.txt`,
		Args: cobra.ArbitraryArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.warm(cmd, o, args)
		}),
	}
	f := cmd.Flags()
	f.SortFlags = false

	f.StringArrayVarP(&o.files, "file", "f", nil, "read pages from `FILE`, one per line (# comments and blank lines skipped); - is standard input; repeatable")
	f.StringVar(&o.baseURL, "base-url", "", "the site `URL` that paths are fetched from, such as https://www.example.com")
	f.BoolVar(&o.skipInvalid, "skip-invalid", false, "fetch the valid pages when some are invalid, and report those (exit status 1)")
	group(f, "Pages", "file", "base-url", "skip-invalid")

	f.IntVarP(&o.concurrency, "concurrency", "c", warm.DefaultConcurrency, fmt.Sprintf("fetch at most `N` pages at a time (1 to %d)", maxWarmConcurrency))
	f.DurationVar(&o.timeout, "timeout", warm.DefaultTimeout, "bound each fetch by this `DURATION`, from the request to the end of the page")
	f.StringVarP(&o.basicAuth, "basic-auth", "u", "", "send basic authentication to the --base-url site as `USER:PASSWORD`, or USER with the password in $"+passwordEnv)
	f.StringArrayVarP(&o.headers, "header", "H", nil, "send `'Name: value'` with every fetch from the --base-url site, such as 'Accept-Language: de'; repeatable")
	f.StringVar(&o.host, "host", "", "send `HOST` as the Host header, to warm the public site through one server's address")
	f.StringVar(&o.userAgent, "user-agent", warm.DefaultUserAgent, "send `AGENT` as the User-Agent, so that logs can tell warm-up traffic apart")
	group(f, "Fetching", "concurrency", "timeout", "basic-auth", "header", "host", "user-agent")

	f.BoolVar(&o.json, "json", false, "print the summary as JSON, with each page's result")
	f.BoolVar(&o.noProgress, "no-progress", false, "draw no progress bar")
	group(f, "Output", "json", "no-progress")
	return cmd
}

// maxWarmConcurrency bounds --concurrency: each fetch is a goroutine and
// a connection.
const maxWarmConcurrency = 1024

func (a *app) warm(cmd *cobra.Command, o *warmOptions, args []string) error {
	opts, err := o.warmerOptions(a, cmd.Flags())
	if err != nil {
		return err
	}
	w, err := warm.New(opts...)
	if err != nil {
		return usageErrorf("%s", redactText(err.Error(), o.baseURL))
	}
	defer func() { _ = w.Close(cmd.Context()) }() // Fetch is over: nothing is left to wait for

	valid, bad, err := a.readPages(o, args)
	if err != nil {
		return err
	}
	var results []warmResult
	distinct := len(slices.Compact(slices.Sorted(slices.Values(valid))))
	bar := a.newProgress(distinct, "warming", progressModeOf(o.noProgress))
	sum := w.Fetch(cmd.Context(), valid, func(r warm.Result) {
		results = append(results, newWarmResult(r))
		bar.add(1)
	})
	bar.finish()

	rep := newWarmReport(sum, bad, results)
	if err := rep.write(a.stdout, formatOf(o.json), sum); err != nil {
		return err
	}
	switch {
	case sum.Failed > 0:
		return failedf("%d of %s not warmed", sum.Failed, countOf(sum.URLs, "page", "pages"))
	case len(bad) > 0:
		return failedf("%s skipped", countOf(len(bad), "invalid input", "invalid inputs"))
	}
	return nil
}

// warmerOptions checks the flags and returns the warmer's options they
// describe.
func (o *warmOptions) warmerOptions(a *app, flags *pflag.FlagSet) ([]warm.Option, error) {
	if o.concurrency < 1 || o.concurrency > maxWarmConcurrency {
		return nil, usageErrorf("--concurrency %d: need 1 to %d", o.concurrency, maxWarmConcurrency)
	}
	if o.timeout <= 0 {
		return nil, usageErrorf("--timeout %v: need a positive duration", o.timeout)
	}
	opts := []warm.Option{
		warm.WithConcurrency(o.concurrency),
		warm.WithTimeout(o.timeout),
		warm.WithUserAgent(o.userAgent),
		warm.WithLogger(a.logger),
	}
	if o.baseURL != "" {
		opts = append(opts, warm.WithBaseURL(o.baseURL))
	}
	if flags.Changed("basic-auth") {
		user, pass, ok := strings.Cut(o.basicAuth, ":")
		if !ok {
			pass = a.variable(passwordEnv)
			if pass == "" {
				return nil, usageErrorf("--basic-auth %q: give USER:PASSWORD, or set %s", o.basicAuth, passwordEnv)
			}
		}
		opts = append(opts, warm.WithBasicAuth(user, pass))
	}
	for _, h := range o.headers {
		name, value, err := parseHeader(h)
		if err != nil {
			return nil, err
		}
		opts = append(opts, warm.WithHeader(name, value))
	}
	if o.host != "" {
		opts = append(opts, warm.WithHeader("Host", o.host))
	}
	if o.baseURL == "" {
		// The warmer sends credentials and headers only to its base URL's
		// site, and refuses them without one.
		for _, name := range []string{"basic-auth", "header", "host"} {
			if flags.Changed(name) {
				return nil, usageErrorf("--%s needs --base-url: credentials and headers are sent only to that site; give the pages as paths, or as URLs of that site", name)
			}
		}
	}
	return opts, nil
}

// readPages reads the pages to warm and checks them, refusing the run
// when one is invalid unless --skip-invalid; it returns the valid ones and
// the invalid ones skipped.
func (a *app) readPages(o *warmOptions, args []string) ([]string, []invalidInput, error) {
	ins, err := readInputs(args, o.files, a.stdin)
	if err != nil {
		return nil, nil, err
	}
	if len(ins) == 0 {
		return nil, nil, usageErrorf("nothing to warm: give URLs as arguments, --file FILE, or - to read standard input")
	}
	paths := absoluteURLsOnly
	if o.baseURL != "" {
		paths = pathsAllowed
	}
	valid, bad := check(ins, checkURL(paths, "set --base-url to say which site to fetch it from, or give absolute URLs"))
	if len(bad) > 0 && !o.skipInvalid {
		return nil, nil, invalidError(bad, "fix them, or pass --skip-invalid to warm the rest")
	}
	if len(valid) == 0 {
		return nil, nil, usageErrorf("nothing to warm: every input is invalid")
	}
	return valid, bad, nil
}

// newWarmReport returns the summary of a warm-up that ended with sum and
// results, the inputs bad skipped.
func newWarmReport(sum warm.Summary, bad []invalidInput, results []warmResult) *warmReport {
	rep := &warmReport{Summary: sum.String(), URLs: sum.URLs, OK: sum.OK, Failed: sum.Failed,
		ByStatus: map[string]int{}, Invalid: bad, Results: results,
		Timings: warmTimings{Min: ms(sum.Min), Median: ms(sum.Median), P95: ms(sum.P95), Max: ms(sum.Max), Elapsed: ms(sum.Elapsed)}}
	for st, n := range sum.ByStatus {
		rep.ByStatus[statusKey(st)] = n
	}
	return rep
}

// statusKey names a status in the summary: "200", or "error" for pages
// that got no answer.
func statusKey(st int) string {
	if st == 0 {
		return "error"
	}
	return strconv.Itoa(st)
}

// ms returns d in milliseconds.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// warmReport is the summary of a warm-up, printed as text or as JSON.
type warmReport struct {
	Summary  string         `json:"summary"`
	URLs     int            `json:"urls"`
	OK       int            `json:"ok"`
	Failed   int            `json:"failed"`
	ByStatus map[string]int `json:"byStatus"`
	Timings  warmTimings    `json:"timingsMs"`
	Invalid  []invalidInput `json:"invalid,omitempty"`
	Results  []warmResult   `json:"results"`
}

// warmTimings are a warm-up's timings in milliseconds.
type warmTimings struct {
	Min     float64 `json:"min"`
	Median  float64 `json:"p50"`
	P95     float64 `json:"p95"`
	Max     float64 `json:"max"`
	Elapsed float64 `json:"elapsed"`
}

// warmResult is one page's result.
type warmResult struct {
	URL        string  `json:"url"`
	Status     int     `json:"status,omitempty"`
	Cache      string  `json:"cache,omitempty"`
	DurationMs float64 `json:"durationMs"`
	Bytes      int64   `json:"bytes"`
	Error      string  `json:"error,omitempty"`
	ok         bool
}

func newWarmResult(r warm.Result) warmResult {
	out := warmResult{URL: r.URL, Status: r.Status, Cache: r.Cache, DurationMs: ms(r.Duration), Bytes: r.Bytes,
		ok: r.Err == nil && r.Status >= 200 && r.Status <= 299}
	if r.Err != nil {
		out.Error = r.Err.Error()
	}
	return out
}

func (r *warmReport) write(w io.Writer, f outputFormat, sum warm.Summary) error {
	if f == jsonOutput {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(r)
	}
	var b strings.Builder
	b.WriteString(r.Summary + "\n")
	b.WriteString("Status codes:\n")
	statuses := slices.Sorted(maps.Keys(sum.ByStatus))
	if len(statuses) > 0 && statuses[0] == 0 { // no answer: last
		statuses = append(statuses[1:], 0)
	}
	for _, st := range statuses {
		fmt.Fprintf(&b, "  %-6s %d\n", statusKey(st), sum.ByStatus[st])
	}
	var failed []warmResult
	for _, res := range r.Results {
		if !res.ok {
			failed = append(failed, res)
		}
	}
	if len(failed) > 0 {
		slices.SortFunc(failed, func(x, y warmResult) int { return strings.Compare(x.URL, y.URL) })
		fmt.Fprintf(&b, "Not warmed: %s\n", countOf(len(failed), "page", "pages"))
		for i, res := range failed {
			if i == listLimit {
				fmt.Fprintf(&b, "  ... and %d more (--json lists every one)\n", len(failed)-i)
				break
			}
			if res.Error != "" {
				fmt.Fprintf(&b, "  error  %s: %s\n", res.URL, res.Error)
			} else {
				fmt.Fprintf(&b, "  %-6d %s\n", res.Status, res.URL)
			}
		}
	}
	if len(r.Invalid) > 0 {
		fmt.Fprintf(&b, "Skipped %s (--skip-invalid):", countOf(len(r.Invalid), "invalid input", "invalid inputs"))
		writeInvalid(&b, r.Invalid, 0)
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
