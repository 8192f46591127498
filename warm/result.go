package warm

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Result is what became of one URL: the answer to its fetch, or why there
// was none. Err is nil exactly when Status is not 0; a non-2xx Status is an
// answer, not an error, but counts as failed in a [Summary].
type Result struct {
	URL      string        // as given to Fetch or Enqueue, but with "REDACTED" for the user information of a URL that has some
	Status   int           // the answer's status (a 3xx unless a WithHTTPClient client followed it); 0 when the URL could not be fetched
	Cache    string        // the answer's X-Cache header (such as HIT or MISS), else its X-Cache-Status, else ""
	Duration time.Duration // from the request to the end of the body
	Bytes    int64         // body bytes read, as sent: compressed if the server compressed the page
	Err      error         // why the URL could not be fetched; it names the URL
}

// ok reports whether the URL was fetched with a 2xx answer.
func (r Result) ok() bool {
	return r.Err == nil && r.Status >= 200 && r.Status <= 299
}

// Summary counts the results of one [Warmer.Fetch], for a report at the end
// of a run such as
//
//	120 URLs: 118 OK, 2 failed (404×1, error×1); p50 12ms p95 40ms max 80ms in 1.2s
type Summary struct {
	URLs     int         // distinct URLs given, each with one Result
	OK       int         // fetched with a 2xx answer
	Failed   int         // not fetched, or answered with another status
	Refused  int         // of Failed, refused by the host policy (see WithBaseURL): wrapping ErrRefused
	ByStatus map[int]int // results by status; 0 counts the URLs not fetched (invalid, refused, no answer, cut short)
	// Min, Median, P95 and Max are over the URLs that got an answer,
	// whatever its status; 0 when none did.
	Min, Median, P95, Max time.Duration
	Elapsed               time.Duration // the whole run
}

// String returns a one-line summary in the form shown on [Summary].
func (s Summary) String() string {
	var b strings.Builder
	noun := "URLs"
	if s.URLs == 1 {
		noun = "URL"
	}
	fmt.Fprintf(&b, "%d %s: %d OK, %d failed", s.URLs, noun, s.OK, s.Failed)
	if s.Failed > 0 {
		var parts []string
		for _, st := range slices.Sorted(maps.Keys(s.ByStatus)) {
			if st != 0 && (st < 200 || st > 299) {
				parts = append(parts, fmt.Sprintf("%d×%d", st, s.ByStatus[st]))
			}
		}
		if n := s.ByStatus[0] - s.Refused; n > 0 {
			parts = append(parts, fmt.Sprintf("error×%d", n))
		}
		if s.Refused > 0 {
			parts = append(parts, fmt.Sprintf("refused×%d", s.Refused))
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	}
	if s.Max > 0 {
		fmt.Fprintf(&b, "; p50 %v p95 %v max %v", round(s.Median), round(s.P95), round(s.Max))
	}
	fmt.Fprintf(&b, " in %v", round(s.Elapsed))
	return b.String()
}

// round shortens d to about two significant digits for display.
func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// tally builds a Summary from results.
type tally struct {
	s         Summary
	durations []time.Duration // of the answered URLs
}

func (t *tally) add(r Result) {
	if t.s.ByStatus == nil {
		t.s.ByStatus = make(map[int]int)
	}
	t.s.URLs++
	t.s.ByStatus[r.Status]++
	if r.ok() {
		t.s.OK++
	} else {
		t.s.Failed++
	}
	if errors.Is(r.Err, ErrRefused) {
		t.s.Refused++
	}
	if r.Status != 0 {
		t.durations = append(t.durations, r.Duration)
	}
}

func (t *tally) summary(elapsed time.Duration) Summary {
	s := t.s
	if s.ByStatus == nil {
		s.ByStatus = make(map[int]int)
	}
	s.Elapsed = elapsed
	if n := len(t.durations); n > 0 {
		slices.Sort(t.durations)
		s.Min, s.Max = t.durations[0], t.durations[n-1]
		s.Median = t.durations[rank(n, 50)]
		s.P95 = t.durations[rank(n, 95)]
	}
	return s
}

// rank returns the index of the p-th percentile of n sorted values, by the
// nearest-rank method.
func rank(n, p int) int {
	r := (n*p + 99) / 100 // ceil(n*p/100), 1-based
	return max(r, 1) - 1
}
