package main

// b2cfs recover: the bytes a mount kept in CACHE_DIR/recovery/ when a
// commit failed (EBUSY, EIO, ENOSPC, or an unmount that could not commit),
// listed, copied out, committed back or discarded. The mount describes each
// kept file in a sidecar FILE.json (cache.Kept): bucket, group, object, the
// key the changes started from, the key the object had when they were
// kept, the reason and the time.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/b2cfs/b2cfs/cache"
	"github.com/b2cfs/b2cfs/core"
	"github.com/spf13/cobra"
)

func newRecoverCmd(c cli, conn *connFlags) *cobra.Command {
	var f recoverFlags
	cmd := &cobra.Command{
		Use:       "recover [list|restore|commit|discard] [flags] [ID] [PATH]",
		Short:     "list, restore or commit back changes a mount could not commit",
		Long:      recoverHelp,
		Example:   recoverExample,
		ValidArgs: []cobra.Completion{"list", "restore", "commit", "discard"},
		Args: func(_ *cobra.Command, args []string) error {
			_, _, err := recoverArgs(args)
			return err
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			sub, pos, _ := recoverArgs(args)
			return runRecover(cmd.Context(), newTool(c, conn), sub, pos, f)
		},
	}
	cmd.Flags().StringArrayVar(&f.dirs, "cache-dir", nil, "look in `DIR` (repeatable) instead of the default cache directories")
	cmd.Flags().BoolVar(&f.json, "json", false, "list: print JSON")
	cmd.Flags().BoolVar(&f.force, "force", false, "commit: replace the object even if it changed after the bytes were kept")
	cmd.Flags().StringVar(&f.to, "to", "", "commit: to `BUCKET/GROUP/PATH` instead of where the bytes came from")
	return cmd
}

// recoverFlags are recover's options.
type recoverFlags struct {
	dirs  []string
	json  bool
	force bool
	to    string
}

// recoverArgs splits recover's arguments into the subcommand (list when
// none is given) and its operands, and checks their number.
func recoverArgs(args []string) (sub string, pos []string, err error) {
	sub, pos = "list", args
	if len(args) > 0 {
		sub, pos = args[0], args[1:]
	}
	n, ok := map[string]int{"list": 0, "restore": 2, "commit": 1, "discard": 1}[sub]
	switch {
	case !ok:
		return "", nil, fmt.Errorf("recover: unknown subcommand %q", sub)
	case len(pos) != n:
		return "", nil, fmt.Errorf("recover %s: wrong number of arguments", sub)
	}
	return sub, pos, nil
}

const recoverHelp = `  b2cfs recover [list] [--cache-dir DIR]... [--json]
  b2cfs recover restore [--cache-dir DIR]... ID PATH
  b2cfs recover commit [--force] [--to BUCKET/GROUP/PATH] [--cache-dir DIR]... ID
  b2cfs recover discard [--cache-dir DIR]... ID

When a mount cannot commit a changed file (EBUSY: it changed elsewhere
since it was opened; EIO: B2 unreachable; ENOSPC: group index full; or an
unmount with files still changed), it keeps the bytes in
CACHE_DIR/recovery/. "recover" lists them with an ID (file, group, time,
reason), across the default cache directories (the user's cache
directory, and /var/cache for root) or those given with --cache-dir (a
mount's cache_dir, or a directory above several).

  list      list kept changes (the default)
  restore   copy the bytes of ID to PATH ("-" for stdout)
  commit    commit the bytes of ID back to their object, then forget them
  discard   delete the bytes of ID

commit replaces the version the object had when the bytes were kept: if
the object changed again after that (or was removed), commit refuses,
since it would overwrite changes nobody has compared with these bytes;
look at the object ("b2cfs cat"), then pass --force to replace whatever it
holds now. The commit itself is a compare-and-swap on the key read just
before, as every commit, so a writer racing with it is never overwritten.
`

const recoverExample = `  b2cfs recover                                  # ID, time, object, reason
  b2cfs recover restore 3f2a9c1e ./counter.mine  # look at the kept bytes
  b2cfs recover commit 3f2a9c1e                  # put them back in B2`

