package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// listLimit is how many objects the text summary lists per failure cause
// (and a dry run in all, unless it lists every one); --json lists all.
const listLimit = 20

// purgeReport is the summary of a purge, printed as text or as JSON.
type purgeReport struct {
	Backend     string `json:"backend"`
	Description string `json:"description"`
	Kind        string `json:"kind"` // url, tag or cpcode
	DryRun      bool   `json:"dryRun,omitempty"`
	// Objects counts the distinct valid objects; Duplicates the inputs
	// that repeated one.
	Objects    int `json:"objects"`
	Duplicates int `json:"duplicates,omitempty"`
	Purged     int `json:"purged"`
	Failed     int `json:"failed"`
	// Invalid lists the inputs skipped with --skip-invalid.
	Invalid []invalidInput `json:"invalid,omitempty"`
	// AkamaiRequests are the Fast Purge requests Akamai accepted.
	AkamaiRequests   []akamaiRequest `json:"akamaiRequests,omitempty"`
	EstimatedSeconds float64         `json:"estimatedSeconds,omitempty"`
	// Accepted are the requests a CDN (Cloudflare, Fastly, CloudFront)
	// accepted, with the id it gave each.
	Accepted []acceptedRequest `json:"accepted,omitempty"`
	// Nodes says what each HTTP cache node did.
	Nodes    []nodeReport `json:"nodes,omitempty"`
	Failures []failure    `json:"failures,omitempty"`
	Elapsed  string       `json:"elapsed,omitempty"`

	// Dry runs: what would be sent, and in about how many requests (per
	// node for HTTP caches).
	List []string `json:"list,omitempty"`
	// Hosts gives, for HTTP caches, the Host headers each URL of List is
	// purged with.
	Hosts map[string][]string `json:"hosts,omitempty"`
	// SentAs gives, for CDNs, what each URL or tag of List is sent as
	// when that is not itself: a path's URLs, an invalidation path.
	SentAs            map[string][]string `json:"sentAs,omitempty"`
	EstimatedRequests int                 `json:"estimatedRequests,omitempty"`
	PerNode           bool                `json:"perNode,omitempty"` // EstimatedRequests is per HTTP cache node

	kind  purgeKind
	nodes map[string]*nodeReport
	ids   *idReport // how a CDN's ids are listed; nil for Akamai and HTTP caches
}

// acceptedRequest is one request a CDN accepted, with its id.
type acceptedRequest struct {
	ID string `json:"id"`
	// Object is what the request purged, when the CDN gives an id per
	// object (Fastly: the cached URL or the surrogate key).
	Object string `json:"object,omitempty"`
}

// akamaiRequest is one accepted Fast Purge request.
type akamaiRequest struct {
	PurgeID   string `json:"purgeId"`
	SupportID string `json:"supportId,omitempty"`
}

// nodeReport sums what one HTTP cache node answered.
type nodeReport struct {
	Node string `json:"node"`
	// Purged and NotCached count the node's answers: the page was purged,
	// or was not cached (404).
	Purged    int `json:"purged"`
	NotCached int `json:"notCached"`
	// FailedBatches counts the batches that failed on the node, and
	// Errors says how.
	FailedBatches int      `json:"failedBatches,omitempty"`
	Errors        []string `json:"errors,omitempty"`
}

// failure is one object not purged, and why.
type failure struct {
	Object string `json:"object"`
	Error  string `json:"error"`
}

// fail records that obj was not purged, for reason.
func (r *purgeReport) fail(obj, reason string) {
	r.Failed++
	r.Failures = append(r.Failures, failure{Object: obj, Error: reason})
}

