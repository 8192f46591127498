package outbox_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/internal/testdb"
	"github.com/gormpurge/gormpurge/outbox"
)

// The child process of TestCrashSafety is this test binary started again
// with these variables set.
const (
	crashChildEnv = "GORMPURGE_CRASH_CHILD" // the child's number
	crashKindEnv  = "GORMPURGE_CRASH_KIND"
	crashDSNEnv   = "GORMPURGE_CRASH_DSN"
	crashFileEnv  = "GORMPURGE_CRASH_FILE" // where the child's backend appends what it purged
)

// crashKills is how many times the child is killed per database.
const crashKills = 50

// crashLease is the lease of the child's relays: the parent's relay waits
// for it to run out before it can deliver what the last child held.
const crashLease = time.Second

// TestCrashSafety kills, with SIGKILL at random moments, a process that
// commits transactions in a loop and relays the outbox to a backend that
// appends to a file; then a fresh relay delivers what is left. Every URL of
// every committed transaction (the database says which) must have reached a
// backend at least once, and no URL of a rolled-back one ever.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills 50 processes per database")
	}
	forEachKind(t, func(t *testing.T, kind string) {
		dsn := testdb.DSN(t, kind)
		db := testdb.OpenDSN(t, kind, dsn, nil)
		require.NoError(t, db.AutoMigrate(&Page{}))
		ob, err := outbox.New(db, fast(outbox.WithLease(crashLease))...)
		require.NoError(t, err)
		file := filepath.Join(t.TempDir(), "purged.txt")

		seed := rand.Uint64()
		rng := rand.New(rand.NewPCG(seed, 0))
		t.Logf("seed %d", seed)
		for k := range crashKills {
			runAndKill(t, k, kind, dsn, file, time.Duration(5+rng.IntN(150))*time.Millisecond)
		}

		// A relay restarts after the last crash.
		b := newBackend("after")
		startRelay(t, ob, b)
		st := settle(t, ob)
		assert.Zero(t, st.Dead)

		delivered := map[string]int{}
		for u, n := range b.purged() {
			delivered[u] += n
		}
		inFile := readLines(t, file)
		for _, u := range inFile {
			delivered[u]++
		}
		var slugs []string
		require.NoError(t, db.Model(&Page{}).Pluck("slug", &slugs).Error)
		require.NotEmpty(t, slugs)
		missing, twice := 0, 0
		for _, slug := range slugs {
			require.False(t, strings.HasPrefix(slug, "rb-"), "a rolled-back row was committed: %s", slug)
			switch n := delivered["/pages/"+slug]; {
			case n == 0:
				missing++
				t.Errorf("committed page %s was never purged; %s", slug, whyMissing(t, db, inFile, "/pages/"+slug))
			case n > 1:
				twice++
			}
		}
		for u := range delivered {
			assert.NotContains(t, u, "/pages/rb-", "a rolled-back page was purged")
		}
		t.Logf("%s: %d kills, %d committed transactions, %d purged by the children and %d by the last relay, %d purged more than once, %d missing",
			kind, crashKills, len(slugs), len(inFile), len(b.purged()), twice, missing)
	})
}

// runAndKill starts child k, waits until it is committing, lets it run for
// d and kills it with SIGKILL.
func runAndKill(t *testing.T, k int, kind, dsn, file string, d time.Duration) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		crashChildEnv+"="+strconv.Itoa(k), crashKindEnv+"="+kind, crashDSNEnv+"="+dsn, crashFileEnv+"="+file)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		require.Equal(t, "committing\n", line, "child %d: %s", k, stderr.String())
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child %d did not start: %s", k, stderr.String())
	}
	time.Sleep(d)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	err = cmd.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "child %d should have been killed: %s", k, stderr.String())
	require.Equal(t, syscall.SIGKILL, exit.Sys().(syscall.WaitStatus).Signal(), "child %d died on its own: %s", k, stderr.String())
}

// whyMissing says what is known of a committed page no one purged: the
// outbox rows that name it, and any line of the children's file that holds
// it run together with another.
func whyMissing(t *testing.T, db *gorm.DB, inFile []string, u string) string {
	t.Helper()
	var rows []struct {
		ID       int64
		State    string
		Attempts int
	}
	err := db.Raw("SELECT id, state, attempts FROM gormpurge_outbox WHERE urls LIKE ?", "%"+u+"\"%").Scan(&rows).Error
	var glued []string
	for _, l := range inFile {
		if l != u && strings.Contains(l, u) {
			glued = append(glued, l)
		}
	}
	return fmt.Sprintf("outbox rows naming it: %+v (query error: %v); file lines holding it with other text: %q", rows, err, glued)
}

func readLines(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	var out []string
	for l := range strings.SplitSeq(string(data), "\n") {
		if u, ok := strings.CutSuffix(l, strings.TrimSuffix(lineEnd, "\n")); ok {
			out = append(out, u)
		} // else: empty, or a line cut by a kill
	}
	return out
}

// crashChild is the child process: it relays the outbox to a backend that
// appends to a file, and commits and rolls back transactions until killed.
func crashChild() {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(3)
	}
	k := os.Getenv(crashChildEnv)
	kind, dsn := os.Getenv(crashKindEnv), os.Getenv(crashDSNEnv)
	db, err := gorm.Open(testdb.Dialector(kind, dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		fail(err)
	}
	ob, err := outbox.New(db, fast(outbox.WithLease(crashLease))...)
	if err != nil {
		fail(err)
	}
	f, err := os.OpenFile(os.Getenv(crashFileEnv), os.O_APPEND|os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		fail(err)
	}
	// The last child may have been killed in the middle of a line: start
	// on a new one, or this child's first URL would run into it.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			if _, err := f.WriteString("\n"); err != nil {
				fail(err)
			}
		}
	}
	d, err := dispatcher.New([]backends.Backend{&fileBackend{f: f}}, dispatcher.WithLogger(quiet), dispatcher.WithLinger(time.Millisecond))
	if err != nil {
		fail(err)
	}
	if _, err := ob.Relay(d); err != nil { // runs until the kill
		fail(err)
	}
	p := gormpurge.New(ob, gormpurge.WithLogger(quiet))
	if err := p.Register(&Page{}); err != nil {
		fail(err)
	}
	if err := db.Use(p); err != nil {
		fail(err)
	}
	fmt.Println("committing")
	undo := errors.New("undo")
	for i := 0; ; i++ {
		slug := fmt.Sprintf("c%s-%d", k, i)
		if i%3 == 2 {
			slug = "rb-" + slug
		}
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Create(&Page{Slug: slug}).Error; err != nil {
				return err
			}
			if strings.HasPrefix(slug, "rb-") {
				return undo
			}
			return nil
		})
		if err != nil && !errors.Is(err, undo) {
			fail(err)
		}
	}
}

// lineEnd ends each line the children write. A write the kill cuts short
// (Linux stops a large write when a fatal signal arrives) leaves a line
// without it, which readLines ignores; the next child starts on a new line.
const lineEnd = "\t.\n"

// fileBackend appends each purged URL as a line, in one write per batch, so
// that what it purged survives the kill.
type fileBackend struct {
	mu sync.Mutex
	f  *os.File
}

func (b *fileBackend) Name() string            { return "file" }
func (b *fileBackend) Limits() backends.Limits { return backends.Limits{} }

func (b *fileBackend) Purge(_ context.Context, r backends.Request) (backends.Result, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var sb strings.Builder
	for _, u := range r.URLs {
		sb.WriteString(u)
		sb.WriteString(lineEnd)
	}
	if _, err := b.f.WriteString(sb.String()); err != nil {
		return backends.Result{}, err
	}
	return backends.Result{Objects: r.Len()}, nil
}
