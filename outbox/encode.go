package outbox

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gormpurge/gormpurge/backends"
)

// encodedRow is the urls and tags columns of one row: JSON arrays.
type encodedRow struct{ urls, tags string }

// splitRows encodes r as the rows that hold it: one unless its URLs and
// tags together take more than limit bytes of JSON, in which case each row
// holds as many as fit (at least one). Order is kept.
func splitRows(r backends.Request, limit int) ([]encodedRow, error) {
	var (
		rows       []encodedRow
		urls, tags []byte
		item       []byte
		err        error
	)
	flush := func() {
		rows = append(rows, encodedRow{urls: closeList(urls), tags: closeList(tags)})
		urls, tags = urls[:0], tags[:0]
	}
	add := func(list *[]byte, s string) error {
		if item, err = appendJSONString(item[:0], s); err != nil {
			return err
		}
		// Each list costs its brackets; each item after the first its
		// comma.
		size := len(urls) + len(tags) + 4 + len(item)
		if len(*list) > 0 {
			size++
		}
		if len(urls)+len(tags) > 0 && size > limit {
			flush()
		}
		if len(*list) > 0 {
			*list = append(*list, ',')
		}
		*list = append(*list, item...)
		return nil
	}
	for _, u := range r.URLs {
		if err := add(&urls, u); err != nil {
			return nil, err
		}
	}
	for _, t := range r.Tags {
		if err := add(&tags, t); err != nil {
			return nil, err
		}
	}
	if len(urls)+len(tags) > 0 || len(rows) == 0 {
		flush()
	}
	return rows, nil
}

// appendJSONString appends s to dst as a JSON string: printable ASCII
// without quotes or backslashes as it is (URLs and tags nearly always),
// anything else as encoding/json writes it, without escaping "<>&".
func appendJSONString(dst []byte, s string) ([]byte, error) {
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\'
	}
	if plain {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"'), nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return dst, err
	}
	return append(dst, bytes.TrimSuffix(b.Bytes(), []byte("\n"))...), nil
}

// closeList returns the items in b as a JSON array.
func closeList(b []byte) string {
	return "[" + string(b) + "]"
}

// encodeList returns l as a JSON array of strings.
func encodeList(l []string) (string, error) {
	if len(l) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(l)
	return string(b), err
}

// decodeList reads a JSON array of strings; an empty column is an empty
// list.
func decodeList(s string) ([]string, error) {
	if s == "" || s == "[]" {
		return nil, nil
	}
	var l []string
	err := json.Unmarshal([]byte(s), &l)
	return l, err
}

// maxErrorLen bounds last_error, in bytes, so that a failure naming ten
// thousand URLs does not bloat the table.
const maxErrorLen = 4000

// clip returns s as valid UTF-8 without NUL bytes (which PostgreSQL's text
// refuses), cut to at most n bytes on a character boundary, with tail
// appended when it was cut. Every database refuses a string cut in the
// middle of a character, or holding invalid UTF-8, in a UTF-8 column.
func clip(s string, n int, tail string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + tail
}

// asciiText returns s with every character outside printable ASCII
// escaped as Go would quote it.
func asciiText(s string) string {
	q := strconv.QuoteToASCII(s)
	return q[1 : len(q)-1]
}