// addResults records the ids and node answers of the batches in reports,
// and what each HTTP cache node purged in attempts: the results of every
// call to the backend, since a batch's report gives only its last
// attempt's, where a node that purged in an earlier one says "ok in an
// earlier attempt".
func (r *purgeReport) addResults(reports []dispatcher.Report, attempts []backends.Result) {
	if r.ids != nil {
		r.addAccepted(reports, attempts)
		return
	}
	seen := map[string]bool{}
	for _, a := range r.AkamaiRequests {
		seen[a.PurgeID] = true
	}
	for _, rp := range reports {
		ids := rp.Result.IDs
		if len(ids) == 0 {
			continue
		}
		if pids, ok := ids["purgeId"]; ok { // Akamai
			sids := strings.Split(ids["supportId"], ",")
			for i, pid := range strings.Split(pids, ",") {
				if pid == "" || seen[pid] {
					continue
				}
				seen[pid] = true
				req := akamaiRequest{PurgeID: pid}
				if i < len(sids) {
					req.SupportID = sids[i]
				}
				r.AkamaiRequests = append(r.AkamaiRequests, req)
			}
			if est, err := strconv.ParseFloat(ids["estimatedSeconds"], 64); err == nil {
				r.EstimatedSeconds = max(r.EstimatedSeconds, est)
			}
			continue
		}
		for node, said := range ids { // HTTP caches: node -> what it did
			n := r.node(node)
			if strings.HasPrefix(said, "failed") {
				n.FailedBatches++
				if !slices.Contains(n.Errors, said) {
					n.Errors = append(n.Errors, said)
				}
			}
		}
	}
	for _, res := range attempts {
		for node, said := range res.IDs {
			var purged, notCached int
			if _, err := fmt.Sscanf(said, "ok: %d purged, %d not cached", &purged, &notCached); err == nil {
				n := r.node(node)
				n.Purged += purged
				n.NotCached += notCached
			}
		}
	}
	r.Nodes = r.Nodes[:0]
	for _, k := range slices.Sorted(maps.Keys(r.nodes)) {
		r.Nodes = append(r.Nodes, *r.nodes[k])
	}
	if len(r.Nodes) == 0 {
		r.Nodes = nil
	}
}

// addAccepted records the requests a CDN accepted, as the results of
// every attempt tell (else the batches' reports), each once.
func (r *purgeReport) addAccepted(reports []dispatcher.Report, attempts []backends.Result) {
	if attempts == nil {
		for _, rp := range reports {
			attempts = append(attempts, rp.Result)
		}
	}
	seen := map[acceptedRequest]bool{}
	for _, a := range r.Accepted {
		seen[a] = true
	}
	for _, res := range attempts {
		if len(res.IDs) == 0 {
			continue
		}
		for _, a := range r.ids.of(res.IDs) {
			if !seen[a] {
				seen[a] = true
				r.Accepted = append(r.Accepted, a)
			}
		}
	}
}

// node returns the report of the HTTP cache node, adding it if new.
func (r *purgeReport) node(key string) *nodeReport {
	if r.nodes == nil {
		r.nodes = map[string]*nodeReport{}
	}
	n := r.nodes[key]
	if n == nil {
		n = &nodeReport{Node: key}
		r.nodes[key] = n
	}
	return n
}

// exitError returns the error the run exits with: nil when every object
// was purged (or, in a dry run, would be sent) and none was invalid.
func (r *purgeReport) exitError() error {
	invalid := countOf(len(r.Invalid), "invalid input", "invalid inputs")
	switch {
	case r.Failed > 0 && len(r.Invalid) > 0:
		return failedf("%d of %s not purged, and %s skipped", r.Failed, r.kind.count(r.Objects), invalid)
	case r.Failed > 0:
		return failedf("%d of %s not purged", r.Failed, r.kind.count(r.Objects))
	case len(r.Invalid) > 0:
		return failedf("%s skipped", invalid)
	}
	return nil
}

// outputFormat is how a command prints its summary.
type outputFormat int

const (
	textOutput outputFormat = iota
	jsonOutput              // --json
)

// formatOf returns the format for the --json flag's value.
func formatOf(json bool) outputFormat {
	if json {
		return jsonOutput
	}
	return textOutput
}

