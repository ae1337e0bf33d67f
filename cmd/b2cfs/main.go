// Command b2cfs is a FUSE file system backed by Backblaze B2, plus the
// tools that go with it. Run "b2cfs help" for the list of commands.
package main

//go:generate go test -run TestCLIDocs . -args -update-docs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// newRootCmd returns the command tree. Its commands use c's streams and
// environment, and the connection flags given to the root.
func newRootCmd(c cli) *cobra.Command {
	root := &cobra.Command{
		Use:     "b2cfs",
		Short:   "a FUSE file system backed by Backblaze B2, and its tools",
		Version: version(),
		// Without a command: the list of commands on stderr, and exit 1.
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprint(cmd.ErrOrStderr(), cmd.UsageString())
			return &exitError{Code: 1}
		},
		SilenceErrors:      true, // run prints them
		SilenceUsage:       true,
		DisableSuggestions: true, // errors stay one line
	}
	root.SetIn(c.stdin)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetHelpCommand(newHelpCmd())
	conn := &connFlags{}
	conn.register(root.PersistentFlags())
	root.AddCommand(
		newLsCmd(c, conn), newCatCmd(c, conn), newPutCmd(c, conn), newGetCmd(c, conn),
		newRmCmd(c, conn), newMvCmd(c, conn), newStatusCmd(c, conn),
		newGCCmd(c, conn), newFsckCmd(c, conn), newRecoverCmd(c, conn),
		newLockCmd(c, conn), newLocksCmd(c, conn), newUnlockCmd(c, conn),
		newMountCmd(conn), newMountHelperCmd(), newInstallHelperCmd(c),
		newEmulatorCmd(c), newDemoCmd(c),
	)
	return root
}

// newHelpCmd is "b2cfs help [COMMAND]", which fails for an unknown
// command (cobra's own prints the list and exits 0).
func newHelpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND]",
		Short: "show the help of a command",
		ValidArgsFunction: func(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			var names []cobra.Completion
			for _, sub := range cmd.Root().Commands() {
				if sub.IsAvailableCommand() {
					names = append(names, cobra.CompletionWithDesc(sub.Name(), sub.Short))
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			target, rest, err := cmd.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return fmt.Errorf("no command %q (run \"b2cfs help\" for a list)", strings.Join(args, " "))
			}
			target.InitDefaultHelpFlag()
			target.InitDefaultVersionFlag()
			return target.Help()
		},
	}
}

// argsBetween accepts min to max positional arguments.
func argsBetween(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= min && len(args) <= max {
			return nil
		}
		_, want, _ := strings.Cut(strings.Replace(cmd.Use, " [flags]", "", 1), " ")
		if want == "" {
			want = "none"
		}
		return fmt.Errorf("%s: wrong number of arguments, want %s", cmd.Name(), want)
	}
}

// usageStatus makes cmd exit with code instead of 1 when its flags or
// arguments are wrong.
func usageStatus(cmd *cobra.Command, code int) *cobra.Command {
	args := cmd.Args
	cmd.Args = func(c *cobra.Command, a []string) error {
		if err := args(c, a); err != nil {
			return &exitError{Code: code, Err: err}
		}
		return nil
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{Code: code, Err: err} })
	return cmd
}

// execute runs the command line args (without the program name) with c and
// returns the command's error, unprinted. Errors found before the command
// runs (unknown commands and flags, wrong arguments) are *usageError.
func execute(ctx context.Context, c cli, args []string) error {
	root := newRootCmd(c)
	root.SetArgs(append([]string{}, args...))
	started := false
	root.PersistentPreRun = func(*cobra.Command, []string) { started = true }
	cmd, err := root.ExecuteContextC(ctx)
	if err != nil && !started {
		return &usageError{cmd: cmd, err: err}
	}
	return err
}

// run runs args (without the program name) as main does and returns the
// exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := osCLI()
	c.stdout, c.stderr = stdout, stderr
	err := execute(ctx, c, args)
	if err == nil {
		return 0
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.Code
		if ee.Err == nil {
			return code
		}
	}
	fmt.Fprintf(stderr, "b2cfs: %v\n", err)
	return code
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

// usageError is a command line that cmd cannot run; its message says how
// to get cmd's help.
type usageError struct {
	cmd *cobra.Command
	err error
}

func (e *usageError) Error() string {
	return fmt.Sprintf("%v (run \"%s --help\")", e.err, e.cmd.CommandPath())
}

func (e *usageError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, helperArgs(os.Args), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
