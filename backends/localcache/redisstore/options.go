package redisstore

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// An Option configures a [Store]; pass it to [New], which checks every
// option and reports each invalid one.
type Option func(*config)

type config struct {
	prefix        string
	maxEntryBytes int
	retryAfter    time.Duration
	log           *slog.Logger
	errs          []error
}

// WithPrefix sets the prefix of the store's keys, so that several sites
// (or several stores of one site) share one Redis: every key is
// "{prefix}:...", whose braces make prefix the Redis Cluster hash tag, so
// that the store's scripts find all its keys on one node. The prefix must
// not be empty nor contain '{' or '}'. Defaults to [DefaultPrefix].
func WithPrefix(p string) Option {
	return func(c *config) {
		if p == "" || strings.ContainsAny(p, "{}") {
			c.errs = append(c.errs, fmt.Errorf("WithPrefix(%q): the prefix must be non-empty and without braces, such as %q", p, "mysite"))
			return
		}
		c.prefix = p
	}
}

// WithMaxEntryBytes sets the largest entry the store keeps, in bytes once
// encoded (the body, headers and indexes, plus a few bytes); Set refuses a
// larger one, returning false, and the page is rendered every time. n must
// be positive and at most 512 MiB, Redis's largest value. Defaults to
// [DefaultMaxEntryBytes].
func WithMaxEntryBytes(n int) Option {
	return func(c *config) {
		if n < 1 || n > maxBulkBytes {
			c.errs = append(c.errs, fmt.Errorf("WithMaxEntryBytes(%d): the limit must be between 1 and 512<<20 bytes, such as 4<<20", n))
			return
		}
		c.maxEntryBytes = n
	}
}

// WithRetryAfterError sets how long, after Redis could not be reached,
// Get, Generation and Set fail fast with [ErrUnavailable] instead of
// asking Redis: during an outage, requests are rendered without waiting
// for a dial or read timeout each. Once d has passed, one request asks
// Redis again; if it answers, the store is back for every request. d = 0
// asks Redis every time. Replies Redis sends (such as an out-of-memory
// error) do not count: only errors reaching it. Defaults to
// [DefaultRetryAfterError]; it must not be negative.
func WithRetryAfterError(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.errs = append(c.errs, fmt.Errorf("WithRetryAfterError(%v): the time must not be negative: use 0 to ask Redis every time, or a time such as time.Second", d))
			return
		}
		c.retryAfter = d
	}
}

// WithLogger sets the logger the store reports to: Redis becoming
// unreachable and reachable again, commands Redis refuses, entries it
// cannot read (each at most once every 10 seconds; [Store.Stats] counts
// them all), and New's checks. Defaults to [slog.Default]; nil is an error.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.errs = append(c.errs, errors.New("WithLogger(nil): pass a logger, or slog.New(slog.DiscardHandler) to silence the store"))
			return
		}
		c.log = l
	}
}
