package warm

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// pending is a slot of Enqueue's queue: a URL and when it falls due. A slot
// is live while waiting maps its URL to its seq; it goes stale when the URL
// is enqueued again, which queues a new slot at the back.
type pending struct {
	t   target
	due time.Time
	seq uint64
}

// Enqueue schedules each URL to be fetched once in the background, no
// sooner than [WithDelay] after this call, at most [WithConcurrency] at a
// time together with Fetch. Use it right after a purge, so that the first
// visitor finds the page cached. It never blocks, and is best effort.
//
// A URL still waiting from an earlier call moves to the back of the queue
// and is fetched once, no sooner than WithDelay after this call: it was
// purged again, and the new purge needs the delay to propagate too. (A URL
// purged again and again, more often than the delay, waits until the
// purges pause.) It takes one place in the queue, however often it is
// enqueued. A new URL that arrives when [WithQueueSize] URLs are waiting,
// or after Close began, is dropped and counted in [Stats.Dropped]; each call
// logs its drops once, with their count.
// An invalid URL (see [Warmer.Fetch]) is logged, counted in [Stats.Failed]
// and reported to [WithOnResult] before Enqueue returns; so is a refused
// one, logged with its host and counted in [Stats.Refused] too. Each fetch's
// Result goes to WithOnResult and to the logger: Warn when it failed, Debug
// when it did not.
func (w *Warmer) Enqueue(urls ...string) {
	due := w.cfg.clock.Now().Add(w.cfg.delay)
	var (
		dropped   int
		why       string
		firstDrop string
	)
	for _, raw := range urls {
		tg, err := w.resolve(raw)
		if err != nil {
			var ref *refusal
			if errors.As(err, &ref) {
				w.cfg.logger.LogAttrs(context.Background(), slog.LevelWarn, "warm: URL refused, not enqueued",
					slog.String("url", ref.url), slog.String("host", ref.host), slog.Any("error", err))
			} else {
				w.cfg.logger.LogAttrs(context.Background(), slog.LevelWarn, "warm: invalid URL not enqueued",
					slog.String("url", redactURL(raw)), slog.Any("error", err))
			}
			r := Result{URL: redactURL(raw), Err: err}
			w.count(r)
			w.report(r)
			continue
		}
		w.mu.Lock()
		prev := noSlot
		if _, ok := w.waiting[raw]; ok {
			prev = staleSlot
		}
		drop := ""
		switch {
		case w.closed:
			drop = "the warmer is closed"
		case prev == noSlot && len(w.waiting) >= w.cfg.queueSize:
			drop = "the queue is full"
		default:
			w.push(tg, due, prev)
		}
		w.mu.Unlock()
		if drop != "" {
			w.dropped.Add(1)
			if dropped == 0 {
				why, firstDrop = drop, raw // resolved: no password
			}
			dropped++
		}
	}
	if dropped > 0 {
		// One record per call, not per URL: a large purge must not flood
		// the log.
		w.cfg.logger.LogAttrs(context.Background(), slog.LevelWarn, "warm: URLs dropped: "+why,
			slog.Int("count", dropped), slog.String("first", firstDrop))
	}
	select {
	case w.wake <- struct{}{}:
	default: // run will look at the queue anyway
	}
}

// earlier says whether a URL being queued already waits in a slot of the
// queue.
type earlier int

const (
	noSlot    earlier = iota // the URL is new to the queue
	staleSlot                // the URL was waiting: its earlier slot goes stale
)

// push queues tg, due at due. If its URL was waiting (staleSlot), the URL's
// earlier slot goes stale; the queue is compacted once the stale slots
// outnumber the live ones, so that it never holds more than twice
// [WithQueueSize] slots and a few. w.mu must be held.
func (w *Warmer) push(tg target, due time.Time, prev earlier) {
	w.seq++
	w.queue = append(w.queue, pending{t: tg, due: due, seq: w.seq})
	w.waiting[tg.raw] = w.seq
	if prev == noSlot {
		return
	}
	w.stale++
	if w.stale > len(w.waiting) {
		q := w.queue[:0]
		for _, p := range w.queue {
			if w.live(p) {
				q = append(q, p)
			}
		}
		clear(w.queue[len(q):])
		w.queue, w.stale = q, 0
	}
}

// live reports whether p is the slot its URL waits in. w.mu must be held.
func (w *Warmer) live(p pending) bool {
	return w.waiting[p.t.raw] == p.seq
}

// head drops the stale slots at the front of the queue and returns the
// first live one, if any. w.mu must be held.
func (w *Warmer) head() (pending, bool) {
	for len(w.queue) > 0 {
		p := w.queue[0]
		if w.live(p) {
			return p, true
		}
		w.queue[0] = pending{}
		w.queue = w.queue[1:]
		w.stale--
	}
	return pending{}, false
}

// run starts the background fetches as they fall due, until Close; then it
// waits for them.
func (w *Warmer) run() {
	defer func() { _ = w.fetches.Wait(context.Background()) }()
	for {
		w.mu.Lock()
		p, ok := w.head()
		w.mu.Unlock()
		if !ok {
			select {
			case <-w.wake:
				continue
			case <-w.lc.Stopping():
				return
			}
		}
		if wait := p.due.Sub(w.cfg.clock.Now()); wait > 0 {
			c, stopTimer := w.cfg.clock.Timer(wait)
			select {
			case <-c:
				continue // look again: p may have gone stale, or Close emptied the queue
			case <-w.lc.Stopping():
				stopTimer()
				return
			}
		}
		select {
		case w.sem <- struct{}{}:
		case <-w.lc.Stopping():
			return
		}
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			<-w.sem
			return
		}
		if q, ok := w.head(); !ok || q.seq != p.seq {
			w.mu.Unlock()
			<-w.sem
			continue // p was enqueued again meanwhile, so it is due later
		}
		w.queue[0] = pending{}
		w.queue = w.queue[1:]
		delete(w.waiting, p.t.raw)
		w.fetches.Add() // under mu, before Close can set closed: drain waits for it
		w.mu.Unlock()
		go func() {
			r := w.fetch(w.lc.Context(), p.t)
			<-w.sem
			w.count(r)
			w.log(r)
			// Close waits for the fetch, not for onResult, so that
			// onResult may call Close without waiting for itself.
			w.fetches.Done()
			w.report(r)
		}()
	}
}
