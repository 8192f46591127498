package akamaitest

// EdgeGrid EG1-HMAC-SHA256 verification, written from Akamai's specification
// and its reference signer (akamai/AkamaiOPEN-edgegrid-python), independently
// of the Go signing library, so that the fake can catch that library's
// misuse. testdata/ holds the official vectors it is tested against.

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/textproto"
	"strings"
	"time"
)

const (
	authMoniker = "EG1-HMAC-SHA256"
	// timestampLayout is EdgeGrid's timestamp, such as
	// "20140321T19:34:21+0000". Signers write +0000; any offset parses.
	timestampLayout = "20060102T15:04:05-0700"
	// maxClockSkew is how far a request's timestamp may be from the
	// gateway's clock.
	maxClockSkew = 30 * time.Second
	// minNoncePrune is how many nonces are kept before expired ones are
	// dropped.
	minNoncePrune = 1024
)

// message is the part of a request that EdgeGrid signs.
type message struct {
	method    string
	scheme    string
	host      string // with the port, as in the Host header
	pathQuery string // escaped path, plus "?" and the raw query if any
	header    http.Header
	body      []byte
}

// messageOf returns what EdgeGrid signs of r, received with body. The scheme
// is https when r came over TLS.
func messageOf(r *http.Request, body []byte) message {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	pq := r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		pq += "?" + r.URL.RawQuery
	}
	return message{method: r.Method, scheme: scheme, host: r.Host, pathQuery: pq, header: r.Header, body: body}
}

// dataToSign returns the string that the signature covers: method, scheme,
// host, path and query, canonical headers, content hash and the
// Authorization header up to "signature=", joined by tabs.
func dataToSign(m message, headersToSign []string, maxBody int, authPrefix string) string {
	return strings.Join([]string{
		m.method,
		m.scheme,
		m.host,
		m.pathQuery,
		canonicalHeaders(m.header, m.host, headersToSign),
		contentHash(m.method, m.body, maxBody),
		authPrefix,
	}, "\t")
}

// canonicalHeaders returns "name:value" for each header in names (lower
// case) that h has, in the order of names, joined by tabs. Values are trimmed
// and each run of white space becomes one space; their case is kept. This is
// the reference signers' rule; the Go library instead sorts the names and
// lower-cases the values, which differs when a value has upper case letters
// or the list is not sorted.
func canonicalHeaders(h http.Header, host string, names []string) string {
	var out []string
	for _, name := range names {
		var v string
		if name == "host" {
			v = host
		} else {
			vs, ok := h[textproto.CanonicalMIMEHeaderKey(name)]
			if !ok || len(vs) == 0 {
				continue
			}
			v = vs[0]
		}
		out = append(out, name+":"+strings.Join(strings.Fields(v), " "))
	}
	return strings.Join(out, "\t")
}

