package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// Exit statuses.
const (
	exitOK          = 0   // everything was done
	exitFailed      = 1   // something failed: an object not purged, a page not warmed, a database error
	exitUsage       = 2   // the command line is wrong; nothing was sent
	exitInterrupted = 130 // Ctrl-C or SIGTERM
)

// env is what a run of the command sees of the world: its streams, its
// environment, and hooks that tests replace.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// getenv reads an environment variable; os.Getenv when nil.
	getenv func(string) string
	// isTerminal reports whether w is a terminal, to decide whether to
	// draw a progress bar; a check of the file descriptor when nil.
	isTerminal func(w io.Writer) bool
	// httpClient, when not nil, is the client the Akamai backend uses
	// (tests point it at a fake API with its own certificate).
	httpClient *http.Client
}

func (e *env) variable(name string) string {
	if e.getenv != nil {
		return e.getenv(name)
	}
	return os.Getenv(name)
}

func (e *env) terminal(w io.Writer) bool {
	if e.isTerminal != nil {
		return e.isTerminal(w)
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// run runs the command line args and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runEnv(ctx, args, &env{stdin: stdin, stdout: stdout, stderr: stderr})
}

// runEnv runs the command line args in e and returns the exit status. It
// prints errors to e.stderr. A panic is a failure (exit status 1), told
// with its message: something may have been sent.
func runEnv(ctx context.Context, args []string, e *env) (code int) {
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(e.stderr, "gormpurge: internal error: %v\n%s", p, debug.Stack())
			code = exitFailed
		}
	}()
	root := newRootCmd(e)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var xe *exitError
	if !errors.As(err, &xe) {
		// Cobra's own errors (an unknown command, a missing argument)
		// come before any work: the command line is wrong.
		xe = &exitError{code: exitUsage, err: err}
	}
	code = xe.code
	if xe.err != nil {
		fmt.Fprintf(e.stderr, "gormpurge: %v\n", xe.err)
	}
	if ctx.Err() != nil {
		code = exitInterrupted
		fmt.Fprintln(e.stderr, "gormpurge: interrupted")
	}
	if code == exitUsage && cmd != nil {
		fmt.Fprintf(e.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// exitError carries the exit status of a run that did not succeed.
type exitError struct {
	code int
	err  error // printed on stderr; nil to print nothing
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErrorf returns an error that exits with [exitUsage].
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// failedf returns an error that exits with [exitFailed].
func failedf(format string, args ...any) error {
	return &exitError{code: exitFailed, err: fmt.Errorf(format, args...)}
}

// asFailure turns any error from a command's work into one that exits
// with [exitFailed], keeping those that already say how to exit.
func asFailure(err error) error {
	if err == nil {
		return nil
	}
	var xe *exitError
	if errors.As(err, &xe) {
		return err
	}
	return &exitError{code: exitFailed, err: err}
}

// app holds what every command shares.
type app struct {
	*env
	verbose bool
	logger  *slog.Logger
}

// newRootCmd returns the gormpurge command with its subcommands, reading
// and writing e's streams.
func newRootCmd(e *env) *cobra.Command {
	a := &app{env: e}
	root := &cobra.Command{
		Use:   "gormpurge",
		Short: "Purge and warm caches, and look after the durable purge outbox",
		Long: `gormpurge purges pages from caches (the CDNs Akamai, Cloudflare, Fastly and
CloudFront, and HTTP caches that accept PURGE such as Varnish, nginx and Squid),
warms them again, and looks after the durable outbox of the gormpurge Go
library. 'gormpurge cache' purges or clears the application's own page cache
(localcache): a shared Redis store, or every instance's memory store over Redis
pub/sub or NATS.

Purges go through the library's dispatcher: batched to each backend's limits,
retried with backoff, and paced to the CDN's rate limits, so a list of a hundred
thousand URLs is one command.

Exit status:
  0    everything was done
  1    something failed: an object not purged, a page not warmed, a database error
  2    the command line is wrong (no command, an unknown flag, no backend, an
       invalid input); nothing was sent
  130  interrupted (Ctrl-C); what was done so far is still summarised`,
		Version:       version(),
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			a.logger = newLogger(a.stderr, a.verbosity())
			return nil
		},
		RunE: noCommand,
	}
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetVersionTemplate("gormpurge {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err}
	})
	root.SetUsageFunc(usage)
	root.PersistentFlags().BoolVarP(&a.verbose, "verbose", "v", false, "log each batch, its outcome and each retry on stderr (log/slog at Debug; HTTP caches log per batch, not per request); otherwise only retries, rate limits and errors the summary does not give")
	root.CompletionOptions.HiddenDefaultCmd = true

	root.AddCommand(newPurgeCmd(a), newWarmCmd(a), newOutboxCmd(a), newCacheCmd(a))
	return root
}

// verbosity says how much a run logs.
type verbosity int

const (
	quiet   verbosity = iota // retries, rate limits and errors the summary does not give
	verbose                  // --verbose: each batch, its outcome and each retry too
)

// verbosity is the verbosity the flags ask for.
func (a *app) verbosity() verbosity {
	if a.verbose {
		return verbose
	}
	return quiet
}

// newLogger returns the logger of a run: log/slog text on w, at Debug when
// v is verbose; otherwise at Warn, without the records that the summary repeats
// (each object not purged, each batch that failed), so that a failure
// about thousands of objects is told once, in the summary.
func newLogger(w io.Writer, v verbosity) *slog.Logger {
	if v == verbose {
		return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(summarised{slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn})})
}

