package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/namespace"
	"github.com/spf13/cobra"
)

func newFsckCmd(c cli, conn *connFlags) *cobra.Command {
	var repair bool
	cmd := &cobra.Command{
		Use:     "fsck [flags] BUCKET/GROUP",
		Short:   "check a group's index and data files, and repair a damaged group",
		Long:    fsckHelp,
		Example: fsckExample,
		Args:    argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runFsck(cmd.Context(), newTool(c, conn), args[0], repair)
		},
	}
	cmd.Flags().BoolVar(&repair, "repair", false, "make a damaged group readable again, keeping every object whose data is intact; then check again")
	return usageStatus(cmd, 2)
}

const fsckHelp = `Checks a group of either format, and prints one line per problem:
  - the bucket-info value that holds the group: its pointer (b2cfs format:
    base64 JSON of a format version this b2cfs knows) or its index
    (blazer's format: base64 JSON with Version 1);
  - in the b2cfs format, the base and delta manifests the pointer names:
    they must exist and decode, and the delta must be against the
    pointer's base;
  - the data file of every object (with one listing, not one call per
    object).
Then a summary: objects, how many are intact, how many lack their data,
and the state of the manifests. Without --repair nothing is changed; what
a repair would do is printed.

--repair makes a damaged group readable again, keeping every object whose
data file still exists: it drops the objects whose data is gone (each is
printed) and writes a new index from what is still readable. In the b2cfs
format: the entries of the pointer, its delta and its base; for a lost
base, the newest older base still stored (and its delta); for a lost
pointer, the newest base and delta stored. In blazer's format, a lost
index is rebuilt from the files marked as written by this group (the
newest version of each name); files blazer wrote carry no mark and cannot
be attributed to a group. The new index is saved with a compare-and-swap,
redone if another writer got there first, and the group is checked again.
Old manifests and unreferenced data files are left in the bucket, so run
fsck before gc: gc deletes the data of objects a repair could not restore.
See the README, "Check and repair a group", for what cannot be restored.

Exit status: 0 if the group is intact (or was repaired and is intact now),
1 if it is damaged (or could not be repaired), 2 if it could not be
checked (bad arguments, B2 unreachable, no such group).
`

const fsckExample = `  b2cfs fsck my-bucket/deploy              # check, change nothing
  b2cfs fsck --repair my-bucket/deploy     # repair, then check again`

func runFsck(ctx context.Context, t *tool, arg string, repair bool) error {
	c := t.c
	tg, err := parseGroupTarget("fsck", arg)
	if err != nil {
		return fsckFailed(err)
	}
	s, err := t.store(ctx, tg.Bucket)
	if err != nil {
		return fsckFailed(err)
	}
	r, err := core.Fsck(ctx, s, tg.Group, core.FsckOptions{Repair: repair, IsLock: isLock})
	if r != nil {
		printFsck(c.stdout, tg, r, repair)
	}
	switch {
	case err != nil && r != nil && r.Repaired:
		// Repaired, but the check afterwards failed.
		return fsckFailed(fmt.Errorf("fsck %s: repaired, but could not check again: %w", tg, err))
	case err != nil && r != nil && repair && r.Damaged():
		return &exitError{Code: 1, Err: fmt.Errorf("fsck %s: not repaired: %w", tg, err)}
	case err != nil:
		return fsckFailed(fmt.Errorf("fsck %s: %w", tg, err))
	case r.Repaired && r.After != nil && !r.After.Damaged():
		return nil
	case r.Repaired:
		return &exitError{Code: 1, Err: fmt.Errorf("fsck %s: still damaged after the repair (%s)", tg, problems(r.After))}
	case !r.Damaged():
		return nil
	case r.CannotRepair != "":
		return &exitError{Code: 1, Err: fmt.Errorf("fsck %s: damaged (%s), and cannot be repaired: %s", tg, problems(r), r.CannotRepair)}
	case repair:
		return &exitError{Code: 1, Err: fmt.Errorf("fsck %s: damaged (%s), not repaired", tg, problems(r))}
	default:
		return &exitError{Code: 1, Err: fmt.Errorf("fsck %s: damaged (%s); run \"b2cfs fsck --repair %s\" to repair it", tg, problems(r), tg)}
	}
}

// fsckFailed makes err exit with status 2: the group could not be checked.
func fsckFailed(err error) error {
	return &exitError{Code: 2, Err: err}
}

func problems(r *core.FsckReport) string {
	if len(r.Problems) == 1 {
		return "1 problem"
	}
	return fmt.Sprintf("%d problems", len(r.Problems))
}

// printFsck prints the report: a header, one line per problem, the
// summary, what a repair does or did, and the check after a repair.
func printFsck(w io.Writer, tg target, r *core.FsckReport, repair bool) {
	serial := "serial unknown"
	if r.Serial > 0 {
		serial = fmt.Sprintf("serial %d", r.Serial)
	}
	fmt.Fprintf(w, "fsck %s: %s format (bucket-info key %s), %s\n", tg, r.Format, r.InfoKey, serial)
	for _, p := range r.Problems {
		fmt.Fprintf(w, "problem: %s\n", p)
	}
	summary := fmt.Sprintf("%d objects, %d intact, %d missing data", r.Objects, r.Intact, len(r.Missing))
	if r.Format == core.FormatB2cfs {
		summary += "; manifests: " + r.Manifests
	} else {
		summary += "; index in the bucket info"
	}
	fmt.Fprintf(w, "summary: %s\n", summary)
	if !r.Damaged() {
		fmt.Fprintf(w, "ok: no problems\n")
		return
	}
	switch {
	case r.CannotRepair != "":
		fmt.Fprintf(w, "cannot repair: %s\n", r.CannotRepair)
		return
	case r.Repaired:
		fmt.Fprintf(w, "repaired:\n")
	case repair:
		fmt.Fprintf(w, "repair planned, not done:\n")
	default:
		fmt.Fprintf(w, "--repair would:\n")
	}
	for _, p := range r.Plan {
		fmt.Fprintf(w, "  %s\n", p)
	}
	if r.After != nil {
		var b strings.Builder
		printFsck(&b, tg, r.After, false)
		fmt.Fprintf(w, "check after the repair:\n")
		for _, line := range strings.SplitAfter(strings.TrimSuffix(b.String(), "\n"), "\n") {
			fmt.Fprintf(w, "  %s", line)
		}
		fmt.Fprintln(w)
	}
}

// isLock reports whether name is a lock object (namespace.LockName).
func isLock(name string) bool {
	_, ok := namespace.LockedPath(name)
	return ok
}
