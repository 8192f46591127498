package cloudflaretest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// apiError is one entry of the envelope's errors.
type apiError struct {
	Code       int        `json:"code"`
	Message    string     `json:"message"`
	ErrorChain []apiError `json:"error_chain,omitempty"`
}

// envelope is every answer's body.
type envelope struct {
	Success  bool       `json:"success"`
	Errors   []apiError `json:"errors"`
	Messages []string   `json:"messages"`
	Result   any        `json:"result"`
}

type reply struct {
	status int
	header http.Header
	body   envelope
}

func failed(status int, errs ...apiError) *reply {
	return &reply{status: status, body: envelope{Errors: errs, Messages: []string{}}}
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxReadBody))
	if err != nil {
		return
	}
	var parsed purgeBody
	_ = json.Unmarshal(body, &parsed) // for the hook only; checked below
	call := Call{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body,
		Files: parsed.fileURLs(), Tags: parsed.Tags}
	if !s.holder.Wait(r.Context()) {
		panic(http.ErrAbortHandler) // the client went away while held: no answer
	}
	s.mu.Lock()
	s.seq++
	call.Seq = s.seq
	status, injected := s.failures.Next()
	hook := s.hook
	s.mu.Unlock()
	if !injected && hook != nil {
		status, injected = hook(call)
	}
	var rep *reply
	if injected {
		rep = injectedReply(status)
	} else {
		rep = s.handle(r, body)
	}
	s.write(w, rep)
}

func injectedReply(status int) *reply {
	switch {
	case status < 400:
		return &reply{status: http.StatusOK, body: envelope{Success: true, Errors: []apiError{}, Messages: []string{},
			Result: map[string]string{"id": randomHex(16)}}}
	case status == http.StatusTooManyRequests:
		rep := failed(status, apiError{Code: 971, Message: "Please wait and consider throttling your request speed"})
		rep.header = http.Header{"Retry-After": {"1"}}
		return rep
	case status >= 500:
		return failed(status, apiError{Code: 10002, Message: "An unknown error has occurred"})
	case status == http.StatusForbidden || status == http.StatusUnauthorized:
		return failed(status, apiError{Code: 10000, Message: "Authentication error"})
	}
	return failed(status, apiError{Code: 1012, Message: "Request is invalid"})
}

// handle answers a request in Cloudflare's order: route, token, zone,
// body, objects, bucket.
func (s *Server) handle(r *http.Request, body []byte) *reply {
	zone, ok := route(r.URL.Path)
	if !ok {
		return failed(http.StatusNotFound, apiError{Code: 7000, Message: "No route for that URI"})
	}
	if r.Method != http.MethodPost {
		rep := failed(http.StatusMethodNotAllowed, apiError{Code: 10405, Message: "Method " + r.Method + " not allowed for this path"})
		rep.header = http.Header{"Allow": {http.MethodPost}}
		return rep
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" || strings.ContainsAny(token, " \t") {
		return failed(http.StatusBadRequest, apiError{Code: 6003, Message: "Invalid request headers",
			ErrorChain: []apiError{{Code: 6111, Message: "Invalid format for Authorization header"}}})
	}
	if token != s.cfg.token {
		return failed(http.StatusForbidden, apiError{Code: 10000, Message: "Authentication error"})
	}
	if zone != s.cfg.zone {
		status := http.StatusNotFound
		if !zoneID.MatchString(zone) {
			status = http.StatusBadRequest
		}
		return failed(status, apiError{Code: 7003, Message: "Could not route to " + r.URL.Path + ", perhaps your object identifier is invalid?"})
	}
	p, rep := s.parse(body)
	if rep != nil {
		return rep
	}
	if rep := s.checkObjects(p); rep != nil {
		return rep
	}
	return s.accept(p)
}

// route returns the zone of a purge_cache path.
func route(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/client/v4/zones/")
	if !ok {
		return "", false
	}
	zone, ok := strings.CutSuffix(rest, "/purge_cache")
	if !ok || zone == "" || strings.Contains(zone, "/") {
		return "", false
	}
	return zone, true
}

// write sends rep and counts it.
func (s *Server) write(w http.ResponseWriter, rep *reply) {
	if rep.body.Errors == nil {
		rep.body.Errors = []apiError{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rep.body); err != nil {
		panic("cloudflaretest: encoding a response: " + err.Error())
	}
	for k, vs := range rep.header {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", "application/json")
	s.mu.Lock()
	s.responses[rep.status]++
	s.mu.Unlock()
	w.WriteHeader(rep.status)
	_, _ = w.Write(buf.Bytes())
}
