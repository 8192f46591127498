package cloudfronttest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// sigv4Algorithm is the only signing algorithm SigV4 has.
const sigv4Algorithm = "AWS4-HMAC-SHA256"

// sigv4Auth is what an Authorization header of SigV4 says.
type sigv4Auth struct {
	signedHeaders string
	signature     string
	// scope is the credential: access key, date, region, service and
	// "aws4_request".
	scope []string
}

// verifySigV4 checks r's AWS Signature Version 4 (the Authorization
// header) for service "cloudfront", in whatever region its credential
// scope names (CloudFront is global; the SDK signs for us-east-1, or for
// the configured region when an endpoint is given), against the
// server's credentials, with the payload body. It is written from AWS's
// description of the signing process, independently of the SDK's signer.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
func (s *Server) verifySigV4(r *http.Request, body []byte, now time.Time) *apiError {
	a, e := parseAuthorization(r.Header.Get("Authorization"))
	if e != nil {
		return e
	}
	if e := s.checkCredential(r, a.scope); e != nil {
		return e
	}
	amzDate, e := checkDate(r, a.scope[1], now)
	if e != nil {
		return e
	}
	canonHeaders, e := canonicalHeaders(r, a.signedHeaders)
	if e != nil {
		return e
	}
	payload := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(payload[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payloadHash {
		return &apiError{http.StatusBadRequest, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed."}
	}
	canonical := strings.Join([]string{
		r.Method,
		escapePath(r.URL.EscapedPath()),
		canonicalQuery(r.URL.Query()),
		canonHeaders,
		a.signedHeaders,
		payloadHash,
	}, "\n")
	want := s.sign(a.scope, amzDate, canonical)
	if !hmac.Equal([]byte(want), []byte(a.signature)) {
		return &apiError{http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}
	}
	return nil
}

// parseAuthorization returns the parts of auth, an Authorization header,
// or why CloudFront refuses it: missing, another algorithm, a missing
// part, or a credential scope not of five parts ending in "aws4_request".
func parseAuthorization(auth string) (sigv4Auth, *apiError) {
	if auth == "" {
		return sigv4Auth{}, &apiError{http.StatusForbidden, "MissingAuthenticationToken", "Missing Authentication Token"}
	}
	rest, ok := strings.CutPrefix(auth, sigv4Algorithm+" ")
	if !ok {
		return sigv4Auth{}, &apiError{http.StatusBadRequest, "IncompleteSignature", "Authorization header requires the AWS4-HMAC-SHA256 algorithm"}
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	credential, signedHeaders, signature := fields["Credential"], fields["SignedHeaders"], fields["Signature"]
	if credential == "" || signedHeaders == "" || signature == "" {
		return sigv4Auth{}, &apiError{http.StatusBadRequest, "IncompleteSignature", "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters"}
	}
	scope := strings.Split(credential, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return sigv4Auth{}, &apiError{http.StatusBadRequest, "IncompleteSignature", "Credential should be scoped to a valid region, service and aws4_request"}
	}
	return sigv4Auth{signedHeaders: signedHeaders, signature: signature, scope: scope}, nil
}

// checkCredential refuses a credential scope of another access key than
// the server's, or not for service "cloudfront" in some region, and a
// request without the server's session token, when it has one.
func (s *Server) checkCredential(r *http.Request, scope []string) *apiError {
	accessKey, region, service := scope[0], scope[2], scope[3]
	if accessKey != s.creds.AccessKeyID {
		return &apiError{http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid."}
	}
	if region == "" || service != "cloudfront" {
		return &apiError{http.StatusForbidden, "SignatureDoesNotMatch", fmt.Sprintf("Credential should be scoped to a valid region and service 'cloudfront', not '%s/%s'.", region, service)}
	}
	if s.creds.SessionToken != "" && r.Header.Get("X-Amz-Security-Token") != s.creds.SessionToken {
		return &apiError{http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid."}
	}
	return nil
}

// checkDate returns r's X-Amz-Date, or why CloudFront refuses it: not in
// ISO-8601 basic format, not on date (the credential scope's), or more
// than 5 minutes from now.
func checkDate(r *http.Request, date string, now time.Time) (string, *apiError) {
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil || !strings.HasPrefix(amzDate, date) {
		return "", &apiError{http.StatusBadRequest, "IncompleteSignature", "Date must be in ISO-8601 'basic format' and match the credential scope"}
	}
	if d := now.Sub(t); d > 5*time.Minute || d < -5*time.Minute {
		return "", &apiError{http.StatusForbidden, "SignatureDoesNotMatch", fmt.Sprintf("Signature expired: %s is now earlier or later than %s (5 minutes of skew).", amzDate, now.UTC().Format("20060102T150405Z"))}
	}
	return amzDate, nil
}

// canonicalHeaders returns the canonical headers of r that signedHeaders
// (the header's SignedHeaders) names, one "name:value\n" each, or why
// CloudFront refuses them: not sorted, without host or x-amz-date, or
// naming a header r does not have.
func canonicalHeaders(r *http.Request, signedHeaders string) (string, *apiError) {
	names := strings.Split(signedHeaders, ";")
	if !sort.StringsAreSorted(names) || !contains(names, "host") || !contains(names, "x-amz-date") {
		return "", &apiError{http.StatusForbidden, "SignatureDoesNotMatch", "SignedHeaders must be sorted and include host and x-amz-date."}
	}
	var canonHeaders strings.Builder
	for _, n := range names {
		var v string
		switch n {
		case "host":
			v = r.Host
		case "content-length":
			v = fmt.Sprint(r.ContentLength)
		default:
			vs, ok := r.Header[http.CanonicalHeaderKey(n)]
			if !ok {
				return "", &apiError{http.StatusForbidden, "SignatureDoesNotMatch", "A signed header is missing from the request: " + n}
			}
			trimmed := make([]string, len(vs))
			for i, x := range vs {
				trimmed[i] = strings.Join(strings.Fields(x), " ")
			}
			v = strings.Join(trimmed, ",")
		}
		canonHeaders.WriteString(n + ":" + v + "\n")
	}
	return canonHeaders.String(), nil
}

// sign returns the hex signature of the canonical request with the
// server's secret key, for the credential scope and amzDate.
func (s *Server) sign(scope []string, amzDate, canonical string) string {
	date, region, service := scope[1], scope[2], scope[3]
	sum := sha256.Sum256([]byte(canonical))
	stringToSign := strings.Join([]string{sigv4Algorithm, amzDate, strings.Join(scope[1:], "/"), hex.EncodeToString(sum[:])}, "\n")
	key := hmacSHA256([]byte("AWS4"+s.creds.SecretAccessKey), date)
	key = hmacSHA256(key, region)
	key = hmacSHA256(key, service)
	key = hmacSHA256(key, "aws4_request")
	return hex.EncodeToString(hmacSHA256(key, stringToSign))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// escapePath URI-encodes an already escaped path once more, as SigV4 does
// for every service but S3: each byte other than unreserved characters and
// "/" is percent-encoded.
func escapePath(p string) string {
	if p == "" {
		return "/"
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// canonicalQuery encodes the query parameters and sorts them by encoded
// name, then by encoded value, as SigV4 specifies (sorting "name=value"
// strings would put "a-b=1" before "a=1", since "-" sorts before "=").
func canonicalQuery(q url.Values) string {
	type kv struct{ k, v string }
	var pairs []kv
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, kv{awsEscape(k), awsEscape(v)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}

func awsEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}
