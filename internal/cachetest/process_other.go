//go:build !linux

package cachetest

import (
	"errors"
	"os/exec"
	"syscall"
	"time"
)

// process is a daemon started by Start. cachetest runs daemons on Linux
// only; Require skips elsewhere, so these are never reached.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func sysProcAttr() *syscall.SysProcAttr { return nil }

func (p *process) stop(time.Duration) error {
	return errors.New("cachetest: daemons are supported on Linux only")
}
