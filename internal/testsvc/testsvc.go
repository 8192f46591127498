// Package testsvc locates the message servers the tests run against, Redis
// and NATS, from the environment variables .ci/run sets, and skips a test,
// saying which variable to set, when one is unset; and it names what a test
// creates on a shared server (key prefixes, channels, subjects) so that no
// two tests meet. The databases are internal/testdb's.
package testsvc

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
)

// Environment variables naming the servers.
const (
	RedisEnv = "GORMPURGE_TEST_REDIS_ADDR" // host:port, such as 127.0.0.1:6379
	NATSEnv  = "GORMPURGE_TEST_NATS_URL"   // a URL, such as nats://127.0.0.1:4222
)

// RedisAddr returns the host:port of the Redis to test against, or skips tb.
func RedisAddr(tb testing.TB) string {
	tb.Helper()
	return Addr(tb, RedisEnv)
}

// NATSURL returns the URL of the NATS server to test against, or skips tb.
func NATSURL(tb testing.TB) string {
	tb.Helper()
	return Addr(tb, NATSEnv)
}

// Addr returns the value of env, RedisEnv or NATSEnv, or skips tb saying
// what to set it to: for tests that run alike against either server.
func Addr(tb testing.TB, env string) string {
	tb.Helper()
	v := os.Getenv(env)
	if v == "" {
		tb.Skipf("%s is not set: set it to %s to run this test against a real server", env, examples[env])
	}
	return v
}

// examples says what each variable holds.
var examples = map[string]string{
	RedisEnv: "a Redis address, such as 127.0.0.1:6379",
	NATSEnv:  "a NATS server's URL, such as nats://127.0.0.1:4222",
}

// NATSAddr returns the host:port of NATSURL, for a TCP proxy, or skips tb.
func NATSAddr(tb testing.TB) string {
	tb.Helper()
	raw := NATSURL(tb)
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		tb.Fatalf("%s=%q is not a URL such as nats://127.0.0.1:4222", NATSEnv, raw)
	}
	return u.Host
}

// UniqueName returns prefix followed by random hex: a key prefix, channel or
// subject token no other test uses.
func UniqueName(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