// contentHash returns the base64 SHA-256 of the first maxBody bytes of a POST
// body, and "" for an empty body or any other method (PUT bodies are not
// hashed).
func contentHash(method string, body []byte, maxBody int) string {
	if method != http.MethodPost || len(body) == 0 {
		return ""
	}
	if len(body) > maxBody {
		body = body[:maxBody]
	}
	sum := sha256.Sum256(body)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// signingKey returns the key that signs a request made at timestamp: the
// base64 HMAC-SHA256 of the timestamp under the client secret.
func signingKey(clientSecret, timestamp string) string {
	return base64HMAC(clientSecret, timestamp)
}

// signature returns the base64 HMAC-SHA256 of data under key.
func signature(data, key string) string { return base64HMAC(key, data) }

func base64HMAC(key, msg string) string {
	h := hmac.New(sha256.New, []byte(key))
	h.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// authHeader is a parsed EdgeGrid Authorization header.
type authHeader struct {
	// prefix is the header up to and including the ';' before
	// "signature=": the last field of the data to sign.
	prefix      string
	clientToken string
	accessToken string
	timestamp   string
	nonce       string
	signature   string
}

var errMalformedAuth = errors.New("malformed EdgeGrid authorization header")

// parseAuthorization parses "EG1-HMAC-SHA256 client_token=...;access_token=
// ...;timestamp=...;nonce=...;signature=...". Every field is required, once,
// and signature is the last.
func parseAuthorization(h string) (authHeader, error) {
	rest, ok := strings.CutPrefix(h, authMoniker+" ")
	if !ok {
		return authHeader{}, errMalformedAuth
	}
	i := strings.LastIndex(rest, ";signature=")
	if i < 0 {
		return authHeader{}, errMalformedAuth
	}
	a := authHeader{
		prefix:    authMoniker + " " + rest[:i+1],
		signature: rest[i+len(";signature="):],
	}
	seen := map[string]bool{}
	for _, field := range strings.Split(rest[:i], ";") {
		k, v, ok := strings.Cut(field, "=")
		if !ok || v == "" || seen[k] {
			return authHeader{}, errMalformedAuth
		}
		seen[k] = true
		switch k {
		case "client_token":
			a.clientToken = v
		case "access_token":
			a.accessToken = v
		case "timestamp":
			a.timestamp = v
		case "nonce":
			a.nonce = v
		}
	}
	if a.clientToken == "" || a.accessToken == "" || a.timestamp == "" || a.nonce == "" ||
		a.signature == "" || strings.ContainsAny(a.signature, "; ") {
		return authHeader{}, errMalformedAuth
	}
	return a, nil
}

// equalSecret compares two secrets in constant time.
func equalSecret(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// authenticate checks r's EdgeGrid signature against the server's
// credentials. It returns nil when r may proceed, or the reply that rejects
// it: 401 for a missing or malformed header, an unknown token, a wrong
// signature or a reused nonce; 400 for a timestamp more than 30 seconds off
// the WithNow clock.
func (s *Server) authenticate(r *http.Request, body []byte) *reply {
	h := r.Header.Get("Authorization")
	if h == "" {
		return s.gatewayReply(r, http.StatusUnauthorized, "Missing authorization header")
	}
	a, err := parseAuthorization(h)
	if err != nil {
		return s.gatewayReply(r, http.StatusUnauthorized, "Invalid authorization header")
	}
	if !equalSecret(a.clientToken, s.creds.ClientToken) {
		return s.gatewayReply(r, http.StatusUnauthorized, "Invalid authorization client token")
	}
	if !equalSecret(a.accessToken, s.creds.AccessToken) {
		return s.gatewayReply(r, http.StatusUnauthorized, "Invalid authorization access token")
	}
	ts, err := time.Parse(timestampLayout, a.timestamp)
	now := s.cfg.now()
	if err != nil || ts.Sub(now) > maxClockSkew || now.Sub(ts) > maxClockSkew {
		return s.gatewayReply(r, http.StatusBadRequest, "Invalid timestamp")
	}
	want := signature(dataToSign(messageOf(r, body), s.cfg.headersToSign, s.cfg.maxBody, a.prefix),
		signingKey(s.creds.ClientSecret, a.timestamp))
	if !hmac.Equal([]byte(want), []byte(a.signature)) {
		return s.gatewayReply(r, http.StatusUnauthorized, "The signature does not match")
	}
	if !s.useNonce(a.nonce, ts, now) {
		return s.gatewayReply(r, http.StatusUnauthorized, "Invalid nonce: it was already used")
	}
	return nil
}

// useNonce records nonce, signed at ts, and reports whether it is new. A
// nonce is remembered for as long as its timestamp is acceptable.
func (s *Server) useNonce(nonce string, ts, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if exp, ok := s.nonces[nonce]; ok && !now.After(exp) {
		return false
	}
	if len(s.nonces) >= s.noncePrune {
		for n, exp := range s.nonces {
			if now.After(exp) {
				delete(s.nonces, n)
			}
		}
		s.noncePrune = max(minNoncePrune, 2*len(s.nonces))
	}
	s.nonces[nonce] = ts.Add(maxClockSkew)
	return true
}
