package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/gormpurge/gormpurge/backends"
)

// input is one object named on the command line or in a file, and where.
type input struct {
	value string
	where string // "argument 2", "urls.txt:14", "stdin:3"
}

// invalidInput is an input that cannot be used, and why.
type invalidInput struct {
	Where string `json:"where"`
	Input string `json:"input"`
	Error string `json:"error"`
}

func (i invalidInput) String() string {
	return fmt.Sprintf("%s: %q: %s", i.Where, i.Input, i.Error)
}

// readInputs collects the objects of a command: args, unless args is just
// "-", which reads stdin; then each file, "-" again meaning stdin. Files
// and stdin hold one object per line; blank lines and lines whose first
// non-blank character is # are skipped.
func readInputs(args, files []string, stdin io.Reader) ([]input, error) {
	var out []input
	stdinRead := false
	readStdin := func() error {
		if stdinRead {
			return usageErrorf("standard input (-) is named twice")
		}
		stdinRead = true
		got, err := readLines(stdin, "stdin")
		if err != nil {
			return usageErrorf("reading standard input: %v", err)
		}
		out = append(out, got...)
		return nil
	}
	switch {
	case len(args) == 1 && args[0] == "-":
		if err := readStdin(); err != nil {
			return nil, err
		}
	default:
		for i, a := range args {
			if a == "-" {
				return nil, usageErrorf("- (read standard input) must be the only argument")
			}
			out = append(out, input{value: strings.TrimSpace(a), where: fmt.Sprintf("argument %d", i+1)})
		}
	}
	for _, f := range files {
		if f == "-" {
			if err := readStdin(); err != nil {
				return nil, err
			}
			continue
		}
		fh, err := os.Open(f)
		if err != nil {
			return nil, usageErrorf("--file: %v", err)
		}
		got, err := readLines(fh, f)
		fh.Close()
		if err != nil {
			return nil, usageErrorf("--file %s: %v", f, err)
		}
		out = append(out, got...)
	}
	return out, nil
}

// maxLine is the longest line readLines accepts.
const maxLine = 1 << 20

// readLines reads one object per line from r, named name in messages.
func readLines(r io.Reader, name string) ([]input, error) {
	var out []input
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF") // a byte order mark
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, input{value: line, where: fmt.Sprintf("%s:%d", name, n)})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("a line is longer than %d bytes", maxLine)
		}
		return nil, err
	}
	return out, nil
}

// checkFunc returns the object to use for one input value, or why it
// cannot be used.
type checkFunc func(s string) (string, error)

// check sorts ins into the values check accepts and the invalid ones.
func check(ins []input, fn checkFunc) (ok []string, bad []invalidInput) {
	for _, in := range ins {
		v, err := fn(in.value)
		if err != nil {
			bad = append(bad, invalidInput{Where: in.where, Input: backends.RedactURL(in.value), Error: redactText(err.Error(), in.value)})
			continue
		}
		ok = append(ok, v)
	}
	return ok, bad
}

// invalidError is the usage error for inputs that cannot be used, listing
// the first of them.
func invalidError(bad []invalidInput, hint string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s; nothing was sent (%s):", countOf(len(bad), "invalid input", "invalid inputs"), hint)
	writeInvalid(&b, bad, 20)
	return usageErrorf("%s", b.String())
}

// writeInvalid lists up to limit invalid inputs, one per line.
func writeInvalid(w io.Writer, bad []invalidInput, limit int) {
	for i, x := range bad {
		if limit > 0 && i == limit {
			fmt.Fprintf(w, "\n  ... and %d more", len(bad)-i)
			break
		}
		fmt.Fprintf(w, "\n  %s", x)
	}
}

// pathRule says whether a list of URLs may hold paths.
type pathRule int

const (
	absoluteURLsOnly pathRule = iota // a path is refused
	pathsAllowed                     // a path beginning with "/" is accepted
)

// checkURL accepts an absolute http(s) URL, and a path beginning with "/"
// when paths allows it, and returns its canonical form
// ([backends.CanonicalURL]), the one the library purges; pathHint says
// what a path needs otherwise.
func checkURL(paths pathRule, pathHint string) checkFunc {
	return func(s string) (string, error) {
		if s == "" {
			return "", errors.New("empty")
		}
		// The library would encode a space, but in a list of URLs one is
		// more likely two URLs on a line, or a URL cut in two.
		if strings.ContainsFunc(s, unicode.IsSpace) {
			return "", errors.New("holds white space (percent-encode it)")
		}
		c, err := backends.CanonicalURL(s)
		if err != nil {
			return "", errors.New(strings.TrimPrefix(err.Error(), backends.ErrInvalidURL.Error()+": "))
		}
		if c[0] == '/' && paths != pathsAllowed {
			return "", errors.New("a path: " + pathHint)
		}
		return c, nil
	}
}

// redactText returns msg with every occurrence of the URL raw, and of each
// credential backends.RedactURL hides in it, redacted.
func redactText(msg, raw string) string {
	red := backends.RedactURL(raw)
	if red == raw {
		return msg
	}
	msg = strings.ReplaceAll(msg, raw, red)
	msg = strings.ReplaceAll(msg, strconv.Quote(raw), strconv.Quote(red))
	for _, s := range credentials(raw) {
		msg = strings.ReplaceAll(msg, s, "REDACTED")
	}
	return msg
}

// credentials returns the pieces of the URL raw that backends.RedactURL hides, as
// written and decoded: its user information, query values and fragment.
func credentials(raw string) []string {
	var out []string
	add := func(s string) {
		if s == "" {
			return
		}
		out = append(out, s)
		if d, err := url.PathUnescape(s); err == nil && d != s && d != "" {
			out = append(out, d)
		}
	}
	rest := raw
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		user, pass, _ := strings.Cut(rest[:at], ":")
		add(pass)
		if pass == "" {
			add(user)
		}
		rest = rest[at+1:]
	}
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		add(rest[i+1:])
		rest = rest[:i]
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		for _, pair := range strings.Split(rest[i+1:], "&") {
			k, v, ok := strings.Cut(pair, "=")
			if !ok {
				v = k
			}
			add(v)
		}
	}
	// Longest first, so that a piece holding another is replaced whole.
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// checkTag accepts a cache tag in canonical form ([backends.CanonicalTag]:
// no white space, comma or control character) that the backend named
// backendName accepts, as its rule says (such as Akamai's); a nil
// rule accepts every one.
func checkTag(rule func(string) error, backendName string) checkFunc {
	return func(s string) (string, error) {
		if s == "" {
			return "", errors.New("empty")
		}
		if _, err := backends.CanonicalTag(s); err != nil {
			return "", errors.New(strings.TrimPrefix(err.Error(), backends.ErrInvalidTag.Error()+": "))
		}
		if rule != nil {
			if err := rule(s); err != nil {
				return "", fmt.Errorf("%v: %s refuses it", err, backendName)
			}
		}
		return s, nil
	}
}

// checkCPCode accepts a CP code: a positive decimal integer.
func checkCPCode(s string) (string, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || strings.HasPrefix(s, "+") {
		return "", errors.New("a CP code is a positive whole number, such as 12345")
	}
	return strconv.Itoa(n), nil
}
