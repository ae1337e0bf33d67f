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
)

func init() {
	commands["gc"] = command{
		summary: "delete B2 files of a bucket that no group references",
		run:     func(ctx context.Context, args []string) error { return runGC(ctx, osCLI(), args) },
	}
}

const gcHelp = `usage: b2cfs gc [options] BUCKET

Deletes the B2 files of BUCKET that no group references: versions left by
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

const gcExample = `
Example:
  b2cfs gc --dry-run my-bucket          # print what would be deleted
  b2cfs gc --grace 24h my-bucket
`

func runGC(ctx context.Context, c cli, args []string) error {
	t := newTool(c, "gc", gcHelp, gcExample)
	grace := t.flags.Duration("grace", time.Hour, "keep unreferenced files uploaded less than `DURATION` ago")
	dryRun := t.flags.Bool("dry-run", false, "print what would be deleted, delete nothing")
	pos, err := t.parse(args, 1, 1)
	if err != nil {
		return err
	}
	bucket := strings.TrimSuffix(pos[0], "/")
	if strings.Contains(bucket, "/") {
		return fmt.Errorf("gc: %q: want a bucket name: gc works on every group of a bucket at once", pos[0])
	}
	if err := checkBucketName(bucket); err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	if *grace < 0 {
		return fmt.Errorf("gc: --grace must not be negative")
	}
	s, err := t.store(ctx, bucket)
	if err != nil {
		return err
	}
	res, err := collectGarbage(ctx, s, gcConfig{Bucket: bucket, Grace: *grace, DryRun: *dryRun, Out: c.stdout, Logger: t.log})
	if err != nil {
		return fmt.Errorf("gc %s: %w", bucket, err)
	}
	verb := "deleted"
	if *dryRun {
		verb = "would delete"
	}
	fmt.Fprintf(c.stdout, "gc %s: %d groups, %d files: %d referenced, %d not group files, %d unmarked (not written by b2cfs), %d within the grace period; %s %d files (%s)\n",
		bucket, res.Groups, res.Files, res.Referenced, res.Foreign, res.Unmarked, res.Young, verb, len(res.Garbage), humanBytes(res.GarbageBytes))
	return nil
}

// gcConfig tunes collectGarbage.
type gcConfig struct {
	Bucket string           // for messages
	Grace  time.Duration    // keep files uploaded less than this ago
	DryRun bool             // only report
	Now    func() time.Time // default time.Now
	Out    io.Writer        // one line per file deleted (or that would be); nil: none
	Logger *slog.Logger     // nil: discard
}

// gcResult counts what collectGarbage saw.
type gcResult struct {
	Groups       int
	Files        int             // files listed in the bucket
	Referenced   int             // live versions of some group
	Foreign      int             // not of the <name>/<key> shape: never touched
	Unmarked     int             // unreferenced, of that shape, but not written by b2cfs: kept
	Young        int             // unreferenced but within the grace period
	Garbage      []core.FileInfo // deleted, or would be with DryRun
	GarbageBytes int64
}

// collectGarbage deletes the files of the store's bucket that no group
// references (see gcHelp for the rules). The indexes are read before the
// listing, so a version committed in between is young, and one superseded in
// between is still referenced by what was read: either way it is kept.
func collectGarbage(ctx context.Context, s core.Store, cfg gcConfig) (gcResult, error) {
	var res gcResult
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Bucket == "" {
		cfg.Bucket = "BUCKET"
	}
	info, err := s.BucketInfo(ctx)
	if err != nil {
		return res, err
	}
	seen := map[string]bool{}
	var groups []string
	for _, ref := range core.GroupsIn(info.Info) {
		if !seen[ref.Name] {
			seen[ref.Name] = true
			groups = append(groups, ref.Name)
		}
	}
	referenced := map[string]bool{} // B2 file names every group needs
	byGroup := map[string][]string{}
	for _, name := range groups {
		files, err := groupFiles(ctx, s, name)
		if err != nil {
			return res, fmt.Errorf("refusing to collect garbage: cannot read the index of group %q, so its files cannot be told from garbage: %w", name, err)
		}
		for _, f := range files {
			referenced[f] = true
		}
		byGroup[name] = files
		cfg.Logger.Debug("gc: read group index", "group", name, "files", len(files))
	}
	res.Groups = len(groups)

	files, err := s.List(ctx, "")
	if err != nil {
		return res, err
	}
	res.Files = len(files)
	listed := make(map[string]bool, len(files))
	for _, f := range files {
		listed[f.Name] = true
	}
	// A group that references files the listing lacks is not understood
	// (or is damaged): its data could be taken for garbage.
	for _, g := range groups {
		for _, f := range byGroup[g] {
			if !listed[f] {
				return res, fmt.Errorf("refusing to collect garbage: group %q references %q, which the bucket listing lacks: the group may be damaged, or in a format this b2cfs does not know; check it with: b2cfs fsck %s/%s", g, f, cfg.Bucket, g)
			}
		}
	}

	now := cfg.Now()
	cutoff := now.Add(-cfg.Grace)
	// newestLive is the upload time of the newest live version stored under
	// a name prefix (an object's name in blazer's format, a group's data
	// folder in b2cfs's).
	newestLive := map[string]time.Time{}
	for _, f := range files {
		if referenced[f.Name] {
			n, _, _ := splitFileName(f.Name)
			if f.Modified.After(newestLive[n]) {
				newestLive[n] = f.Modified
			}
		}
	}
	for _, f := range files {
		name, _, ok := splitFileName(f.Name)
		switch {
		case !ok:
			res.Foreign++
		case referenced[f.Name]:
			res.Referenced++
		case f.Group == "" && !strings.HasPrefix(f.Name, ".b2cfs/"):
			res.Unmarked++
		case f.Modified.IsZero() || f.Modified.After(cutoff): // uploaded less than Grace ago
			res.Young++
		case newestLive[name].After(cutoff):
			// A newer version was stored within the grace period, so this
			// one may have been replaced only just now.
			res.Young++
		default:
			res.Garbage = append(res.Garbage, f)
			res.GarbageBytes += f.Size
		}
	}
	var failed []error
	for _, f := range res.Garbage {
		age := now.Sub(f.Modified).Round(time.Second)
		if cfg.DryRun {
			if cfg.Out != nil {
				fmt.Fprintf(cfg.Out, "would delete %s (%d bytes, uploaded %s ago)\n", f.Name, f.Size, age)
			}
			continue
		}
		if err := s.Delete(ctx, f.Name, f.ID); err != nil && !errors.Is(err, core.ErrNotExist) {
			cfg.Logger.Warn("gc: delete failed", "file", f.Name, "err", err)
			failed = append(failed, err)
			continue
		}
		if cfg.Out != nil {
			fmt.Fprintf(cfg.Out, "deleted %s (%d bytes, uploaded %s ago)\n", f.Name, f.Size, age)
		}
	}
	if len(failed) > 0 {
		return res, fmt.Errorf("%d of %d deletions failed, first: %w", len(failed), len(res.Garbage), failed[0])
	}
	return res, nil
}

// groupFiles returns the B2 files one group needs, read through core.
func groupFiles(ctx context.Context, s core.Store, name string) ([]string, error) {
	g, err := core.NewGroup(s, name, core.Options{Grace: -1})
	if err != nil {
		return nil, err
	}
	defer g.Close()
	return g.Files(ctx)
}

// splitFileName splits a B2 file name of b2cfs's shape "<name>/<key>",
// where key is 40 lower-case hex digits and name is a valid object name.
func splitFileName(file string) (name, key string, ok bool) {
	i := strings.LastIndexByte(file, '/')
	if i < 0 {
		return "", "", false
	}
	name, key = file[:i], file[i+1:]
	if len(key) != core.KeyLen || core.CheckName(name) != nil {
		return "", "", false
	}
	for _, c := range []byte(key) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", "", false
		}
	}
	return name, key, true
}
