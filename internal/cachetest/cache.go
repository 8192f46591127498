package cachetest

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"
)

//go:embed testdata/varnish.vcl testdata/nginx.conf testdata/squid.conf
var configs embed.FS

const (
	// startTimeout bounds the wait for a cache to answer HTTP.
	startTimeout = 30 * time.Second
	// stopTimeout bounds the wait after SIGTERM before SIGKILL.
	stopTimeout = 15 * time.Second
	// startAttempts is how often Start tries a new free port when the
	// daemon exits at once (another process took the port meanwhile).
	startAttempts = 3
)

// errExited says that a daemon exited before it answered HTTP.
var errExited = errors.New("exited before it answered HTTP")

// Cache is a cache daemon running on loopback, a child of the test process.
// It is not safe for concurrent use: call its methods from the test's
// goroutine.
type Cache struct {
	// Kind says which cache this is.
	Kind Kind
	// URL is the cache's base URL, such as "http://127.0.0.1:41235": the
	// node to send purges to.
	URL string

	t      testing.TB
	origin *Origin
	port   int
	dir    string   // run directory, under t.TempDir
	proc   *process // nil when stopped
}

// Start starts a cache of the given kind in front of origin and stops it when
// the test ends. It calls [Require] first, so it skips the test when the
// caches are not enabled or not installed.
func Start(t testing.TB, kind Kind, origin *Origin) *Cache {
	t.Helper()
	Require(t, kind)
	c := &Cache{Kind: kind, t: t, origin: origin, dir: runDir(t, kind)}
	t.Cleanup(c.Stop)
	var err error
	for range startAttempts {
		c.port, err = freePort()
		if err != nil {
			t.Fatalf("cachetest: %v", err)
		}
		c.URL = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port))
		if err = c.start(); err == nil || !errors.Is(err, errExited) {
			break
		}
	}
	if err != nil {
		t.Fatalf("cachetest: start %s: %v", kind, err)
	}
	return c
}

// Stop stops the cache by its PID: SIGTERM, then SIGKILL to its process
// group if it has not exited within 15 seconds. It does nothing when the
// cache is not running.
func (c *Cache) Stop() {
	c.t.Helper()
	p := c.proc
	if p == nil {
		return
	}
	c.proc = nil
	if err := p.stop(stopTimeout); err != nil {
		c.t.Errorf("cachetest: stop %s: %v", c.Kind, err)
	}
}

// Restart starts the cache again on the same port, with an empty cache,
// stopping it first if it is running.
func (c *Cache) Restart() {
	c.t.Helper()
	c.Stop()
	if err := c.start(); err != nil {
		c.t.Fatalf("cachetest: restart %s: %v", c.Kind, err)
	}
}

// Running reports whether the cache's process is running.
func (c *Cache) Running() bool {
	if c.proc == nil {
		return false
	}
	select {
	case <-c.proc.done:
		return false
	default:
		return true
	}
}

// params fill the configuration templates.
type params struct {
	Port        int
	OriginHost  string
	OriginPort  int
	Dir         string
	Root        bool // running as root: the daemons drop to their own users
	NginxModule string
}

// start renders the configuration, starts the daemon and waits until it
// answers HTTP.
func (c *Cache) start() error {
	bin, err := lookPath(c.Kind.binary())
	if err != nil {
		return err
	}
	p := params{
		Port:        c.port,
		OriginHost:  c.origin.Host,
		OriginPort:  c.origin.Port,
		Dir:         c.dir,
		Root:        os.Geteuid() == 0,
		NginxModule: nginxModule,
	}
	args, err := c.configure(p)
	if err != nil {
		return err
	}
	if p.Root {
		owner := map[Kind]string{Nginx: "www-data", Squid: "proxy"}[c.Kind]
		if err := chownTree(c.dir, owner); err != nil {
			return err
		}
	}
	proc, err := c.spawn(bin, args)
	if err != nil {
		return err
	}
	c.proc = proc
	if err := c.waitReady(proc); err != nil {
		c.Stop()
		return fmt.Errorf("%w\n%s", err, c.logTail())
	}
	return nil
}

