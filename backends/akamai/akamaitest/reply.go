package akamaitest

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gormpurge/gormpurge/backends/akamai"
)

// describedBy is the describedBy of every Fast Purge error.
const describedBy = "https://techdocs.akamai.com/purge-cache/reference/api-errors"

// gatewayProblemType is the type of the API gateway's authentication errors.
const gatewayProblemType = "https://problems.luna.akamaiapis.net/-/pep-authn/deny"

// reply is a response about to be written.
type reply struct {
	status int
	header http.Header // extra headers, such as X-Ratelimit-*
	body   any         // encoded as JSON
}

// problem is an error body. The Fast Purge fields are those of Akamai's
// examples; the API gateway's authentication errors (401, and 400 for the
// timestamp) also carry type, status, instance, method, requestId and
// requestTime, as Akamai's gateway does.
type problem struct {
	Type        string `json:"type,omitempty"`
	Status      int    `json:"status,omitempty"`
	Instance    string `json:"instance,omitempty"`
	Method      string `json:"method,omitempty"`
	RequestID   string `json:"requestId,omitempty"`
	RequestTime string `json:"requestTime,omitempty"`

	SupportID   string `json:"supportId"`
	Title       string `json:"title"`
	HTTPStatus  int    `json:"httpStatus"`
	DescribedBy string `json:"describedBy"`
	Detail      string `json:"detail"`

	// Only on 429.
	RateLimit                   *int `json:"rateLimit,omitempty"`
	RateLimitCurrentRequestSize *int `json:"rateLimitCurrentRequestSize,omitempty"`
	RateLimitRemaining          *int `json:"rateLimitRemaining,omitempty"`
}

// acceptedBody is the body of a 201.
type acceptedBody struct {
	HTTPStatus       int    `json:"httpStatus"`
	EstimatedSeconds int    `json:"estimatedSeconds"`
	PurgeID          string `json:"purgeId"`
	SupportID        string `json:"supportId"`
	Detail           string `json:"detail"`
}

// contentType returns the media type of a response with status, as in the
// OpenAPI file: application/json for 201, 429 and 5xx, and
// application/problem+json for the other errors.
func contentType(status int) string {
	if status < 400 || status == http.StatusTooManyRequests || status >= 500 {
		return "application/json"
	}
	return "application/problem+json"
}

// problemReply returns an error reply with a Fast Purge body.
func problemReply(status int, kind akamai.Kind, title, detail string) *reply {
	return &reply{status: status, body: &problem{
		SupportID:   newID(kind),
		Title:       title,
		HTTPStatus:  status,
		DescribedBy: describedBy,
		Detail:      detail,
	}}
}

// gatewayReply returns an error of the API gateway, which checks the
// signature before Fast Purge sees the request.
func (s *Server) gatewayReply(r *http.Request, status int, detail string) *reply {
	title := "Not authorized"
	if status == http.StatusBadRequest {
		title = "Bad request"
	}
	return &reply{status: status, body: &problem{
		Type:        gatewayProblemType,
		Status:      status,
		Instance:    "https://" + r.Host + r.URL.RequestURI(),
		Method:      r.Method,
		RequestID:   randomString(hexDigits, 8),
		RequestTime: s.cfg.now().UTC().Format("2006-01-02T15:04:05Z"),
		SupportID:   newID(""),
		Title:       title,
		HTTPStatus:  status,
		DescribedBy: describedBy,
		Detail:      detail,
	}}
}

// write sends rep and counts it in Responses.
func (s *Server) write(w http.ResponseWriter, rep *reply) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rep.body); err != nil {
		panic("akamaitest: encoding a response: " + err.Error()) // every body is a plain struct
	}
	for k, vs := range rep.header {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", contentType(rep.status))
	s.mu.Lock()
	s.responses[rep.status]++
	s.mu.Unlock()
	w.WriteHeader(rep.status)
	_, _ = w.Write(buf.Bytes())
}

const (
	base58    = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	hexDigits = "0123456789abcdef"
)

// newID returns a purge or support ID such as "edcp-NZbXzFpHBjcJeryhw6PVgG":
// the prefix names the kind, as in Akamai's examples (edup for URLs, edtp
// for tags, edcp for CP codes and anything else).
func newID(kind akamai.Kind) string {
	prefix := "edcp-"
	switch kind {
	case akamai.KindURL:
		prefix = "edup-"
	case akamai.KindTag:
		prefix = "edtp-"
	}
	return prefix + randomString(base58, 22)
}

// randomString returns n characters of alphabet drawn from crypto/rand.
func randomString(alphabet string, n int) string {
	var b strings.Builder
	b.Grow(n)
	buf := make([]byte, 1)
	limit := 256 - 256%len(alphabet) // rejection sampling: no modulo bias
	for b.Len() < n {
		_, _ = rand.Read(buf)
		if int(buf[0]) < limit {
			b.WriteByte(alphabet[int(buf[0])%len(alphabet)])
		}
	}
	return b.String()
}