// summarisedMessages are the log messages that the summary repeats.
var summarisedMessages = map[string]bool{
	"akamai: object not purged": true,
	"dispatcher: purge failed":  true,
}

// summarised drops the records that the summary repeats.
type summarised struct{ slog.Handler }

func (h summarised) Handle(ctx context.Context, r slog.Record) error {
	if summarisedMessages[r.Message] {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h summarised) WithAttrs(attrs []slog.Attr) slog.Handler {
	return summarised{h.Handler.WithAttrs(attrs)}
}

func (h summarised) WithGroup(name string) slog.Handler {
	return summarised{h.Handler.WithGroup(name)}
}

// runE adapts a command's work to cobra: errors that do not say how to exit
// exit with [exitFailed].
func runE(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		return asFailure(fn(cmd, args))
	}
}

// version returns the module's version, and the VCS revision when the
// binary was built from a checkout.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown version)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, when string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if modified {
			rev += "+dirty"
		}
		if when != "" {
			rev += " " + when
		}
		v += " (" + rev + ")"
	}
	return v + " " + bi.GoVersion
}

// Flag groups: each flag of a command carries the title of the group it is
// listed under in --help; flags without one are listed last.
const groupAnnotation = "gormpurge_group"

// Titles of the flags that belong to no group: the command's own, and
// those it inherits.
const (
	otherFlags  = "Other flags"
	globalFlags = "Global flags"
)

// group puts the named flags of fs in the group titled title.
func group(fs *pflag.FlagSet, title string, names ...string) {
	for _, n := range names {
		if err := fs.SetAnnotation(n, groupAnnotation, []string{title}); err != nil {
			panic(err) // a flag name misspelt here
		}
	}
}

// usage writes a command's usage as cobra does, with its flags in groups.
func usage(c *cobra.Command) error { return writeUsage(c.OutOrStdout(), c) }

// writeUsage writes c's usage on w, with its flags in groups.
func writeUsage(w io.Writer, c *cobra.Command) error {
	var b strings.Builder
	b.WriteString("Usage:")
	if c.Runnable() && !c.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "\n  %s", c.UseLine())
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "\n  %s [command]", c.CommandPath())
	}
	if c.HasExample() {
		fmt.Fprintf(&b, "\n\nExamples:\n%s", c.Example)
	}
	if c.HasAvailableSubCommands() {
		b.WriteString("\n\nCommands:")
		pad := 0
		for _, s := range c.Commands() {
			if s.IsAvailableCommand() {
				pad = max(pad, len(s.Name()))
			}
		}
		for _, s := range c.Commands() {
			if s.IsAvailableCommand() {
				fmt.Fprintf(&b, "\n  %-*s  %s", pad, s.Name(), s.Short)
			}
		}
	}
	var titles []string
	sets := map[string]*pflag.FlagSet{}
	add := func(f *pflag.Flag, fallback string) {
		if f.Hidden {
			return
		}
		title := fallback
		if g := f.Annotations[groupAnnotation]; len(g) > 0 {
			title = g[0]
		}
		fs, ok := sets[title]
		if !ok {
			fs = pflag.NewFlagSet(title, pflag.ContinueOnError)
			fs.SortFlags = false
			sets[title] = fs
			titles = append(titles, title)
		}
		fs.AddFlag(f)
	}
	c.LocalFlags().VisitAll(func(f *pflag.Flag) { add(f, otherFlags) })
	c.InheritedFlags().VisitAll(func(f *pflag.Flag) { add(f, globalFlags) })
	// Help and version, then the global flags, last.
	titles = slices.DeleteFunc(titles, func(t string) bool { return t == otherFlags || t == globalFlags })
	for _, t := range []string{otherFlags, globalFlags} {
		if sets[t] != nil {
			titles = append(titles, t)
		}
	}
	for _, t := range titles {
		fmt.Fprintf(&b, "\n\n%s:\n%s", t, strings.TrimRight(sets[t].FlagUsages(), " \n"))
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "\n\nRun '%s <command> --help' for more about a command.", c.CommandPath())
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// noCommand is the work of a command that only groups others, run without
// one of them: a usage error, with the usage on stderr, so that a script
// that forgot the command does not pass for done.
func noCommand(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	if err := writeUsage(cmd.ErrOrStderr(), cmd); err != nil {
		return err
	}
	return usageErrorf("no command given: choose one of the commands above")
}
