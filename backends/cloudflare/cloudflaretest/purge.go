package cloudflaretest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// purgeBody is the request body, each variant's field.
type purgeBody struct {
	Files           []json.RawMessage `json:"files"`
	Tags            []string          `json:"tags"`
	Hosts           []string          `json:"hosts"`
	Prefixes        []string          `json:"prefixes"`
	PurgeEverything *bool             `json:"purge_everything"`

	files []string // the URLs of Files
}

// fileURLs returns the URLs of Files, string or {"url":...} objects.
func (p *purgeBody) fileURLs() []string {
	var out []string
	for _, raw := range p.Files {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			out = append(out, s)
			continue
		}
		var o struct {
			URL string `json:"url"`
		}
		if json.Unmarshal(raw, &o) == nil {
			out = append(out, o.URL)
		}
	}
	return out
}

const oneOf = `Request must contain exactly one of "purge_everything", "files", "tags", "hosts" or "prefixes"`

// parse checks the body's shape.
func (s *Server) parse(body []byte) (purgeBody, *reply) {
	var p purgeBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, failed(http.StatusBadRequest, apiError{Code: 1012, Message: "Request body is not valid: " + err.Error()})
	}
	if dec.More() {
		return p, failed(http.StatusBadRequest, apiError{Code: 1012, Message: "Request body is not valid: data after the JSON object"})
	}
	kinds := 0
	for _, n := range []bool{p.Files != nil, p.Tags != nil, p.Hosts != nil, p.Prefixes != nil, p.PurgeEverything != nil} {
		if n {
			kinds++
		}
	}
	if kinds != 1 {
		return p, failed(http.StatusBadRequest, apiError{Code: 1012, Message: oneOf})
	}
	if p.PurgeEverything != nil && !*p.PurgeEverything {
		return p, failed(http.StatusBadRequest, apiError{Code: 1012, Message: `"purge_everything" must be true`})
	}
	for _, f := range p.Files {
		var o struct {
			URL     string            `json:"url"`
			Headers map[string]string `json:"headers"`
		}
		var str string
		if json.Unmarshal(f, &str) != nil {
			d := json.NewDecoder(bytes.NewReader(f))
			d.DisallowUnknownFields()
			if d.Decode(&o) != nil || o.URL == "" {
				return p, failed(http.StatusBadRequest, apiError{Code: 1012, Message: `"files" holds URLs, or objects with "url" and "headers"`})
			}
		}
	}
	p.files = p.fileURLs()
	max, n := s.cfg.maxItems, len(p.Tags)+len(p.Hosts)+len(p.Prefixes)
	if p.Files != nil {
		max, n = s.cfg.maxFiles, len(p.files)
	}
	if p.PurgeEverything == nil && n == 0 {
		return p, failed(http.StatusBadRequest, apiError{Code: 1012, Message: oneOf + ", not empty"})
	}
	if n > max {
		return p, failed(http.StatusBadRequest, apiError{Code: 1013, Message: fmt.Sprintf("Too many items in one purge request: %d, at most %d", n, max)})
	}
	if s.cfg.noTags && (p.Tags != nil || p.Hosts != nil || p.Prefixes != nil) {
		return p, failed(http.StatusBadRequest, apiError{Code: 1107, Message: "Only enterprise zones can purge by tag."})
	}
	return p, nil
}

// checkObjects refuses a request with an object Cloudflare would refuse.
func (s *Server) checkObjects(p purgeBody) *reply {
	var errs []apiError
	s.mu.Lock()
	for _, u := range p.files {
		if s.refused[u] || !absolute(u) {
			errs = append(errs, apiError{Code: CodeRefusedURL, Message: "Invalid or refused URL: " + u})
		}
	}
	s.mu.Unlock()
	for _, t := range p.Tags {
		switch {
		case t == "" || len(t) > 1024:
			errs = append(errs, apiError{Code: 1100, Message: "Tag exceeds maximum length of 1024 characters: " + t})
		case strings.IndexFunc(t, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
			errs = append(errs, apiError{Code: 1315, Message: "Non-printable characters are forbidden in tags: " + t})
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return failed(http.StatusBadRequest, append([]apiError{{Code: 1016, Message: "One or more cache purge errors"}}, errs...)...)
}

// absolute reports whether u is an absolute http or https URL with a host.
func absolute(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != "" && p.User == nil
}

// accept spends the request's tokens and records the purge, or answers
// 429: a request of files spends one URL token per URL, and no token of
// the request bucket, as Cloudflare's limits for single-file purges are in
// URLs a second; any other request spends one token of the request bucket.
func (s *Server) accept(p purgeBody) *reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.now()
	if d := now.Sub(s.last); d > 0 {
		s.tokens = math.Min(float64(s.cfg.burst), s.tokens+d.Seconds()*s.cfg.perSecond)
		s.urlTokens = math.Min(s.cfg.urlsPerSecond, s.urlTokens+d.Seconds()*s.cfg.urlsPerSecond)
		s.last = now
	}
	tokens, need, perSecond := &s.tokens, 1.0, s.cfg.perSecond
	if p.Files != nil {
		tokens, need, perSecond = &s.urlTokens, float64(len(p.files)), s.cfg.urlsPerSecond
	}
	if *tokens+1e-9 < need {
		wait := (need - *tokens) / perSecond
		rep := failed(http.StatusTooManyRequests, apiError{Code: 971, Message: "Please wait and consider throttling your request speed"})
		rep.header = http.Header{"Retry-After": {strconv.Itoa(int(math.Ceil(wait)))}}
		return rep
	}
	*tokens = math.Max(0, *tokens-need)
	id := randomHex(16)
	s.purges = append(s.purges, Purge{ID: id, Files: p.files, Tags: p.Tags, Hosts: p.Hosts, Prefixes: p.Prefixes,
		Everything: p.PurgeEverything != nil, At: now})
	return &reply{status: http.StatusOK, body: envelope{Success: true, Errors: []apiError{}, Messages: []string{},
		Result: map[string]string{"id": id}}}
}
