package httppurge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"
	"sync/atomic"

	"github.com/gormpurge/gormpurge/backends"
)

// maxDrain is the most of a response body read so that its connection can
// be reused; a longer body is cut and its connection closed.
const maxDrain = 64 << 10

// nodeOutcome is what one call to Purge achieved on one node.
type nodeOutcome struct {
	node      *node
	purged    int // requests answered 2xx
	notCached int // requests answered 404
	err       *NodeError
	// refused holds the objects of the requests the node refused on
	// their own (400, 413, ...), and whole whether anything failed for
	// the node as a whole (no answer, 5xx, 403, a request not sent).
	refused backends.Request
	whole   bool
}

// attempt is the outcome of one request.
type attempt struct {
	verdict   verdict
	err       *NodeError // set unless purged or notCached
	abandoned bool       // not sent, or cut short, because the node's work was stopped
}

// purgeNodes sends jobs to each of nodes that before has not seen settle,
// the nodes in parallel, and returns their outcomes once all have
// answered.
func (b *Backend) purgeNodes(ctx context.Context, nodes []*node, before *progress, jobs []*job) []nodeOutcome {
	var todo []*node
	for _, n := range nodes {
		if !before.settled(n.key) {
			todo = append(todo, n)
		}
	}
	outs := make([]nodeOutcome, len(todo))
	var wg sync.WaitGroup
	for i, n := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = b.purgeNode(ctx, n, jobs)
		}()
	}
	wg.Wait()
	return outs
}

// purgeNode sends every job to n, at most WithNodeConcurrency at a time, and
// stops at the first answer that says the node refuses everything for now
// (no answer, 5xx, 403, ...): the node is then retried as a whole.
func (b *Backend) purgeNode(ctx context.Context, n *node, jobs []*job) nodeOutcome {
	out := nodeOutcome{node: n}
	if len(jobs) == 0 {
		return out
	}
	nodeCtx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		next   atomic.Int64
		mu     sync.Mutex // guards out, errV and failed
		errV   verdict    // of out.err
		failed int
		wg     sync.WaitGroup
	)
	for range min(b.cfg.nodeConcurrency, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := b.newSender(nodeCtx)
			for {
				i := int(next.Add(1)) - 1
				if i >= len(jobs) {
					return
				}
				a := b.send(s, n, jobs[i])
				mu.Lock()
				switch {
				case a.abandoned:
					failed++
					out.whole = true
				case a.verdict == purged:
					out.purged++
				case a.verdict == notCached:
					out.notCached++
				default:
					failed++
					if a.verdict == objectBad {
						out.refused = out.refused.Merge(jobs[i].objects)
					} else {
						out.whole = true
					}
					// Report the first failure, or the first that concerns the
					// whole node rather than one request.
					if out.err == nil || (errV == objectBad && a.verdict == nodeFailed) {
						out.err, errV = a.err, a.verdict
					}
				}
				mu.Unlock()
				if a.verdict == nodeFailed || a.abandoned {
					stop()
					return
				}
			}
		}()
	}
	wg.Wait()
	unsent := max(0, len(jobs)-int(next.Load()))
	failed += unsent
	out.whole = out.whole || unsent > 0
	if failed == 0 {
		return out
	}
	if out.err == nil {
		// Nothing failed on its own: the call's context ended.
		j := jobs[0]
		out.err = &NodeError{Node: n.key, Method: j.method, Target: j.target, Host: j.host,
			Err: fmt.Errorf("not sent: %w", context.Cause(ctx)), Temporary: true}
	}
	out.err.Failed = failed
	return out
}

// sender sends one worker's requests. With WithHTTPClient, its context
// carries a trace that records the local address of each connection, so that
// a refusal can name the address the cache saw.
type sender struct {
	ctx   context.Context
	laddr net.Addr // of the last connection; set by the transport on this goroutine
}

func (b *Backend) newSender(ctx context.Context) *sender {
	s := &sender{ctx: ctx}
	if b.client != nil {
		s.ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { s.laddr = info.Conn.LocalAddr() },
		})
	}
	return s
}

// send sends one request to n and says what its answer means.
func (b *Backend) send(s *sender, n *node, j *job) attempt {
	select {
	case n.slots <- struct{}{}:
	case <-s.ctx.Done():
		return attempt{abandoned: true}
	}
	defer func() { <-n.slots }()

	var (
		a   answer
		err error
	)
	if n.pool != nil {
		a, err = n.pool.roundTrip(s.ctx, n, j, b.dialer)
	} else {
		a, err = b.httpRoundTrip(s, n, j)
	}
	e := &NodeError{Node: n.key, Method: j.method, Target: j.target, Host: j.host}
	if err != nil {
		if s.ctx.Err() != nil {
			return attempt{abandoned: true}
		}
		e.Err, e.Temporary = err, true
		var certErr *tls.CertificateVerificationError
		if errors.As(err, &certErr) {
			e.Temporary = false // a retry meets the same certificate
			e.Hint = "the node's TLS certificate is not trusted: give its CA with WithTLSConfig"
		}
		return attempt{verdict: nodeFailed, err: e}
	}
	v, temporary, hint := classify(a.code, j.method, a.local)
	if v == purged || v == notCached {
		return attempt{verdict: v}
	}
	if v == objectBad && j.tags > 0 {
		hint = "if the cache limits the size of a header (Varnish: http_req_hdr_len), lower TagMode.MaxHeaderBytes"
	}
	e.StatusCode, e.Status, e.Temporary, e.Hint = a.code, a.status, temporary, hint
	if temporary {
		e.RetryAfter = a.retryAfter
	}
	return attempt{verdict: v, err: e}
}

// httpRoundTrip sends j to n with WithHTTPClient's client.
func (b *Backend) httpRoundTrip(s *sender, n *node, j *job) (answer, error) {
	ctx, cancel := context.WithTimeout(s.ctx, b.cfg.requestTimeout)
	defer cancel()
	req := (&http.Request{
		Method:     j.method,
		URL:        &url.URL{Scheme: n.scheme, Host: n.host, Path: j.path, RawPath: j.rawPath, RawQuery: j.rawQuery},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     j.header,
		Host:       j.host,
	}).WithContext(ctx)
	res, err := b.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) && s.ctx.Err() == nil {
			err = fmt.Errorf("no answer within %v (WithRequestTimeout): %w", b.cfg.requestTimeout, err)
		}
		return answer{}, err
	}
	_, _ = io.CopyN(io.Discard, res.Body, maxDrain)
	res.Body.Close()
	a := answer{code: res.StatusCode, status: res.Status, local: localIP(s.laddr)}
	if a.code == http.StatusTooManyRequests || a.code >= 500 {
		a.retryAfter = retryAfter(res.Header)
	}
	return a, nil
}

// localIP returns the IP address of a, or "" when unknown.
func localIP(a net.Addr) string {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	return ""
}

// short is the failure in a few words, for Result.IDs.
func (e *NodeError) short() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return e.Status
}
