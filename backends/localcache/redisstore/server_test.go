package redisstore_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// startRedis starts a throwaway redis-server on a free port with args, and
// stops it when t ends; it skips t if redis-server is not on PATH or
// GORMPURGE_TEST_REDIS_ADDR is unset (the Redis tests are off).
func startRedis(t *testing.T, args ...string) string {
	t.Helper()
	return startRedisWithConfig(t, "", args...)
}

// startRedisWithConfig is startRedis with a config file, conf (none if
// empty), which redis-server reads before args: a sentinel needs one it
// can write.
func startRedisWithConfig(t *testing.T, conf string, args ...string) string {
	t.Helper()
	redisAddr(t)
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not on PATH: install Redis to run the tests that start their own server")
	}
	port := freePort(t)
	dir := t.TempDir()
	var argv []string
	if conf != "" {
		argv = append(argv, conf)
	}
	argv = append(argv, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	cmd := exec.Command(bin, append(argv, args...)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		return rdb.Ping(ctx).Err() == nil
	}, 10*time.Second, 20*time.Millisecond, "the throwaway redis-server on %s starts", addr)
	return addr
}

// freePort returns a TCP port free on 127.0.0.1 a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
