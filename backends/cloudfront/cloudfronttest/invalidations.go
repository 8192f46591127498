package cloudfronttest

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// invalidationBatch is CreateInvalidation's request body.
type invalidationBatch struct {
	XMLName         xml.Name
	CallerReference *string `xml:"CallerReference"`
	Paths           *struct {
		Quantity *int `xml:"Quantity"`
		Items    *struct {
			Path []string `xml:"Path"`
		} `xml:"Items"`
	} `xml:"Paths"`
}

const invalidPaths = "Your request contains one or more invalid invalidation paths."

// create serves CreateInvalidation on distribution dist: it waits while
// a [Server.Hold] holds requests, then answers with the next fault, the
// refusal of an invalid batch, the earlier invalidation of a
// CallerReference sent again, or a new invalidation.
func (s *Server) create(w http.ResponseWriter, r *http.Request, dist string, body []byte) {
	s.mu.Lock()
	s.calls["CreateInvalidation"]++
	h := s.held
	s.mu.Unlock()
	if h != nil && !h.wait(r) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.hasDistribution(dist) {
		writeError(w, http.StatusNotFound, "NoSuchDistribution", "The specified distribution does not exist.")
		return
	}
	if f, ok := s.nextFaultLocked(OpCreateInvalidation); ok {
		writeError(w, f.status, f.code, f.message)
		return
	}
	ref, items, e := parseBatch(body)
	if e != nil {
		writeError(w, e.status, e.code, e.message)
		return
	}
	paths, wild, e := s.countItems(items)
	if e != nil {
		writeError(w, e.status, e.code, e.message)
		return
	}
	if prev, ok := s.byRef[dist+"\x00"+ref]; ok {
		if !slices.Equal(sortedCopy(prev.Items), sortedCopy(items)) {
			writeError(w, http.StatusConflict, "InvalidationBatchAlreadyExists", "The CallerReference was sent before with other paths.")
			return
		}
		s.ignored = append(s.ignored, ref)
		writeInvalidation(w, http.StatusCreated, s.location(dist, prev.ID), prev, time.Now())
		return
	}
	s.createLocked(w, dist, ref, items, paths, wild)
}

// parseBatch returns the CallerReference and the items of body, an
// InvalidationBatch, or why CloudFront refuses it.
func parseBatch(body []byte) (ref string, items []string, e *apiError) {
	if len(body) == 0 {
		return "", nil, &apiError{http.StatusBadRequest, "MissingBody", "This operation requires a body. Ensure that the body is present and the Content-Type header is set."}
	}
	var b invalidationBatch
	if err := xml.Unmarshal(body, &b); err != nil || b.XMLName.Local != "InvalidationBatch" || b.XMLName.Space != Namespace {
		return "", nil, &apiError{http.StatusBadRequest, "MalformedInput", "Could not parse the request body as an InvalidationBatch in namespace " + Namespace + "."}
	}
	if b.CallerReference == nil || *b.CallerReference == "" || b.Paths == nil || b.Paths.Quantity == nil {
		return "", nil, &apiError{http.StatusBadRequest, "InvalidArgument", "CallerReference, Paths and Paths/Quantity are required."}
	}
	if b.Paths.Items != nil {
		items = b.Paths.Items.Path
	}
	if *b.Paths.Quantity != len(items) {
		return "", nil, &apiError{http.StatusBadRequest, "InconsistentQuantities", "The value of Quantity and the size of Items don't match."}
	}
	if len(items) == 0 {
		return "", nil, &apiError{http.StatusBadRequest, "InvalidArgument", invalidPaths}
	}
	return *b.CallerReference, items, nil
}

// countItems returns how many individual and wildcard paths items has, or
// why CloudFront refuses them: an invalid item, or more than one
// invalidation may hold.
func (s *Server) countItems(items []string) (paths, wild int, e *apiError) {
	for _, it := range items {
		if msg := s.checkItem(it); msg != "" {
			return 0, 0, &apiError{http.StatusBadRequest, "InvalidArgument", msg}
		}
		if isWildcard(it) {
			wild++
		} else {
			paths++
		}
	}
	if paths > s.cfg.maxPaths || wild > s.cfg.maxWildcards {
		return 0, 0, &apiError{http.StatusRequestEntityTooLarge, "BatchTooLarge", "Invalidation batch specified is too large."}
	}
	return paths, wild, nil
}

// createLocked creates and answers the invalidation of items on dist with
// CallerReference ref, unless it would exceed the in-progress limits.
func (s *Server) createLocked(w http.ResponseWriter, dist, ref string, items []string, paths, wild int) {
	now := time.Now()
	inPaths, inWild := s.inProgressLocked(dist, now)
	if inPaths+paths > s.cfg.maxPaths {
		writeError(w, http.StatusBadRequest, "TooManyInvalidationsInProgress", "Processing your request will cause you to exceed the maximum number of in-progress individual path invalidations.")
		return
	}
	if inWild+wild > s.cfg.maxWildcards {
		writeError(w, http.StatusBadRequest, "TooManyInvalidationsInProgress", "Processing your request will cause you to exceed the maximum number of in-progress wildcard invalidations.")
		return
	}
	inv := &Invalidation{ID: "I" + randomString(13), Distribution: dist, CallerReference: ref,
		Items: slices.Clone(items), Created: now, Completes: now.Add(s.cfg.delay)}
	s.invalidations = append(s.invalidations, inv)
	s.byRef[dist+"\x00"+ref] = inv
	if s.cfg.delay > 0 {
		s.maxPaths, s.maxWild = max(s.maxPaths, inPaths+paths), max(s.maxWild, inWild+wild)
	}
	writeInvalidation(w, http.StatusCreated, s.location(dist, inv.ID), inv, now)
}

