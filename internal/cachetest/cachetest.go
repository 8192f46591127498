// Package cachetest runs real HTTP caches (Varnish, nginx, Squid) on
// loopback for the project's integration tests: a small origin in the test
// process, and each cache as a child process on a free 127.0.0.1 port with
// its own run directory under t.TempDir, stopped by its PID when the test
// ends.
//
// Tests that need a cache call [Require] first. It skips the test unless
// GORMPURGE_TEST_CACHES=1, and skips it with the Debian packages to install
// when a binary is missing, so that a plain `go test ./...` passes anywhere.
//
// The configurations are in testdata/ and accept purges from 127.0.0.1 and
// ::1 only:
//
//   - Varnish (testdata/varnish.vcl): PURGE (200 "Purged", hit or miss;
//     with X-Purge-Strict: 1, 404 on a miss), xkey-purge and xkey-softpurge
//     headers, BAN with X-Ban-Tags or X-Ban-Url; 405 for other clients.
//     Hits show in X-Cache.
//   - nginx with ngx_cache_purge (testdata/nginx.conf): PURGE answers 200 on
//     a hit, 404 on a miss, 403 for other clients. Hits show in
//     X-Cache-Status.
//   - Squid as an accelerator (testdata/squid.conf): PURGE answers 200 on a
//     hit, 404 on a miss, 403 for other clients. Hits show in X-Cache.
//
// Every cache keys its objects by Host and path, so a purge must carry the
// Host header of the GETs that filled the cache.
package cachetest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// EnvVar is the environment variable that enables the tests that need real
// caches: set it to 1.
const EnvVar = "GORMPURGE_TEST_CACHES"

// Packages are the Debian packages that provide the caches.
const Packages = "varnish varnish-modules nginx libnginx-mod-http-cache-purge squid"

// Kind names a cache.
type Kind string

// The caches cachetest can run.
const (
	Varnish Kind = "varnish"
	Nginx   Kind = "nginx"
	Squid   Kind = "squid"
)

// Kinds lists every cache, for tests that run against each.
var Kinds = []Kind{Varnish, Nginx, Squid}

// nginxModule is where Debian's libnginx-mod-http-cache-purge puts the
// module.
const nginxModule = "/usr/lib/nginx/modules/ngx_http_cache_purge_module.so"

// binary returns the program that runs kind.
func (k Kind) binary() string {
	switch k {
	case Varnish:
		return "varnishd"
	default:
		return string(k)
	}
}

// HitHeader returns the response header in which kind says whether it
// answered from its cache.
func (k Kind) HitHeader() string {
	if k == Nginx {
		return "X-Cache-Status"
	}
	return "X-Cache"
}

// Enabled reports whether EnvVar asks for the tests that need real caches.
func Enabled() bool { return os.Getenv(EnvVar) == "1" }

// Require skips t unless EnvVar is set to 1 and the programs of every kind
// are installed. A missing program is named with the packages to install.
func Require(t testing.TB, kinds ...Kind) {
	t.Helper()
	if !Enabled() {
		t.Skipf("%s is not set to 1: set it to run against real Varnish, nginx and Squid on loopback (Debian packages: %s)", EnvVar, Packages)
	}
	if runtime.GOOS != "linux" {
		t.Skipf("%s=1, but cachetest runs the caches on Linux only", EnvVar)
	}
	for _, k := range kinds {
		if _, err := lookPath(k.binary()); err != nil {
			t.Skipf("%s=1 but %s is not installed: apt-get install %s", EnvVar, k.binary(), Packages)
		}
		if k == Nginx {
			if _, err := os.Stat(nginxModule); err != nil {
				t.Skipf("%s=1 but the nginx purge module %s is missing: apt-get install libnginx-mod-http-cache-purge", EnvVar, nginxModule)
			}
		}
	}
}

// lookPath finds a program in PATH, or in /usr/sbin and /sbin, which a
// user's PATH often leaves out.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("cachetest: %s not found in PATH, /usr/sbin or /sbin", name)
}
