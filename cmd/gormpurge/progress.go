package main

import (
	"fmt"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progressThreshold is the number of objects above which a progress bar is
// drawn: smaller runs end before a bar would tell anything.
const progressThreshold = 50

// progress is a progress bar on stderr, or nothing. Its methods are called
// from one goroutine at a time.
type progress struct {
	bar *progressbar.ProgressBar // nil: no bar
}

// progressMode says whether a command may draw a progress bar.
type progressMode int

const (
	progressOnTerminal progressMode = iota // when stderr is a terminal
	progressOff                            // never (--no-progress)
)

// progressModeOf returns the mode for the --no-progress flag's value.
func progressModeOf(noProgress bool) progressMode {
	if noProgress {
		return progressOff
	}
	return progressOnTerminal
}

// newProgress returns a bar counting to total with the given description,
// drawn on stderr only when mode allows it, stderr is a terminal, and
// total is above [progressThreshold].
func (a *app) newProgress(total int, description string, mode progressMode) *progress {
	if mode == progressOff || total <= progressThreshold || !a.terminal(a.stderr) {
		return &progress{}
	}
	stderr := a.stderr
	return &progress{bar: progressbar.NewOptions(total,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription(description),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(stderr) }),
	)}
}

// add advances the bar by n.
func (p *progress) add(n int) {
	if p.bar != nil {
		_ = p.bar.Add(n)
	}
}

// finish ends the bar, also when it did not reach its total (a timeout, an
// interruption), so that what follows starts on a line of its own.
func (p *progress) finish() {
	if p.bar == nil {
		return
	}
	if !p.bar.IsFinished() {
		_ = p.bar.Exit() // keeps the bar as it is, and ends its line
	}
}
