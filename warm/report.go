package warm

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
)

// report calls the function of [WithOnResult], if any, with r. A panic in it
// is recovered and logged: a broken metrics hook must not crash the process
// from a background fetch, nor stop Fetch or Enqueue halfway.
func (w *Warmer) report(r Result) {
	if w.cfg.onResult == nil {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			w.cfg.logger.LogAttrs(context.Background(), slog.LevelError, "warm: the WithOnResult function panicked",
				slog.String("url", r.URL), slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
		}
	}()
	w.cfg.onResult(r)
}

// count adds r to the counters.
func (w *Warmer) count(r Result) {
	switch {
	case r.ok():
		w.fetched.Add(1)
	case errors.Is(r.Err, ErrRefused):
		w.refused.Add(1)
		w.failed.Add(1)
	default:
		w.failed.Add(1)
	}
}

// log records the result of a background fetch.
func (w *Warmer) log(r Result) {
	attrs := []slog.Attr{slog.String("url", r.URL), slog.Int("status", r.Status), slog.Duration("duration", r.Duration)}
	var ref *refusal
	switch {
	case errors.As(r.Err, &ref): // a redirect to a host refused
		w.cfg.logger.LogAttrs(context.Background(), slog.LevelWarn, "warm: redirect refused",
			append(attrs, slog.String("host", ref.host), slog.Any("error", r.Err))...)
	case r.Err != nil:
		w.cfg.logger.LogAttrs(context.Background(), slog.LevelWarn, "warm: fetch failed", append(attrs, slog.Any("error", r.Err))...)
	case !r.ok():
		w.cfg.logger.LogAttrs(context.Background(), slog.LevelWarn, "warm: fetch answered with an error status", attrs...)
	default:
		w.cfg.logger.LogAttrs(context.Background(), slog.LevelDebug, "warm: fetched", append(attrs, slog.String("cache", r.Cache))...)
	}
}
