package akamaitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gormpurge/gormpurge/backends/akamai"
)

// route is a Fast Purge endpoint.
type route struct {
	action  akamai.Action
	kind    akamai.Kind
	network akamai.Network
}

// parseRoute matches /ccu/v3/{invalidate|delete}/{url|tag|cpcode}[/{staging|
// production}]. The network defaults to production; a trailing slash does
// not match.
func parseRoute(path string) (route, bool) {
	rest, ok := strings.CutPrefix(path, "/ccu/v3/")
	if !ok {
		return route{}, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return route{}, false
	}
	rt := route{action: akamai.Action(parts[0]), kind: akamai.Kind(parts[1]), network: akamai.Production}
	if len(parts) == 3 {
		rt.network = akamai.Network(parts[2])
	}
	if rt.action != akamai.Invalidate && rt.action != akamai.Delete ||
		rt.kind != akamai.KindURL && rt.kind != akamai.KindTag && rt.kind != akamai.KindCPCode ||
		rt.network != akamai.Production && rt.network != akamai.Staging {
		return route{}, false
	}
	return rt, true
}

// isJSON reports whether a Content-Type header is application/json, with
// any parameters.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// purgeBody is a valid request body.
type purgeBody struct {
	hostname string   // url requests only; objects are then paths
	objects  []string // CP codes in decimal
}

// badRequest is why a body was refused with 400.
type badRequest struct {
	title  string
	detail string
}

func invalid(format string, args ...any) *badRequest {
	return &badRequest{title: "invalid attribute", detail: fmt.Sprintf(format, args...)}
}

// parseBody checks body against the request schema of kind: a JSON object
// with "objects" (a non-empty array of strings for url and tag, of integers
// for cpcode) and, for url only, an optional "hostname"; no other property.
func parseBody(kind akamai.Kind, body []byte) (purgeBody, *badRequest) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var top map[string]json.RawMessage
	if err := dec.Decode(&top); err != nil || top == nil {
		return purgeBody{}, &badRequest{title: "bad request", detail: "The request body is not a JSON object"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return purgeBody{}, &badRequest{title: "bad request", detail: "The request body has data after the JSON object"}
	}
	keys := make([]string, 0, len(top))
	for k := range top {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k != "objects" && (k != "hostname" || kind != akamai.KindURL) {
			return purgeBody{}, invalid("Unknown attribute %q for a %s request", k, kind)
		}
	}
	var pb purgeBody
	if raw, ok := top["hostname"]; ok {
		if !isJSONString(raw) {
			return purgeBody{}, invalid("hostname must be a string")
		}
		_ = json.Unmarshal(raw, &pb.hostname)
		if !validHostname(pb.hostname) {
			return purgeBody{}, &badRequest{title: "bad URL hostname", detail: "Invalid or malformed hostname"}
		}
	}
	raw, ok := top["objects"]
	if !ok {
		return purgeBody{}, invalid("The objects attribute is required")
	}
	var items []json.RawMessage
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '[' || json.Unmarshal(t, &items) != nil {
		return purgeBody{}, invalid("objects must be an array")
	}
	if len(items) == 0 {
		return purgeBody{}, invalid("objects must not be empty")
	}
	pb.objects = make([]string, len(items))
	for i, item := range items {
		obj, bad := parseObject(kind, pb.hostname, i, item)
		if bad != nil {
			return purgeBody{}, bad
		}
		pb.objects[i] = obj
	}
	return pb, nil
}

// parseObject checks objects[i] of a request of kind. hostname is the
// request's hostname attribute, "" without one: with one, a URL object
// must be a path on it.
func parseObject(kind akamai.Kind, hostname string, i int, item json.RawMessage) (string, *badRequest) {
	if kind == akamai.KindCPCode {
		t := string(bytes.TrimSpace(item))
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil || n <= 0 || strings.ContainsAny(t, "+-") {
			return "", invalid("objects[%d] must be a CP code, a positive integer: %s", i, t)
		}
		return strconv.FormatInt(n, 10), nil
	}
	if !isJSONString(item) {
		return "", invalid("objects[%d] must be a string", i)
	}
	var s string
	_ = json.Unmarshal(item, &s)
	switch {
	case kind == akamai.KindTag:
		if !validTag(s) {
			return "", &badRequest{title: "bad tag", detail: s}
		}
	case hostname != "":
		if !strings.HasPrefix(s, "/") || !printableASCII(s) {
			return "", &badRequest{title: "bad URL", detail: s}
		}
	case strings.HasPrefix(s, "/"):
		if _, ok := arlHost(s); !ok {
			return "", &badRequest{title: "bad URL", detail: s}
		}
	default:
		if _, ok := urlHost(s); !ok {
			return "", &badRequest{title: "bad URL", detail: s}
		}
	}
	return s, nil
}

func isJSONString(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && t[0] == '"'
}

// printableASCII reports whether s is not empty and has only ASCII from '!'
// to '~': no space, control character or non-ASCII byte (Akamai wants those
// percent-encoded).
func printableASCII(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// urlHost returns the host of an absolute http or https URL, and whether s
// is one.
func urlHost(s string) (string, bool) {
	if !printableASCII(s) {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.User != nil ||
		!validHostname(u.Hostname()) {
		return "", false
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			return "", false
		}
	}
	return u.Host, true
}

// arlPattern matches an ARL such as "/L/512/6848/1h/www.example1.com/":
// type, serial, CP code, TTL, origin host, then the path.
var arlPattern = regexp.MustCompile(`^/[LR]/[0-9]+/[0-9]+/[^/]+/([^/]+)(/.*)?$`)

// arlHost returns the origin host of an ARL, and whether s is one.
func arlHost(s string) (string, bool) {
	m := arlPattern.FindStringSubmatch(s)
	if m == nil || !printableASCII(s) || !validHostname(m[1]) {
		return "", false
	}
	return m[1], true
}

// validHostname reports whether h is a DNS name: dot-separated labels of
// letters, digits, '-' and '_', each 1 to 63 characters, 253 in all.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// maxTagLength is the longest cache tag Akamai accepts.
const maxTagLength = 128

// tagForbidden are the characters a cache tag may not contain, besides
// white space, control characters and non-ASCII.
const tagForbidden = `,"=()?;/[]<>*@\{}:`

// validTag reports whether s is a cache tag Akamai accepts: 1 to 128
// printable ASCII characters, none of them forbidden.
func validTag(s string) bool {
	return len(s) <= maxTagLength && printableASCII(s) && !strings.ContainsAny(s, tagForbidden)
}

// unauthorized returns the first URL object of pb whose host the account
// may not purge, as Akamai names it in a 403's detail, and whether there is
// one.
func (cfg *config) unauthorized(kind akamai.Kind, pb purgeBody) (string, bool) {
	if kind != akamai.KindURL || cfg.authorized == nil {
		return "", false
	}
	for _, obj := range pb.objects {
		var host, shown string
		switch {
		case pb.hostname != "":
			host, shown = pb.hostname, "https://"+pb.hostname+obj
		case strings.HasPrefix(obj, "/"):
			host, _ = arlHost(obj)
			shown = obj
		default:
			host, _ = urlHost(obj)
			shown = obj
		}
		if !cfg.hostAuthorized(host) {
			return shown, true
		}
	}
	return "", false
}

// hostAuthorized reports whether host, which may carry a port, is listed
// by WithAuthorizedHosts, with or without its port.
func (cfg *config) hostAuthorized(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if cfg.authorized[host] {
		return true
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		return cfg.authorized[host[:i]]
	}
	return false
}
