package akamai

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gormpurge/gormpurge/backends"
)

// failedObjects returns the objects of r, as r holds them, that rejected
// names in the form they were sent, or that could not be sent at all. A
// URL fails when any of its canonical forms (one per hostname for a path)
// was refused.
func (b *Backend) failedObjects(r backends.Request, rejected []Rejected) backends.Request {
	// Sent URLs always hold "://" and tags never hold "/": one set serves
	// both kinds.
	refused := make(map[string]bool, len(rejected))
	for _, x := range rejected {
		refused[x.Object] = true
	}
	var failed backends.Request
	for _, u := range r.URLs {
		forms, bad := canonicalURLs([]string{u}, b.hostnames)
		if len(bad) > 0 || slices.ContainsFunc(forms, func(f string) bool { return refused[f] }) {
			failed.URLs = append(failed.URLs, u)
		}
	}
	for _, tag := range r.Tags {
		if refused[TagForm(tag)] {
			failed.Tags = append(failed.Tags, tag)
		}
	}
	return failed
}

// refusedObjects splits objects into those a 400 or 403 answer refuses and
// the rest. Akamai's detail names the refused object (for a 403, a URL or
// ARL the API client may not purge, and then every URL on the same host is
// refused too). When the detail names none of them, refused is empty: the
// answer is about the request as a whole.
func refusedObjects(kind Kind, objects []string, a *answer) (refused, rest []string) {
	i := indexNamed(objects, a.body.Detail)
	if i < 0 {
		return nil, objects
	}
	sameHost := func(o string) bool { return o == objects[i] }
	if kind == KindURL && a.status == http.StatusForbidden {
		if h := hostOf(objects[i]); h != "" {
			sameHost = func(o string) bool { return hostOf(o) == h }
		}
	}
	for _, o := range objects {
		if sameHost(o) {
			refused = append(refused, o)
		} else {
			rest = append(rest, o)
		}
	}
	return refused, rest
}

// hostOf returns the host of an absolute URL as canonicalURLs writes it.
func hostOf(u string) string {
	rest := stripScheme(u)
	if rest == u {
		return ""
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return rest[:i]
	}
	return rest
}

// indexNamed returns the index of the object that detail names, or -1. A
// URL is matched without its scheme: Akamai may name http://host/path for
// the https://host/path that was sent.
func indexNamed(objects []string, detail string) int {
	detail = strings.TrimSpace(detail)
	if detail == "" {
		return -1
	}
	for _, word := range strings.Fields(detail) {
		word = stripScheme(strings.Trim(word, `"'.,;()<>`))
		if word == "" {
			continue
		}
		for i, o := range objects {
			if stripScheme(o) == word {
				return i
			}
		}
	}
	return -1
}

func stripScheme(s string) string {
	if rest, ok := strings.CutPrefix(s, "https://"); ok {
		return rest
	}
	if rest, ok := strings.CutPrefix(s, "http://"); ok {
		return rest
	}
	return s
}