// keptFile is one file of a recovery directory.
type keptFile struct {
	ID       string     `json:"id"`
	Path     string     `json:"path"`
	CacheDir string     `json:"cacheDir"`
	Kept     cache.Kept `json:"kept"`
	// Described is false when no sidecar describes the file (bytes a
	// crashed mount left, or kept by an older b2cfs).
	Described bool `json:"described"`
}

func runRecover(ctx context.Context, t *tool, sub string, pos []string, f recoverFlags) error {
	c := t.c
	defer t.close()
	dirs := f.dirs
	if len(dirs) == 0 {
		dirs = defaultRecoveryRoots()
	}
	files, err := findKept(dirs)
	if err != nil {
		return err
	}
	if sub == "list" {
		return listKept(c.stdout, files, f.json)
	}
	k, err := pickKept(files, pos[0])
	if err != nil {
		return err
	}
	switch sub {
	case "restore":
		return restoreKept(c, k, pos[1])
	case "discard":
		if err := removeKept(k); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "discarded %s (%s)\n", k.ID, k.Path)
		return nil
	}
	return t.commitKept(ctx, k, f.to, f.force)
}

// defaultRecoveryRoots are where mounts put cache directories by default.
func defaultRecoveryRoots() []string {
	var roots []string
	if base, err := os.UserCacheDir(); err == nil {
		roots = append(roots, filepath.Join(base, "b2cfs"))
	}
	if os.Geteuid() == 0 {
		roots = append(roots, "/var/cache/b2cfs")
	}
	return roots
}

// findKept lists the kept files of every recovery directory in or below
// dirs (at most three levels down, as in BASE/b2cfs/BUCKET/GROUP), oldest
// first.
func findKept(dirs []string) ([]keptFile, error) {
	seen := map[string]bool{}
	var out []keptFile
	for _, d := range dirs {
		d, err := filepath.Abs(d)
		if err != nil {
			return nil, err
		}
		var cands []string
		for _, pat := range []string{"", "*", "*/*", "*/*/*"} {
			m, _ := filepath.Glob(filepath.Join(d, pat, "recovery"))
			cands = append(cands, m...)
		}
		for _, rd := range cands {
			if seen[rd] {
				continue
			}
			seen[rd] = true
			ks, err := readRecoveryDir(rd)
			if err != nil {
				return nil, err
			}
			out = append(out, ks...)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Kept.Time.Before(out[j].Kept.Time) })
	return out, nil
}

func readRecoveryDir(rd string) ([]keptFile, error) {
	ents, err := os.ReadDir(rd)
	if err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	var out []keptFile
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.HasSuffix(e.Name(), cache.KeptSuffix) {
			continue
		}
		p := filepath.Join(rd, e.Name())
		h := sha256.Sum256([]byte(p))
		k := keptFile{ID: hex.EncodeToString(h[:4]), Path: p, CacheDir: filepath.Dir(rd)}
		if b, err := os.ReadFile(p + cache.KeptSuffix); err == nil && json.Unmarshal(b, &k.Kept) == nil {
			k.Described = true
		} else {
			k.Kept = guessKept(e.Name())
		}
		if fi, err := e.Info(); err == nil {
			k.Kept.Size = fi.Size()
			if k.Kept.Time.IsZero() {
				k.Kept.Time = fi.ModTime().UTC()
			}
		}
		out = append(out, k)
	}
	return out, nil
}

// guessKept describes a file without a sidecar from its name: "leftover-*"
// for copies a stopped mount left behind, else NAME.TIME.N as cache.Keep
// names files (NAME with "/" and "%" escaped).
func guessKept(file string) cache.Kept {
	if strings.HasPrefix(file, "leftover-") {
		return cache.Kept{Reason: "left by a mount that stopped before committing"}
	}
	parts := strings.Split(file, ".")
	if len(parts) < 3 {
		return cache.Kept{Reason: "unknown"}
	}
	name, err := url.PathUnescape(strings.Join(parts[:len(parts)-2], "."))
	if err != nil {
		return cache.Kept{Reason: "unknown"}
	}
	k := cache.Kept{Name: name, Reason: "unknown (kept without details)"}
	if t, err := time.Parse("20060102T150405Z", parts[len(parts)-2]); err == nil {
		k.Time = t
	}
	return k
}

