package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/b2cfs/b2cfs/core"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

func newGCCmd(c cli, conn *connFlags) *cobra.Command {
	var grace time.Duration
	var dryRun bool
	cmd := &cobra.Command{
		Use:     "gc [flags] BUCKET",
		Short:   "delete B2 files of a bucket that no group references",
		Long:    gcHelp,
		Example: gcExample,
		Args:    argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGC(cmd.Context(), newTool(c, conn), args[0], grace, dryRun)
		},
	}
	cmd.Flags().DurationVar(&grace, "grace", time.Hour, "keep unreferenced files uploaded less than `DURATION` ago")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be deleted, delete nothing")
	return cmd
}

const gcHelp = `Deletes the B2 files of BUCKET that no group references: versions left by
writers that crashed between upload and commit, and versions that were
replaced or removed by short-lived commands (put, rm, mv) or by mounts that
stopped before deleting them. Groups of both formats are read (blazer's,
whose version of <name> is the file <name>/<key>, and b2cfs's, whose
versions are files .b2cfs/data/<group>/<key>).

A file is deleted only if all of these hold:
  - its name has the shape of a version file, <name>/<key> with a key of 40
    lower-case hex digits (other files of the bucket are never touched);
  - b2cfs wrote it: it carries b2cfs's mark (the B2 file info b2cfs-group,
    naming the group that uploaded it), or its name is under .b2cfs/, which
    b2cfs reserves;
  - no group of the bucket references it;
  - it was uploaded longer ago than --grace;
  - no newer version under the same name (in b2cfs's format: of the same
    group) was uploaded within --grace, since this one may have been
    replaced a moment ago and still be read by other hosts.
If the index of any group in the bucket cannot be read or decoded, or a
group's live versions are not where gc expects them, gc refuses to run:
live data could otherwise be taken for garbage.

Files of the version shape without the mark are kept, whatever their age,
and counted as unmarked in the summary: blazer's x/consistent writes its
versions without it, so their garbage is left to blazer. So are versions
written by b2cfs releases that did not mark their files yet.

An object removed from its group (rm, or unlink in a mount) whose group saw
no newer upload within --grace is garbage at once, whatever its age; hosts
that still read it get errors once it is deleted.
`

const gcExample = `  b2cfs gc --dry-run my-bucket          # print what would be deleted
  b2cfs gc --grace 24h my-bucket`

// runGC is the gc command: it checks its target, opens the bucket, and
// prints what core.CollectGarbage (whose rules gcHelp restates) found and
// did.
func runGC(ctx context.Context, t *tool, arg string, grace time.Duration, dryRun bool) error {
	c := t.c
	bucket := strings.TrimSuffix(arg, "/")
	if strings.Contains(bucket, "/") {
		return fmt.Errorf("gc: %q: want a bucket name: gc works on every group of a bucket at once", arg)
	}
	if err := checkBucketName(bucket); err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	if grace < 0 {
		return fmt.Errorf("gc: --grace must not be negative")
	}
	s, err := t.store(ctx, bucket)
	if err != nil {
		return err
	}
	r, err := core.CollectGarbage(ctx, s, core.GCOptions{Grace: grace, DryRun: dryRun, Logger: t.log})
	printGarbage(c.stdout, t.log, r, dryRun)
	if err != nil {
		var refused *core.GCRefusedError
		if errors.As(err, &refused) && refused.File != "" {
			err = fmt.Errorf("%w; check it with: b2cfs fsck %s/%s", err, bucket, refused.Group)
		}
		return fmt.Errorf("gc %s: %w", bucket, err)
	}
	verb := "deleted"
	if dryRun {
		verb = "would delete"
	}
	fmt.Fprintf(c.stdout, "gc %s: %d groups, %d files: %d referenced, %d not group files, %d unmarked (not written by b2cfs), %d within the grace period; %s %d files (%s)\n",
		bucket, r.Groups, r.Files, r.Referenced, r.Foreign, r.Unmarked, r.Young, verb, len(r.Garbage), units.BytesSize(float64(r.GarbageBytes)))
	return nil
}

// printGarbage prints one line per file of r.Garbage that was deleted (or,
// with dryRun, would be), and logs the deletions that failed.
func printGarbage(w io.Writer, log *slog.Logger, r *core.GCReport, dryRun bool) {
	for _, f := range r.Garbage {
		age := r.Now.Sub(f.Modified).Round(time.Second)
		switch err := r.Failed[f.Name]; {
		case dryRun:
			fmt.Fprintf(w, "would delete %s (%d bytes, uploaded %s ago)\n", f.Name, f.Size, age)
		case err != nil:
			log.Warn("gc: delete failed", "file", f.Name, "err", err)
		default:
			fmt.Fprintf(w, "deleted %s (%d bytes, uploaded %s ago)\n", f.Name, f.Size, age)
		}
	}
}
