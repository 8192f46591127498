package localcache

import (
	"net/http"
	"strconv"
)

// replay writes e as the response to r: 304 Not Modified when r's
// If-None-Match matches e's ETag, else the full page with status 200.
func replay(w http.ResponseWriter, r *http.Request, e *Entry) {
	if inm, ok := r.Header["If-None-Match"]; ok {
		if etag := e.Header["Etag"]; len(etag) > 0 && etagListMatches(inm, etag[0]) {
			// RFC 9110, section 15.4.5: the headers a 200 would have
			// sent that a cache needs to update what it holds.
			n := 1 // X-Cache
			for _, k := range notModifiedHeaders {
				n += len(e.Header[k])
			}
			h, hv := w.Header(), newHeaderValues(n)
			for _, k := range notModifiedHeaders {
				if vs, ok := e.Header[k]; ok {
					hv.set(h, k, vs...)
				}
			}
			hv.set(h, XCache, "HIT")
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	n := 2 // X-Cache and Content-Length
	for _, vs := range e.Header {
		n += len(vs)
	}
	h, hv := w.Header(), newHeaderValues(n)
	for k, vs := range e.Header {
		hv.set(h, k, vs...) // the entry is shared: never hand out its slices
	}
	hv.set(h, XCache, "HIT")
	hv.set(h, "Content-Length", strconv.Itoa(len(e.Body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(e.Body)
	}
}

// headerValues copies header values into one allocation for a response.
type headerValues []string

func newHeaderValues(n int) headerValues { return make(headerValues, 0, n) }

// set sets h[k] to a copy of vs. k must be canonical. Each value slice is
// capped, so that appending to one never overwrites the next.
func (hv *headerValues) set(h http.Header, k string, vs ...string) {
	start := len(*hv)
	*hv = append(*hv, vs...)
	h[k] = (*hv)[start:len(*hv):len(*hv)]
}

// notModifiedHeaders are the stored headers a 304 repeats.
var notModifiedHeaders = []string{"Cache-Control", "Content-Location", "Etag", "Expires", "Vary"}
