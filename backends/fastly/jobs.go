package fastly

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gormpurge/gormpurge/backends"
)

// job is one purge request: a URL or a batch of keys, and the objects of
// the Request it purges.
type job struct {
	cached string   // a URL purge's host, path and query
	keys   []string // a key purge's keys
	objs   []string // the Request's objects it stands for
}

// outcome is what became of a job.
type outcome struct {
	ids   map[string]string // purge IDs by cached URL or key
	err   error             // classified
	cause error             // err without its marks
}

// urlJobs returns one job per cached URL of urls, and the URLs that cannot
// be purged.
func (b *Backend) urlJobs(urls []string) ([]job, []Failure) {
	var (
		jobs   []job
		failed []Failure
		index  = make(map[string]int, len(urls))
	)
	add := func(cached, obj string) {
		if i, ok := index[cached]; ok {
			if last := jobs[i].objs; last[len(last)-1] != obj {
				jobs[i].objs = append(jobs[i].objs, obj)
			}
			return
		}
		index[cached] = len(jobs)
		jobs = append(jobs, job{cached: cached, objs: []string{obj}})
	}
	for _, u := range urls {
		c, err := backends.CanonicalURL(u)
		switch {
		case err != nil:
			cause := &backends.ObjectError{Kind: "url", Object: backends.RedactURL(u), Err: err}
			failed = append(failed, Failure{Object: u, Err: backends.Permanent(cause), cause: cause})
		case c[0] == '/':
			if len(b.hostnames) == 0 {
				cause := fmt.Errorf("%w (%q)", ErrNoHostname, c)
				failed = append(failed, Failure{Object: u, Err: backends.Permanent(cause), cause: cause})
				continue
			}
			for _, h := range b.hostnames {
				add(h+c, u)
			}
		default:
			// The scheme is not part of Fastly's cache key: the purge
			// names host, path and query.
			_, rest, _ := strings.Cut(c, "://")
			add(rest, u)
		}
	}
	return jobs, failed
}

// tagJobs returns the batch key purges of tags, and the tags that cannot be
// purged.
func tagJobs(tags []string) ([]job, []Failure) {
	var (
		keys   []string
		failed []Failure
		seen   = make(map[string]bool, len(tags))
	)
	for _, t := range tags {
		c, err := backends.CanonicalTag(t)
		if err != nil {
			cause := &backends.ObjectError{Kind: "tag", Object: t, Err: err}
			failed = append(failed, Failure{Object: t, Err: backends.Permanent(cause), cause: cause})
			continue
		}
		if !seen[c] {
			seen[c] = true
			keys = append(keys, c)
		}
	}
	var jobs []job
	for len(keys) > 0 {
		n := min(len(keys), MaxKeysPerRequest)
		jobs = append(jobs, job{keys: keys[:n:n], objs: keys[:n:n]})
		keys = keys[n:]
	}
	return jobs, failed
}

// run sends jobs, up to b.concurrency at once, and returns their outcomes
// in order. A 401 or 429 stops the jobs not started yet, which fail with
// it. It returns when every job has.
func (b *Backend) run(ctx context.Context, jobs []job) []outcome {
	out := make([]outcome, len(jobs))
	if len(jobs) == 0 {
		return out
	}
	var (
		mu   sync.Mutex
		next int
		stop outcome
		wg   sync.WaitGroup
	)
	take := func() (int, outcome) {
		mu.Lock()
		defer mu.Unlock()
		i := next
		next++
		return i, stop
	}
	for range min(b.concurrency, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i, stopped := take()
				if i >= len(jobs) {
					return
				}
				if stopped.err != nil {
					out[i] = stopped
					continue
				}
				o := b.send(ctx, jobs[i])
				out[i] = o
				if stopsOthers(o.err) {
					mu.Lock()
					if stop.err == nil {
						stop = outcome{err: o.err, cause: o.cause}
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// stopsOthers reports whether err means that the requests not sent yet
// would fail the same way: a refused token, a rate limit, an ended ctx.
func stopsOthers(err error) bool {
	if err == nil {
		return false
	}
	var e *Error
	if errors.As(err, &e) && (e.Status == http.StatusUnauthorized || e.Status == http.StatusTooManyRequests) {
		return true
	}
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// send sends one job and reads its answer.
func (b *Backend) send(ctx context.Context, j job) outcome {
	if j.keys == nil {
		return b.sendURL(ctx, j.cached)
	}
	return b.sendKeys(ctx, j.keys)
}

// observe gives the pacer what answer a says about the rate limits, and
// logs a 429 at Warn with the wait it asked for. hourly is whether the
// request counts against the hourly limit (purge_all).
func (b *Backend) observe(a *answer, op string, hourly bool) {
	now := time.Now()
	b.pacer.observe(a.header, a.status, hourly, now)
	if a.status == http.StatusTooManyRequests {
		b.logger.Warn("fastly: rate limited", slog.String("op", op), slog.Duration("wait", rateLimitWait(a.header, now)))
	}
}

func (b *Backend) sendURL(ctx context.Context, cached string) outcome {
	a, err := b.post(ctx, "/purge/"+cached, nil, b.soft)
	if err != nil {
		return failed(err)
	}
	b.observe(a, opURL, false)
	if a.status != http.StatusOK {
		return b.answerOutcome(a, opURL, backends.RedactURL(cached))
	}
	var ok okBody
	if err := json.Unmarshal(a.raw, &ok); err != nil || ok.Status != "ok" {
		return failed(fmt.Errorf("fastly: %s %s: 200 without {\"status\":\"ok\"}: %.100q", opURL, backends.RedactURL(cached), b.scrub(string(a.raw))))
	}
	b.logger.Debug("fastly: URL purged", slog.String("url", backends.RedactURL(cached)), slog.String("id", ok.ID), slog.Bool("soft", b.soft))
	return outcome{ids: map[string]string{cached: ok.ID}}
}

func (b *Backend) sendKeys(ctx context.Context, keys []string) outcome {
	body, _ := json.Marshal(struct {
		SurrogateKeys []string `json:"surrogate_keys"`
	}{keys})
	object := fmt.Sprintf("(%d keys)", len(keys))
	a, err := b.post(ctx, "/service/"+url.PathEscape(b.serviceID)+"/purge", body, b.soft)
	if err != nil {
		return failed(err)
	}
	b.observe(a, opKeys, false)
	if a.status != http.StatusOK {
		return b.answerOutcome(a, opKeys, object)
	}
	// A map of each key to its purge ID.
	ids := make(map[string]string, len(keys))
	if err := json.Unmarshal(a.raw, &ids); err != nil {
		return failed(fmt.Errorf("fastly: %s %s: 200 without a map of keys to purge IDs: %.100q", opKeys, object, b.scrub(string(a.raw))))
	}
	b.logger.Debug("fastly: surrogate keys purged", slog.Int("keys", len(keys)), slog.Bool("soft", b.soft))
	return outcome{ids: ids}
}