// write prints the report on w in format f.
func (r *purgeReport) write(w io.Writer, f outputFormat) error {
	if f == jsonOutput {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(r)
	}
	var b strings.Builder
	if r.DryRun {
		r.writeDryRun(&b)
	} else {
		r.writeText(&b)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *purgeReport) writeDryRun(b *strings.Builder) {
	requests := plural(r.EstimatedRequests, "request", "requests")
	where := fmt.Sprintf("about %d %s", r.EstimatedRequests, requests)
	if r.PerNode {
		where = fmt.Sprintf("%d %s to each node", r.EstimatedRequests, requests)
	}
	fmt.Fprintf(b, "Dry run: nothing was sent.\nWould purge %s with %s (%s), in %s%s:\n",
		r.kind.count(r.Objects), r.Backend, r.Description, where, r.duplicates())
	for _, o := range r.List {
		if sent, ok := r.SentAs[o]; ok {
			fmt.Fprintf(b, "  %s  (sent as %s)\n", o, strings.Join(sent, ", "))
			continue
		}
		if hosts, ok := r.Hosts[o]; ok {
			fmt.Fprintf(b, "  %s  (Host: %s)\n", o, strings.Join(hosts, ", "))
			continue
		}
		fmt.Fprintf(b, "  %s\n", o)
	}
	r.writeInvalid(b)
}

// duplicates returns ", N duplicates ignored" or "".
func (r *purgeReport) duplicates() string {
	if r.Duplicates == 0 {
		return ""
	}
	return fmt.Sprintf("; %d %s ignored", r.Duplicates, plural(r.Duplicates, "duplicate", "duplicates"))
}

func (r *purgeReport) writeText(b *strings.Builder) {
	fmt.Fprintf(b, "Purged %d of %s with %s (%s) in %s%s.\n",
		r.Purged, r.kind.count(r.Objects), r.Backend, r.Description, r.Elapsed, r.duplicates())
	if n := len(r.AkamaiRequests); n > 0 {
		fmt.Fprintf(b, "Akamai accepted %d %s", n, plural(n, "request", "requests"))
		if r.EstimatedSeconds > 0 {
			fmt.Fprintf(b, "; done in about %ss", strconv.FormatFloat(r.EstimatedSeconds, 'f', -1, 64))
		}
		b.WriteString(":\n")
		for _, a := range r.AkamaiRequests {
			fmt.Fprintf(b, "  purgeId %s", a.PurgeID)
			if a.SupportID != "" && a.SupportID != a.PurgeID {
				fmt.Fprintf(b, "  supportId %s", a.SupportID)
			}
			b.WriteString("\n")
		}
	}
	r.writeAccepted(b)
	for _, n := range r.Nodes {
		fmt.Fprintf(b, "  %s: %d purged, %d not cached", n.Node, n.Purged, n.NotCached)
		if n.FailedBatches > 0 {
			fmt.Fprintf(b, "; %d %s failed", n.FailedBatches, plural(n.FailedBatches, "batch", "batches"))
		}
		b.WriteString("\n")
	}
	if r.Failed > 0 {
		fmt.Fprintf(b, "Not purged: %s\n", r.kind.count(r.Failed))
		// Grouped by cause, in the order first met.
		var causes []string
		by := map[string][]string{}
		for _, f := range r.Failures {
			if _, ok := by[f.Error]; !ok {
				causes = append(causes, f.Error)
			}
			by[f.Error] = append(by[f.Error], f.Object)
		}
		for _, c := range causes {
			objs := by[c]
			fmt.Fprintf(b, "  %s:\n", c)
			for i, o := range objs {
				if i == listLimit {
					fmt.Fprintf(b, "    ... and %d more (--json lists every one)\n", len(objs)-i)
					break
				}
				fmt.Fprintf(b, "    %s\n", o)
			}
		}
	}
	r.writeInvalid(b)
}

// writeAccepted lists the requests a CDN accepted, with their ids.
func (r *purgeReport) writeAccepted(b *strings.Builder) {
	if r.ids == nil || len(r.Accepted) == 0 {
		return
	}
	fmt.Fprintf(b, "%s:\n", r.ids.title(len(r.Accepted)))
	for i, a := range r.Accepted {
		if i == listLimit {
			fmt.Fprintf(b, "  ... and %d more (--json lists every one)\n", len(r.Accepted)-i)
			break
		}
		if a.Object != "" {
			fmt.Fprintf(b, "  %s  %s %s\n", a.Object, r.ids.label, a.ID)
			continue
		}
		fmt.Fprintf(b, "  %s %s\n", r.ids.label, a.ID)
	}
}

func (r *purgeReport) writeInvalid(b *strings.Builder) {
	if len(r.Invalid) == 0 {
		return
	}
	fmt.Fprintf(b, "Skipped %s (--skip-invalid):", countOf(len(r.Invalid), "invalid input", "invalid inputs"))
	writeInvalid(b, r.Invalid, 0)
	b.WriteString("\n")
}
