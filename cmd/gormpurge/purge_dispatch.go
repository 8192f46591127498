package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/cloudfront"
	"github.com/gormpurge/gormpurge/backends/fastly"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// chunkSize is how many objects one Submit to the dispatcher holds: the
// progress bar advances as each chunk settles. The dispatcher merges
// chunks into batches as large as the backend takes.
const chunkSize = 100

// dispatchRun is one purge through a dispatcher: the chunks submitted,
// and what is known of them so far.
type dispatchRun struct {
	ctx    context.Context // the command's: ends on Ctrl-C
	runCtx context.Context // ends when --timeout runs out, too
	o      *purgeOptions
	rep    *purgeReport
	bar    *progress

	mu      sync.Mutex
	reports []dispatcher.Report // every batch's, for Akamai's ids and the nodes' failures
}

// dispatch purges objects through a dispatcher, in chunks so that the
// progress bar advances, and records in rep how each object ended, as the
// dispatcher's tickets tell.
func (a *app) dispatch(ctx context.Context, b *builtBackend, objects []string, o *purgeOptions, rep *purgeReport) {
	runCtx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	run := &dispatchRun{ctx: ctx, runCtx: runCtx, o: o, rep: rep}
	d, err := dispatcher.New([]backends.Backend{b.Backend},
		dispatcher.WithLogger(a.logger),
		dispatcher.WithRetry(o.retryPolicy()),
		dispatcher.WithAttemptTimeout(min(o.attemptTimeout, o.timeout)),
		dispatcher.WithOnResult(run.record),
	)
	if err != nil { // the flags were checked: a bug, reported per object rather than lost
		for _, obj := range objects {
			rep.fail(obj, "not purged: "+err.Error())
		}
		return
	}
	run.bar = a.newProgress(len(objects), "purging", o.progressMode())
	chunks := slices.Collect(slices.Chunk(objects, chunkSize))
	tickets := run.submit(d, chunks)
	run.wait(d, chunks[:len(tickets)], tickets)
	for _, c := range chunks[len(tickets):] {
		for _, obj := range c {
			rep.fail(obj, run.why(nil))
		}
	}
	run.bar.finish()

	var attempts []backends.Result
	if b.attempts != nil {
		attempts = b.attempts()
	}
	run.mu.Lock()
	defer run.mu.Unlock()
	rep.addResults(run.reports, attempts)
}

// record keeps a batch's report. The dispatcher calls it.
func (r *dispatchRun) record(rp dispatcher.Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reports = append(r.reports, rp)
}

// submit hands each chunk to d until --timeout runs out or Ctrl-C, and
// returns the tickets of those it took, in order.
func (r *dispatchRun) submit(d *dispatcher.Dispatcher, chunks [][]string) []*dispatcher.Ticket {
	tickets := make([]*dispatcher.Ticket, 0, len(chunks))
	for _, c := range chunks {
		if r.runCtx.Err() != nil {
			break
		}
		req := backends.Request{URLs: c}
		if r.rep.kind == kindTags {
			req = backends.Request{Tags: c}
		}
		t, _ := d.Submit(r.runCtx, req) // a refusal is the ticket's outcome
		if t == nil {
			break // closed: cannot happen before Close
		}
		tickets = append(tickets, t)
	}
	return tickets
}

// wait counts each chunk as its ticket settles, until all have or the
// run's context ends; then it closes d, which settles what is left as
// dropped, and counts those.
func (r *dispatchRun) wait(d *dispatcher.Dispatcher, chunks [][]string, tickets []*dispatcher.Ticket) {
	settled := make(chan int, len(tickets))
	for i, t := range tickets {
		go func() {
			<-t.Done() // every ticket is done once Close returns
			settled <- i
		}()
	}
	pending := len(tickets)
wait:
	for pending > 0 {
		select {
		case i := <-settled:
			r.tally(chunks[i], tickets[i])
			pending--
		case <-r.runCtx.Done():
			break wait
		}
	}
	// With everything settled, Close returns at once; after a timeout or
	// an interruption, it drops what is left, settling its tickets.
	if r.runCtx.Err() != nil {
		closeNow(d)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_ = d.Close(ctx) // nothing is left: every ticket settled
		cancel()
	}
	for ; pending > 0; pending-- {
		i := <-settled
		r.tally(chunks[i], tickets[i])
	}
}

// tally records how each object of chunk c ended, as its ticket t says.
func (r *dispatchRun) tally(c []string, t *dispatcher.Ticket) {
	ends := map[string]dispatcher.ObjectOutcome{}
	for _, oo := range t.Objects() {
		ends[oo.Object] = oo
	}
	for _, obj := range c {
		oo, ok := ends[obj]
		switch {
		case !ok:
			r.rep.fail(obj, r.why(nil))
		case oo.Outcome == dispatcher.Delivered:
			r.rep.Purged++
		case oo.Outcome == dispatcher.Failed:
			r.rep.fail(obj, reasonFor(obj, oo.Err))
		default:
			r.rep.fail(obj, r.why(oo.Err))
		}
	}
	r.bar.add(len(c))
}

// why says why an object was not sent: err, the reason it was dropped,
// unless the run was interrupted or ran out of time.
func (r *dispatchRun) why(err error) string {
	switch {
	case r.ctx.Err() != nil:
		return "not purged: interrupted"
	case r.runCtx.Err() != nil:
		return fmt.Sprintf("not purged: --timeout %v ran out", r.o.timeout)
	case err != nil:
		return "not purged: " + errorText(err)
	}
	return "not purged: not sent"
}

// closeNow closes d at once, cancelling what is in flight and dropping
// what is queued.
func closeNow(d *dispatcher.Dispatcher) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	_ = d.Close(done) // the undelivered requests settle their tickets as dropped
}

// errorText is err's message without the "permanent: " that marks errors
// the dispatcher does not retry.
func errorText(err error) string {
	return strings.TrimPrefix(err.Error(), "permanent: ")
}

// reasonFor says why obj failed in a batch that failed with err: the
// backend's reason for that object when its error names it (Akamai's and
// Cloudflare's refusals, Fastly's failed requests, the paths CloudFront
// cannot invalidate), else err.
func reasonFor(obj string, err error) string {
	var rej *backends.RejectedError // Akamai's and Cloudflare's
	if errors.As(err, &rej) {
		for _, r := range rej.Rejected {
			if sameObject(r.Object, obj) {
				return r.Reason
			}
		}
	}
	var fsFailed *fastly.FailedError
	if errors.As(err, &fsFailed) {
		for _, f := range fsFailed.Failed {
			if f.Object == obj {
				return errorText(f.Err)
			}
		}
	}
	var cfRefused *cloudfront.RefusedError
	if errors.As(err, &cfRefused) {
		for _, r := range cfRefused.Refused {
			if r.Object == obj || r.Object == backends.RedactURL(obj) {
				return r.Err.Error()
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