// checkItem returns why CloudFront refuses an invalidation item, or "".
func (s *Server) checkItem(it string) string {
	if t, ok := strings.CutPrefix(it, "#"); ok && s.cfg.cacheTags {
		if t == "" || len(t) > maxTagLength || strings.IndexFunc(t, func(r rune) bool { return r < '!' || r > '~' || r == ',' }) >= 0 {
			return "Your request contains one or more invalid cache tags."
		}
		return ""
	}
	if !strings.HasPrefix(it, "/") || len(it) > maxPathLength {
		return invalidPaths
	}
	if i := strings.IndexByte(it, '*'); i >= 0 && i != len(it)-1 {
		return invalidPaths
	}
	for i := 0; i < len(it); i++ {
		if it[i] <= ' ' || it[i] >= 0x7f {
			return invalidPaths // unsafe and non-ASCII characters must be URL-encoded
		}
	}
	return ""
}

// isWildcard reports whether an item counts against the wildcard limit: a
// path ending in "*". Cache tags ("#tag") have no wildcard.
func isWildcard(item string) bool {
	return strings.HasPrefix(item, "/") && strings.HasSuffix(item, "*")
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// inProgressLocked counts the individual and wildcard paths of dist's
// invalidations in progress at now.
func (s *Server) inProgressLocked(dist string, now time.Time) (paths, wild int) {
	for _, inv := range s.invalidations {
		if inv.Distribution != dist || inv.Status(now) != "InProgress" {
			continue
		}
		for _, it := range inv.Items {
			if isWildcard(it) {
				wild++
			} else {
				paths++
			}
		}
	}
	return paths, wild
}

func (s *Server) location(dist, id string) string {
	return s.ts.URL + "/" + APIVersion + "/distribution/" + dist + "/invalidation/" + id
}

func (s *Server) get(w http.ResponseWriter, dist, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["GetInvalidation"]++
	if !s.hasDistribution(dist) {
		writeError(w, http.StatusNotFound, "NoSuchDistribution", "The specified distribution does not exist.")
		return
	}
	if f, ok := s.nextFaultLocked(OpGetInvalidation); ok {
		writeError(w, f.status, f.code, f.message)
		return
	}
	for _, inv := range s.invalidations {
		if inv.ID == id && inv.Distribution == dist {
			writeInvalidation(w, http.StatusOK, "", inv, time.Now())
			return
		}
	}
	writeError(w, http.StatusNotFound, "NoSuchInvalidation", "The specified invalidation does not exist.")
}

type invalidationXML struct {
	XMLName           xml.Name `xml:"Invalidation"`
	Xmlns             string   `xml:"xmlns,attr"`
	ID                string   `xml:"Id"`
	Status            string   `xml:"Status"`
	CreateTime        string   `xml:"CreateTime"`
	InvalidationBatch struct {
		CallerReference string `xml:"CallerReference"`
		Paths           struct {
			Quantity int      `xml:"Quantity"`
			Items    []string `xml:"Items>Path"`
		} `xml:"Paths"`
	} `xml:"InvalidationBatch"`
}

func writeInvalidation(w http.ResponseWriter, status int, location string, inv *Invalidation, now time.Time) {
	var x invalidationXML
	x.Xmlns, x.ID, x.Status = Namespace, inv.ID, inv.Status(now)
	x.CreateTime = inv.Created.UTC().Format("2006-01-02T15:04:05.000Z")
	x.InvalidationBatch.CallerReference = inv.CallerReference
	x.InvalidationBatch.Paths.Quantity = len(inv.Items)
	x.InvalidationBatch.Paths.Items = inv.Items
	out, _ := xml.Marshal(x)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amz-Request-Id", randomString(8)+"-"+randomString(4))
	if location != "" {
		w.Header().Set("Location", location)
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, xml.Header)
	_, _ = w.Write(out)
}

// apiError is a refused request (its signature, its body, its items), as
// CloudFront answers it with [writeError].
type apiError struct {
	status  int
	code    string
	message string
}

// writeError answers with CloudFront's error XML.
func writeError(w http.ResponseWriter, status int, code, message string) {
	typ := "Sender"
	if status >= 500 {
		typ = "Receiver"
	}
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(message))
	id := randomString(8) + "-" + randomString(4)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amz-Request-Id", id)
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0"?>`+"\n"+`<ErrorResponse xmlns="%s"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`,
		Namespace, typ, code, b.String(), id)
}
