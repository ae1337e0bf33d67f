// Command b2cfs is a FUSE file system backed by Backblaze B2, plus the
// tools that go with it. Run "b2cfs help" for the list of commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"syscall"
)

// commands is the command table. Each command registers itself from its own
// file with an init function, e.g.
//
//	func init() { commands["mount"] = command{summary: "...", run: runMount} }
var commands = map[string]command{}

// command is one b2cfs subcommand. run receives the arguments after the
// command name and a context that is cancelled on SIGINT or SIGTERM.
type command = struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: b2cfs <command> [arguments]\n\ncommands:\n")
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-15s %s\n", name, commands[name].summary)
	}
	fmt.Fprintf(w, "\nRun \"b2cfs help <command>\" for a command's options, \"b2cfs --version\" for this build.\n")
}

// run dispatches args (without the program name) and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 1
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && args[0] == "help" {
			if _, ok := commands[args[1]]; ok {
				return run(ctx, []string{args[1], "--help"}, stdout, stderr) // b2cfs help CMD
			}
			fmt.Fprintf(stderr, "b2cfs: no command %q (run \"b2cfs help\" for a list)\n", args[1])
			return 1
		}
		usage(stdout)
		return 0
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, version())
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "b2cfs: unknown command %q (run \"b2cfs help\" for a list)\n", args[0])
		return 1
	}
	if err := cmd.run(ctx, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.Err != nil {
				fmt.Fprintf(stderr, "b2cfs: %v\n", ee.Err)
			}
			return ee.Code
		}
		fmt.Fprintf(stderr, "b2cfs: %v\n", err)
		return 1
	}
	return 0
}

// version describes this build: the module version ("(devel)" for a
// build from a checkout), the commit it was built from, and the Go release.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "b2cfs (no build information)"
	}
	v := "b2cfs " + bi.Main.Version
	var rev, modified string
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			rev = kv.Value
		case "vcs.modified":
			if kv.Value == "true" {
				modified = ", modified"
			}
		}
	}
	if rev != "" {
		v += fmt.Sprintf(" (commit %.12s%s)", rev, modified)
	}
	return v + " " + bi.GoVersion
}

// exitError makes a command exit with Code instead of 1, after printing Err
// (if not nil). "b2cfs lock" uses it for flock(1)'s exit statuses.
type exitError struct {
	Code int
	Err  error
}

func (e *exitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *exitError) Unwrap() error { return e.Err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, helperArgs(os.Args), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