func listKept(w io.Writer, files []keptFile, asJSON bool) error {
	if asJSON {
		if files == nil {
			files = []keptFile{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(files)
	}
	if len(files) == 0 {
		fmt.Fprintln(w, "no kept changes")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKEPT\tGROUP\tFILE\tSIZE\tREASON")
	for _, k := range files {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", k.ID, k.Kept.Time.Local().Format("2006-01-02 15:04:05"),
			orUnknown(groupOf(k.Kept)), orUnknown(k.Kept.Name), k.Kept.Size, k.Kept.Reason)
	}
	return tw.Flush()
}

func groupOf(k cache.Kept) string {
	if k.Group == "" {
		return ""
	}
	if k.Bucket == "" {
		return "?/" + k.Group
	}
	return k.Bucket + "/" + k.Group
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// pickKept finds the file whose ID starts with id (at least 4 characters).
func pickKept(files []keptFile, id string) (keptFile, error) {
	if len(id) < 4 {
		return keptFile{}, fmt.Errorf("recover: ID %q too short (see b2cfs recover)", id)
	}
	var found []keptFile
	for _, k := range files {
		if strings.HasPrefix(k.ID, id) {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 0:
		return keptFile{}, fmt.Errorf("recover: no kept change %s (see b2cfs recover; --cache-dir names other cache directories)", id)
	case 1:
		return found[0], nil
	}
	return keptFile{}, fmt.Errorf("recover: ID %s is ambiguous (%d matches)", id, len(found))
}

func restoreKept(c cli, k keptFile, dst string) error {
	src, err := os.Open(k.Path)
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	defer src.Close()
	if dst == "-" {
		_, err := io.Copy(c.stdout, src)
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	if _, err := io.Copy(out, src); err != nil {
		out.Close()
		return fmt.Errorf("recover: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	fmt.Fprintf(c.stderr, "restored %s (%s) to %s\n", k.ID, orUnknown(k.Kept.Name), dst)
	return nil
}

func removeKept(k keptFile) error {
	if err := os.Remove(k.Path); err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	os.Remove(k.Path + cache.KeptSuffix)
	return nil
}

// commitKept commits the bytes of k back (see recoverHelp for the rule).
func (t *tool) commitKept(ctx context.Context, k keptFile, to string, force bool) error {
	tg := target{Bucket: k.Kept.Bucket, Group: k.Kept.Group, Path: k.Kept.Name}
	if to != "" {
		var err error
		if tg, err = parseTarget(to); err != nil {
			return err
		}
	}
	if tg.Bucket == "" || tg.Group == "" || tg.Path == "" {
		return fmt.Errorf("recover: %s does not say where it came from; pass --to BUCKET/GROUP/PATH", k.ID)
	}
	if err := checkUserPath(tg); err != nil {
		return err
	}
	g, err := t.group(ctx, tg)
	if err != nil {
		return err
	}
	v, err := g.View(ctx)
	if err != nil {
		return fmt.Errorf("recover: %s: %w", tg, err)
	}
	now, _ := v.Key(tg.Path)
	// The version these bytes were meant to replace: the one current when
	// they were kept, else the one they started from.
	expected, known := k.Kept.Base, k.Described
	if k.Kept.CurrentKnown {
		expected = k.Kept.Current
	}
	sameTarget := to == "" || (tg.Bucket == k.Kept.Bucket && tg.Group == k.Kept.Group && tg.Path == k.Kept.Name)
	if !force && (!known || !sameTarget || now != expected) {
		why := "it changed after the bytes were kept"
		switch {
		case !known || !sameTarget:
			why = "it is not known which version these bytes replace"
		case now == "":
			why = "it was removed after the bytes were kept"
		}
		return fmt.Errorf("recover: not committing %s to %s: %s; compare it (b2cfs cat %s, b2cfs recover restore %s -), then run again with --force to replace it", k.ID, tg, why, tg, k.ID)
	}
	f, err := os.Open(k.Path)
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	key, err := g.Commit(ctx, tg.Path, now, f, fi.Size())
	if errors.Is(err, core.ErrConflict) {
		return fmt.Errorf("recover: %s changed while committing; nothing was stored, run again: %w", tg, err)
	}
	if err != nil {
		return fmt.Errorf("recover: commit %s: %w", tg, err)
	}
	f.Close()
	if err := removeKept(k); err != nil {
		return err
	}
	fmt.Fprintf(t.c.stdout, "committed %s to %s (key %s)\n", k.ID, tg, key)
	return nil
}
