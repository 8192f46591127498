package localcache

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// recorder stands between the handler and the client's ResponseWriter. It
// judges the response by its status and headers when the handler writes
// them, and gives the client the Cache-Control of [WithBrowserMaxAge] when the
// response may be stored. It spells the handler's header keys
// canonically.
//
// While the response may be stored, the recorder buffers it: nothing
// reaches the client until send. As soon as it may not (by its status or
// headers, a body larger than max, a flush or a hijack), it calls release
// with nil and streams: what it buffered, then every write, go straight
// through. A recorder created streaming only judges and passes through.
type recorder struct {
	http.ResponseWriter
	cfg     *config
	max     int
	release func(*fill) // called once the response streams, when not nil

	wroteHeader bool
	status      int
	streaming   bool          // passing writes through to the client
	hijacked    bool          // the handler took the connection
	ttl         time.Duration // while buffered
	vary        []string      // while buffered
	header      http.Header   // while buffered: as the client is to receive it
	body        bytes.Buffer  // while buffered
}

// buffered reports whether the handler wrote a response that is still
// buffered, and so may be stored.
func (rec *recorder) buffered() bool {
	return rec.wroteHeader && !rec.streaming && !rec.hijacked
}

// WriteHeader judges the response by code and the headers written so far,
// and buffers it while it may be stored; otherwise it streams.
func (rec *recorder) WriteHeader(code int) {
	if rec.hijacked {
		return
	}
	if rec.wroteHeader {
		if rec.streaming {
			rec.ResponseWriter.WriteHeader(code) // net/http says it is superfluous
		}
		return
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		rec.ResponseWriter.WriteHeader(code) // informational: sent now
		return
	}
	rec.wroteHeader, rec.status = true, code
	hdr := rec.ResponseWriter.Header()
	canonicalKeys(hdr)
	ttl, vary, cc, storable := rec.cfg.judge(code, hdr, time.Now())
	if storable && rec.cfg.browser {
		hdr["Cache-Control"] = []string{cc.browser(rec.cfg.browserLifetime)}
		delete(hdr, "Expires")
		delete(hdr, "Age")
	}
	if rec.streaming {
		rec.ResponseWriter.WriteHeader(code)
		return
	}
	if !storable {
		rec.stream()
		return
	}
	rec.ttl, rec.vary, rec.header = ttl, vary, hdr.Clone()
}

// stream makes the response unstorable: it releases the waiting requests
// and sends the client the status and what was buffered.
func (rec *recorder) stream() {
	if rec.streaming {
		return
	}
	rec.streaming = true
	if rec.release != nil {
		rec.release(nil)
	}
	if !rec.wroteHeader || rec.hijacked {
		return
	}
	if rec.header != nil {
		rec.restoreHeader()
	}
	rec.ResponseWriter.WriteHeader(rec.status)
	if rec.body.Len() > 0 {
		_, _ = rec.ResponseWriter.Write(rec.body.Bytes())
	}
	rec.body = bytes.Buffer{}
	rec.header = nil
}

// restoreHeader gives the client's header map the values the handler had
// written when it called WriteHeader: as with net/http, later changes do
// not count. X-Cache is kept.
func (rec *recorder) restoreHeader() {
	hdr := rec.ResponseWriter.Header()
	for k := range hdr {
		if _, ok := rec.header[k]; !ok {
			delete(hdr, k)
		}
	}
	for k, vs := range rec.header {
		hdr[k] = slices.Clone(vs)
	}
}

// lengthAgrees reports whether the buffered body has the length the
// handler's Content-Length declares, if it declared one.
func (rec *recorder) lengthAgrees() bool {
	cl, ok := rec.header["Content-Length"]
	if !ok {
		return true
	}
	if len(cl) != 1 {
		return false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(cl[0]), 10, 64)
	return err == nil && n == int64(rec.body.Len())
}

// send writes the buffered response to the client, with its
// Content-Length, and flushes it, returning the first error. The
// connection may still fail afterwards; an error means the client surely
// did not get the whole response.
func (rec *recorder) send() error {
	rec.restoreHeader()
	hdr := rec.ResponseWriter.Header()
	if _, ok := hdr["Content-Length"]; !ok {
		if _, ok := hdr["Transfer-Encoding"]; !ok {
			hdr["Content-Length"] = []string{strconv.Itoa(rec.body.Len())}
		}
	}
	rec.streaming = true
	rec.ResponseWriter.WriteHeader(rec.status)
	if _, err := rec.ResponseWriter.Write(rec.body.Bytes()); err != nil {
		return fmt.Errorf("localcache: writing the response: %w", err)
	}
	if err := http.NewResponseController(rec.ResponseWriter).Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("localcache: flushing the response: %w", err)
	}
	return nil
}

// Write buffers b while the response may be stored, and streams it
// otherwise.
func (rec *recorder) Write(b []byte) (int, error) {
	if rec.hijacked {
		return 0, http.ErrHijacked
	}
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	if !rec.streaming && (rec.body.Len()+len(b) > rec.max || rec.exceedsLength(len(b))) {
		rec.stream()
	}
	if rec.streaming {
		return rec.ResponseWriter.Write(b)
	}
	return rec.body.Write(b)
}

// exceedsLength reports whether n more bytes make the buffered body longer
// than the Content-Length the handler declared.
func (rec *recorder) exceedsLength(n int) bool {
	cl, ok := rec.header["Content-Length"]
	if !ok || len(cl) != 1 {
		return false
	}
	declared, err := strconv.ParseInt(strings.TrimSpace(cl[0]), 10, 64)
	return err == nil && int64(rec.body.Len()+n) > declared
}

// Flush sends the response so far to the client: a response flushed
// before it ends is a stream, and is not stored.
func (rec *recorder) Flush() { _ = rec.FlushError() }

// FlushError is Flush, returning the client's error; http.ResponseController
// calls it.
func (rec *recorder) FlushError() error {
	if rec.hijacked {
		return http.ErrHijacked
	}
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	rec.stream()
	return http.NewResponseController(rec.ResponseWriter).Flush()
}

// Hijack hands the connection to the handler, after what was buffered;
// the response is not stored.
func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	rec.stream()
	conn, rw, err := http.NewResponseController(rec.ResponseWriter).Hijack()
	if err == nil {
		rec.hijacked = true
	}
	return conn, rw, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }
