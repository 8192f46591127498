package cachetest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// process is a daemon started by Start, with the goroutine that waits for
// it.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd.Wait has returned
	err  error         // cmd.Wait's error; read after done is closed
}

// sysProcAttr puts the daemon in a process group of its own, so that its
// children (nginx workers, the varnish child) can be found and stopped
// with it, and asks Linux to send it SIGTERM if the test process dies
// without cleaning up. (Linux forgets that request when a daemon changes
// its user, as varnishd and squid do: the cleanup is what stops them.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// stop sends SIGTERM to the daemon and waits for it and every process left
// in its group to exit; after timeout it sends SIGKILL to the group.
func (p *process) stop(timeout time.Duration) error {
	pgid := p.cmd.Process.Pid // the daemon leads its own group
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// Children exit once their parent has gone; give them a moment.
	deadline := time.Now().Add(5 * time.Second)
	for groupAlive(pgid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			if groupAlive(pgid) {
				return fmt.Errorf("processes of group %d still running after SIGKILL", pgid)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// groupAlive reports whether a live (not zombie) process is in process group
// pgid. It reads /proc: kill(-pgid, 0) also counts zombies, which a
// container's init may leave unreaped.
func groupAlive(pgid int) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return syscall.Kill(-pgid, 0) == nil
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		state, group, err := parseStat(data)
		if err == nil && group == pgid && state != 'Z' && state != 'X' {
			return true
		}
	}
	return false
}

// parseStat returns the state and process group from the contents of
// /proc/PID/stat: "pid (comm) state ppid pgrp ...", where comm may hold
// spaces and parentheses.
func parseStat(data []byte) (state byte, pgrp int, err error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 >= len(data) {
		return 0, 0, errors.New("malformed stat")
	}
	fields := bytes.Fields(data[i+2:])
	if len(fields) < 3 || len(fields[0]) != 1 {
		return 0, 0, errors.New("malformed stat")
	}
	pgrp, err = strconv.Atoi(string(fields[2]))
	return fields[0][0], pgrp, err
}
