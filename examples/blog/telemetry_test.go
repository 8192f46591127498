package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/contrib/prompurge"
	"github.com/gormpurge/gormpurge/observe"
)

// scrape is a /metrics answer: each sample's value by its line's name and
// labels, as Prometheus's text format writes them.
type scrape map[string]float64

// getMetrics scrapes base's /metrics, and checks that no cache may keep
// the answer.
func getMetrics(t *testing.T, client *http.Client, base string) scrape {
	t.Helper()
	res, err := client.Get(base + metricsPath)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"), "no CDN keeps /metrics")
	assert.Empty(t, res.Header.Get(localcache.XCache), "/metrics is outside the page cache")
	assert.True(t, strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain"), res.Header.Get("Content-Type"))
	s := scrape{}
	lines := bufio.NewScanner(res.Body)
	for lines.Scan() {
		line := lines.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		require.Positive(t, i, line)
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, line)
		s[line[:i]] = v
	}
	require.NoError(t, lines.Err())
	return s
}

// value returns the sample of the metric name with the labels given as
// name, value pairs, in order ("" for none), and whether there is one.
func (s scrape) value(name string, labels ...string) (float64, bool) {
	key := name
	if len(labels) > 0 {
		pairs := make([]string, 0, len(labels)/2)
		for i := 0; i+1 < len(labels); i += 2 {
			pairs = append(pairs, labels[i]+"="+strconv.Quote(labels[i+1]))
		}
		key += "{" + strings.Join(pairs, ",") + "}"
	}
	v, ok := s[key]
	return v, ok
}