// configure prepares the run directory for the daemon, writes its
// configuration filled with p, and returns the daemon's arguments.
func (c *Cache) configure(p params) ([]string, error) {
	var args []string
	var err error
	switch c.Kind {
	case Varnish:
		// A stale working directory from an earlier run confuses varnishd.
		work := filepath.Join(c.dir, "work")
		if err := os.RemoveAll(work); err != nil {
			return nil, err
		}
		args = []string{"-F", "-n", work, "-a", "127.0.0.1:" + strconv.Itoa(c.port), "-T", "none",
			"-f", filepath.Join(c.dir, "default.vcl"), "-s", "malloc,256m"}
		if !p.Root {
			args = append(args, "-j", "none")
		}
		err = render("varnish.vcl", filepath.Join(c.dir, "default.vcl"), p)
	case Nginx:
		for _, d := range []string{"cache", "tmp"} {
			if err := os.RemoveAll(filepath.Join(c.dir, d)); err != nil {
				return nil, err
			}
			if err := os.Mkdir(filepath.Join(c.dir, d), 0o755); err != nil {
				return nil, err
			}
		}
		args = []string{"-p", c.dir + "/", "-e", filepath.Join(c.dir, "error.log"), "-c", filepath.Join(c.dir, "nginx.conf")}
		err = render("nginx.conf", filepath.Join(c.dir, "nginx.conf"), p)
	case Squid:
		_ = os.Remove(filepath.Join(c.dir, "squid.pid"))
		args = []string{"-N", "-f", filepath.Join(c.dir, "squid.conf")}
		err = render("squid.conf", filepath.Join(c.dir, "squid.conf"), p)
	default:
		return nil, fmt.Errorf("unknown cache kind %q", c.Kind)
	}
	if err != nil {
		return nil, err
	}
	return args, nil
}

// spawn starts bin with args in the run directory, its output appended to
// daemon.log, and returns the process, reaped by a goroutine of its own.
func (c *Cache) spawn(bin string, args []string) (*process, error) {
	logFile, err := os.OpenFile(filepath.Join(c.dir, "daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own copy
	cmd := exec.Command(bin, args...)
	cmd.Dir = c.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	proc := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		proc.err = cmd.Wait()
		close(proc.done)
	}()
	return proc, nil
}

// waitReady polls HealthPath until the cache answers with any status.
func (c *Cache) waitReady(p *process) error {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		res, err := client.Get(c.URL + HealthPath)
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s gave no HTTP answer on %s within %v: %v", c.Kind, c.URL, startTimeout, err)
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-p.done:
			t.Stop()
			return fmt.Errorf("%s %w on %s: %v", c.Kind, errExited, c.URL, p.err)
		case <-t.C:
		}
	}
}

// logTail returns the end of the daemon's logs, for error messages.
func (c *Cache) logTail() string {
	var b strings.Builder
	for _, name := range []string{"daemon.log", "error.log", "cache.log"} {
		data, err := os.ReadFile(filepath.Join(c.dir, name))
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		lines = lines[max(0, len(lines)-30):]
		fmt.Fprintf(&b, "--- %s:\n%s\n", name, strings.Join(lines, "\n"))
	}
	return b.String()
}

// render writes the configuration template name, filled with p, to path.
func render(name, path string, p params) error {
	tmpl, err := template.ParseFS(configs, "testdata/"+name)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, p); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// runDir returns a new run directory for kind under t.TempDir. As root, it
// opens the directory and its parent to others, since the daemons drop to
// their own users (vcache, www-data, proxy) and must reach it.
func runDir(t testing.TB, kind Kind) string {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, string(kind))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("cachetest: %v", err)
	}
	if os.Geteuid() == 0 {
		for _, d := range []string{base, filepath.Dir(base)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatalf("cachetest: %v", err)
			}
		}
	}
	return dir
}

// chownTree gives dir and everything in it to the user named owner; an empty
// owner or an unknown user leaves it as it is.
func chownTree(dir, owner string) error {
	if owner == "" {
		return nil
	}
	u, err := user.Lookup(owner)
	if err != nil {
		return nil // the daemon will say what it cannot write
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.WalkDir(dir, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("no free loopback port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
