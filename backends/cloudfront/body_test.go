package cloudfront_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/cloudfront"
)

// TestPurgeAnswerBeforeRequestWriteEnds replays, in a fixed order, what a
// purge of 3,000 paths met now and then against the fake: CloudFront has
// read the whole request body and answers 201 before net/http's writer
// has finished with the request (after Content-Length bytes it checks
// that the body holds nothing more). The SDK closes the request body as
// soon as the answer's headers are in; the writer's check must then see
// the end of the body, not an error that makes the transport close the
// connection while the answer's body is read ("deserialization failed
// ... use of closed network connection").
func TestPurgeAnswerBeforeRequestWriteEnds(t *testing.T) {
	srv := newFake(t)
	h := &answerFirst{gate: make(chan struct{}), wrote: make(chan error, 1), closed: make(chan struct{})}

	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := tls.Dialer{Config: tr.TLSClientConfig.Clone()}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &holdConn{Conn: c, h: h}, nil
	}
	t.Cleanup(tr.CloseIdleConnections)
	cfg := srv.AWSConfig()
	cfg.HTTPClient = &http.Client{Transport: tr}
	cfg.APIOptions = append(cfg.APIOptions, h.middleware)
	be := newBackend(t, srv, cloudfront.WithAWSConfig(cfg))

	urls := make([]string, 3000)
	for i := range urls {
		urls[i] = fmt.Sprintf("/posts/%05d", i)
	}
	res, err := be.Purge(t.Context(), backends.Request{URLs: urls})
	require.NoError(t, err)
	assert.NotEmpty(t, res.IDs["invalidationId"])
	invs := srv.Invalidations()
	require.Len(t, invs, 1)
	assert.Len(t, invs[0].Items, 3000)
	select {
	case <-h.closed:
		t.Error("the connection was closed after an answer was read: it should stay open for the next request")
	default:
	}
}

// answerFirst orders one request: the connection holds the writer after
// the body's last bytes (the server has them all and answers) until the
// SDK has the answer's headers and has closed the request body; then the
// SDK waits for the writer to finish, and for the connection to close if
// the writer failed, before it reads the answer's body.
type answerFirst struct {
	gate     chan struct{} // closed when the SDK has the answer's headers
	gateOnce sync.Once
	holdOnce sync.Once
	wrote    chan error    // the writer's result (httptrace WroteRequest)
	closed   chan struct{} // closed when the connection is closed
	close    sync.Once
}

const orderTimeout = 10 * time.Second

func (h *answerFirst) middleware(s *middleware.Stack) error {
	return s.Deserialize.Add(middleware.DeserializeMiddlewareFunc("answerFirst",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
				select {
				case h.wrote <- i.Err:
				default:
				}
			}})
			out, md, err := next.HandleDeserialize(ctx, in) // the SDK closes the request body before returning
			h.gateOnce.Do(func() { close(h.gate) })
			select {
			case werr := <-h.wrote:
				if werr != nil {
					select { // the transport closes the connection after a failed write
					case <-h.closed:
					case <-time.After(orderTimeout):
					}
				}
			case <-time.After(orderTimeout):
			}
			return out, md, err // the operation's deserializer reads the answer's body next
		}), middleware.After) // innermost: right around the HTTP client
}

// holdConn is a client connection (after TLS) that holds the write of the
// request body's end until h's gate opens.
type holdConn struct {
	net.Conn
	h *answerFirst
}

func (c *holdConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err == nil && bytes.Contains(p, []byte("</InvalidationBatch>")) {
		c.h.holdOnce.Do(func() {
			select {
			case <-c.h.gate:
			case <-time.After(orderTimeout):
			}
		})
	}
	return n, err
}

func (c *holdConn) Close() error {
	c.h.close.Do(func() { close(c.h.closed) })
	return c.Conn.Close()
}