// families returns the names of the metrics in s.
func (s scrape) families() []string {
	var names []string
	for key := range s {
		name, _, _ := strings.Cut(key, "{")
		names = append(names, name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// After views and an edit, /metrics shows what every component did: the
// plugin's handoff, the dispatcher's delivered objects and commit-to-purge
// latency for the local cache, the page cache's hits, the warmer's pages.
func TestMetricsAfterEdit(t *testing.T) {
	b := startBlog(t, config{warm: true})
	b.miss(firstPost, oldTitle)
	b.hit(firstPost, oldTitle)
	require.Empty(t, b.getWithCookie(firstPost, sessionCookie+"=1").cache, "a personal view bypasses the cache")
	res := b.edit(firstPost, "Measured", "Counted.", "gormpurge")
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	b.flush()
	urls, _ := purged(b.takeReports(), localcache.BackendName)
	waitWarmed(t, b.warmed, urls)

	m := getMetrics(t, b.client, b.url)
	atLeast := func(min float64, name string, labels ...string) {
		t.Helper()
		v, ok := m.value(name, labels...)
		if assert.True(t, ok, "%s%q is missing from /metrics", name, labels) {
			assert.GreaterOrEqual(t, v, min, "%s%q", name, labels)
		}
	}
	const backend = localcache.BackendName
	atLeast(1, "gormpurge_handoffs_total", "outcome", observe.HandedOff)
	atLeast(float64(len(urls)+1), "gormpurge_purge_objects_total", "backend", backend, "outcome", "delivered") // and the post's tag
	atLeast(0, "gormpurge_purge_objects_total", "backend", backend, "outcome", "failed")
	atLeast(0, "gormpurge_purge_queue_depth", "backend", backend)
	atLeast(0, "gormpurge_purge_in_flight", "backend", backend)
	atLeast(1, "gormpurge_purge_latency_seconds_count", "backend", backend, "outcome", "delivered")
	atLeast(1, `gormpurge_purge_latency_seconds_bucket`, "backend", backend, "outcome", "delivered", "le", "+Inf")
	atLeast(1, "gormpurge_purge_duration_seconds_count", "backend", backend, "error_class", "", "outcome", "ok")
	atLeast(1, "gormpurge_cache_requests_total", "outcome", localcache.OutcomeHit)
	atLeast(1, "gormpurge_cache_requests_total", "outcome", localcache.OutcomeMiss)
	atLeast(1, "gormpurge_cache_requests_total", "outcome", localcache.OutcomeBypass)
	atLeast(1, "gormpurge_cache_stores_total")
	atLeast(1, "gormpurge_cache_entries")
	atLeast(0, "gormpurge_cache_evictions_total")
	atLeast(float64(len(urls)), "gormpurge_warm_urls_total", "outcome", "fetched")
	atLeast(0, "gormpurge_warm_queue_depth")
	atLeast(1, "go_goroutines")
	atLeast(1, "process_start_time_seconds")

	// Scraping is no page view: it is never cached, and counts no
	// request of the page cache.
	again := getMetrics(t, b.client, b.url)
	for _, outcome := range []string{localcache.OutcomeHit, localcache.OutcomeMiss, localcache.OutcomeBypass} {
		before, _ := m.value("gormpurge_cache_requests_total", "outcome", outcome)
		after, _ := again.value("gormpurge_cache_requests_total", "outcome", outcome)
		assert.Equal(t, before, after, outcome)
	}
}

// With -metrics-addr, /metrics is served there, and not on the blog's
// address.
func TestMetricsAddr(t *testing.T) {
	r := startRun(t, config{metricsAddr: "127.0.0.1:0"}, nil)
	line := <-r.lines
	m := regexp.MustCompile(`^Metrics at (http://127\.0\.0\.1:\d+)/metrics$`).FindStringSubmatch(line)
	require.NotNil(t, m, line)
	require.NotEqual(t, r.base, m[1])

	client := &http.Client{}
	defer client.CloseIdleConnections()
	s := getMetrics(t, client, m[1])
	assert.Contains(t, s.families(), "go_goroutines")
	res, err := client.Get(r.base + metricsPath)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusNotFound, res.StatusCode, "not on the public address")

	_, err = r.stop()
	require.NoError(t, err)
	_, err = client.Get(m[1] + metricsPath)
	assert.Error(t, err, "the metrics server is shut down with the blog")
}

// span is what stdouttrace writes of a span, in part.
type span struct {
	Name        string
	SpanContext spanContext
	Parent      spanContext
	Links       []struct{ SpanContext spanContext }
}

type spanContext struct {
	TraceID, SpanID string
}

// spansIn returns the spans among the lines of log: the JSON objects.
func spansIn(t *testing.T, log string) []span {
	t.Helper()
	var spans []span
	for line := range strings.Lines(log) {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var s span
		require.NoError(t, json.Unmarshal([]byte(line), &s), line)
		spans = append(spans, s)
	}
	return spans
}

// With -trace-stdout, an edit's request is a span on standard output; the
// handoff of its purges is its child, and the call that purged the local
// cache links to the handoff. The last spans are written at shutdown.
func TestTraceStdout(t *testing.T) {
	r := startRun(t, config{traceStdout: true}, nil)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer client.CloseIdleConnections()
	res, err := client.PostForm(r.base+firstEdit, url.Values{"title": {"Traced"}, "tags": {"gormpurge"}})
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	all, err := r.stop()
	require.NoError(t, err)

	spans := spansIn(t, all)
	byName := func(name string) []span {
		return slices.DeleteFunc(slices.Clone(spans), func(s span) bool { return s.Name != name })
	}
	edits := byName("POST /posts/{slug}/edit")
	handoffs := byName(observe.SpanHandoff)
	purges := byName(observe.SpanAttempt)
	require.Len(t, edits, 1, all)
	require.Len(t, handoffs, 1, all)
	require.NotEmpty(t, purges, all)

	edit, handoff := edits[0], handoffs[0]
	assert.Equal(t, edit.SpanContext, handoff.Parent, "the handoff is a child of the request's span")
	assert.Equal(t, edit.SpanContext.TraceID, handoff.SpanContext.TraceID)
	linked := slices.ContainsFunc(purges, func(p span) bool {
		return slices.ContainsFunc(p.Links, func(l struct{ SpanContext spanContext }) bool {
			return l.SpanContext == handoff.SpanContext
		})
	})
	assert.True(t, linked, "a purge links to the handoff: %+v", purges)
}

// The metric names README.md's PromQL uses are those prompurge emits:
// each one is in a scrape of the blog, or (the outbox's, which the blog
// has not) named by prompurge.MetricName.
func TestReadmeMetricNames(t *testing.T) {
	var used []string
	for _, path := range []string{"README.md", "../../README.md"} { // the site's and the library's
		readme, err := os.ReadFile(path)
		require.NoError(t, err)
		// A name in double quotes is not a metric's: the outbox's table, "gormpurge_outbox".
		matches := regexp.MustCompile(`\b(gormpurge_[a-z_]+)(?:[^"a-z_]|$)`).FindAllStringSubmatch(string(readme), -1)
		require.NotEmpty(t, matches, path)
		for _, m := range matches {
			used = append(used, m[1])
		}
	}

	b := startBlog(t, config{warm: true})
	b.miss(firstPost, oldTitle)
	require.Equal(t, http.StatusSeeOther, b.edit(firstPost, "Named", "Named.", "gormpurge").status)
	b.flush()
	known := getMetrics(t, b.client, b.url).families()
	for _, name := range known {
		if histogram, ok := strings.CutSuffix(name, "_bucket"); ok {
			known = append(known, histogram) // named without a suffix in prose
		}
	}
	for _, m := range observe.Metrics() {
		known = append(known, prompurge.MetricName(m))
	}
	for _, name := range used {
		assert.Contains(t, known, name, "README.md names a metric prompurge does not emit")
	}
}
