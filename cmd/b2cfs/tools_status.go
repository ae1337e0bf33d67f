package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/namespace"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

func newStatusCmd(c cli, conn *connFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "status [flags] BUCKET/GROUP",
		Short:   "show a group's size, index use and held locks",
		Long:    statusHelp,
		Example: statusExample,
		Args:    argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStatus(cmd.Context(), newTool(c, conn), args[0])
		},
	}
}

const statusHelp = `Shows whether B2 answers (and how fast), then a group: how many objects it
has and their bytes, its on-bucket format
and how much of the bucket info its index uses against B2's limit (a group in
blazer's format keeps its whole index there, so it holds a few dozen names;
the b2cfs format keeps only a pointer there), and the locks held on its
files, with holder, mode and lease expiry. No mount is needed.
`

const statusExample = `  b2cfs status my-bucket/deploy`

func runStatus(ctx context.Context, t *tool, arg string) error {
	c := t.c
	tg, err := parseGroupTarget("status", arg)
	if err != nil {
		return err
	}
	defer t.close()
	endpoint := resolveEndpoint(t.conn.endpoint, c.getenv)
	start := time.Now()
	s, err := t.store(ctx, tg.Bucket)
	if errors.Is(err, core.ErrUnavailable) {
		fmt.Fprintf(c.stdout, "b2:       UNREACHABLE at %s after %v\n", endpoint, time.Since(start).Round(time.Millisecond))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "b2:       reachable at %s (authorised in %v)\n", endpoint, time.Since(start).Round(time.Millisecond))
	g, v, err := t.view(ctx, tg)
	if err != nil {
		return err
	}
	info, err := s.BucketInfo(ctx)
	if err != nil {
		return err
	}
	tree := namespace.New(v)
	var bytes int64
	if tree.NumFiles() > 0 {
		if err := g.Prefetch(ctx, ""); err != nil {
			return err
		}
	}
	for name, key := range tree.Files() {
		fi, err := g.Stat(ctx, name, key)
		if err != nil {
			return err
		}
		bytes += fi.Size
	}
	locks := namespace.Locks(v)

	w := c.stdout
	fmt.Fprintf(w, "group:    %s\n", tg)
	fmt.Fprintf(w, "objects:  %d files, %d directories (%d names in the index)\n", tree.NumFiles(), tree.NumDirs(), v.Len())
	fmt.Fprintf(w, "bytes:    %d (%s)\n", bytes, units.BytesSize(float64(bytes)))
	format := g.Format()
	infoKey := core.InfoKey(format, tg.Group)
	limits := core.Limits{}.WithDefaults() // what core applies by default
	used, limit := limits.Use(info.Info, infoKey)
	if format == core.FormatB2cfs {
		fmt.Fprintf(w, "index:    %s format: in manifest files, no size limit; its pointer takes %d of %d bytes of bucket info\n", format, used, limit)
	} else {
		fmt.Fprintf(w, "index:    %s format: %d of %d bytes of bucket info (%d%%)\n", format, used, limit, percent(used, limit))
	}
	fmt.Fprintf(w, "          the bucket info has %d of %d pairs\n", len(info.Info), limits.MaxPairs)
	held := 0
	now := time.Now()
	var lines []string
	for _, name := range locks {
		hs, err := g.Holders(ctx, name)
		if err != nil {
			return err
		}
		for _, h := range hs {
			held++
			p, _ := namespace.LockedPath(name)
			lines = append(lines, fmt.Sprintf("  %s: %s", p, describeHolder(h, now)))
		}
	}
	fmt.Fprintf(w, "locks:    %d held\n", held)
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	return nil
}

func percent(a, b int) int {
	if b <= 0 {
		return 100
	}
	return a * 100 / b
}

func describeHolder(h core.Holder, now time.Time) string {
	var exp string
	switch {
	case h.Expires.IsZero():
		exp = "never expires"
	case !now.Before(h.Expires):
		exp = "lease expired " + h.Expires.Local().Format(time.DateTime)
	default:
		exp = "lease until " + h.Expires.Local().Format(time.DateTime)
	}
	who := h.Host
	if h.PID != 0 {
		who += fmt.Sprintf(" pid %d", h.PID)
	}
	if h.Owner != "" {
		who += " (owner " + h.Owner + ")"
	}
	return fmt.Sprintf("%s by %s, %s", h.Mode, who, exp)
}
