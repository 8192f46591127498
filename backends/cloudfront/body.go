package cloudfront

import (
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// readBodyClient sends requests through next with a request body that
// has only Read and Close.
//
// smithy-go, under the AWS SDK, closes a request's body as soon as
// the HTTP client returns the answer's headers, and its body wrapper
// then answers WriteTo with io.EOF as an error instead of (0, nil).
// net/http, once it has written Content-Length bytes, copies what is
// left of the body to io.Discard to check that there is nothing more;
// it uses WriteTo when the body has it. When the answer arrives first
// (the server has read the whole body and answered quickly: a fake on
// the loopback, or CloudFront on a short round trip), that check gets
// the EOF error, and the transport closes the connection as after a
// failed write while the answer's body is being read:
// "deserialization failed ... use of closed network connection" on a
// CreateInvalidation CloudFront accepted. A Read after Close returns
// (0, io.EOF), which io.Copy takes as the end of the body, so the check
// passes and the connection stays usable.
type readBodyClient struct {
	next aws.HTTPClient
}

// Do sends r through next, its body stripped of WriterTo.
func (c readBodyClient) Do(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return c.next.Do(r)
	}
	if _, ok := r.Body.(io.WriterTo); !ok {
		return c.next.Do(r)
	}
	r2 := r.WithContext(r.Context()) // a shallow copy: the caller's request is left alone
	r2.Body = readCloser{r.Body}
	return c.next.Do(r2)
}

// readCloser hides every method of its ReadCloser but Read and Close.
type readCloser struct{ rc io.ReadCloser }

func (b readCloser) Read(p []byte) (int, error) { return b.rc.Read(p) }
func (b readCloser) Close() error               { return b.rc.Close() }
