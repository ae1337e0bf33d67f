package main

// The group tools: ls, cat, put (tools_put.go), rm, mv and status
// (tools_status.go) work on a group without a mount, through the same core
// engine as the mount.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/b2"
	"github.com/b2cfs/b2cfs/namespace"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// cli is what a command uses besides its arguments: the standard streams,
// the environment and whether stderr is a terminal. Tests fill it in.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	stderrTTY      bool // progress bars are drawn only on a terminal
}

func osCLI() cli {
	return cli{
		stdin:     os.Stdin,
		stdout:    os.Stdout,
		stderr:    os.Stderr,
		getenv:    os.Getenv,
		stderrTTY: term.IsTerminal(int(os.Stderr.Fd())),
	}
}

// tool is one run of a group tool: the connection flags, and the stores
// and groups it opened (closed by close).
type tool struct {
	c    cli
	conn *connFlags
	log  *slog.Logger

	stores map[string]*b2.Store   // by bucket
	groups map[string]*core.Group // by "bucket/group"
	format string                 // format of groups this run creates ("": core's default)
}

// newTool returns a tool for a command whose flags have been parsed.
func newTool(c cli, conn *connFlags) *tool {
	return &tool{c: c, conn: conn, log: newLogger(c.stderr, conn.verbose),
		stores: map[string]*b2.Store{}, groups: map[string]*core.Group{}}
}

// store opens bucket once per run.
func (t *tool) store(ctx context.Context, bucket string) (*b2.Store, error) {
	if s, ok := t.stores[bucket]; ok {
		return s, nil
	}
	opts, err := t.conn.options(bucket, t.c.getenv, t.log)
	if err != nil {
		return nil, err
	}
	s, err := openStore(ctx, opts)
	if err != nil {
		return nil, err
	}
	t.stores[bucket] = s
	return s, nil
}

// group opens the group of tg once per run. Superseded versions are left
// in the bucket when the tool exits (core deletes them only after its grace
// period); "b2cfs gc" removes them.
func (t *tool) group(ctx context.Context, tg target) (*core.Group, error) {
	id := tg.Bucket + "/" + tg.Group
	if g, ok := t.groups[id]; ok {
		return g, nil
	}
	s, err := t.store(ctx, tg.Bucket)
	if err != nil {
		return nil, err
	}
	g, err := core.NewGroup(s, tg.Group, core.Options{Logger: t.log, Format: t.format})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tg, err)
	}
	t.groups[id] = g
	return g, nil
}

// view opens tg's group and returns it with a view of its index no older
// than the index TTL.
func (t *tool) view(ctx context.Context, tg target) (*core.Group, *core.View, error) {
	g, err := t.group(ctx, tg)
	if err != nil {
		return nil, nil, err
	}
	v, err := g.View(ctx)
	if err != nil {
		return nil, nil, err
	}
	return g, v, nil
}

// tree is view with the view's names as a directory tree.
func (t *tool) tree(ctx context.Context, tg target) (*core.Group, *namespace.Tree, error) {
	g, v, err := t.view(ctx, tg)
	if err != nil {
		return nil, nil, err
	}
	return g, namespace.New(v), nil
}

func (t *tool) close() {
	for _, g := range t.groups {
		g.Close()
	}
	for _, s := range t.stores {
		s.Close()
	}
}

// checkUserPath refuses a target that names no user object: no path, or
// a reserved one.
func checkUserPath(tg target) error {
	if tg.Path == "" {
		return fmt.Errorf("%s: no object path: want BUCKET/GROUP/PATH", tg)
	}
	return checkTreePath(tg)
}

// checkTreePath refuses a target under the reserved names.
func checkTreePath(tg target) error {
	if namespace.Reserved(tg.Path) {
		return fmt.Errorf("%s: names under %s are reserved for b2cfs", tg, core.ReservedPrefix)
	}
	return nil
}

// notFound explains a missing path of tree, telling a directory from
// nothing.
func notFound(tree *namespace.Tree, tg target) error {
	if tree.HasDir(tg.Path) {
		return fmt.Errorf("%s: is a directory", tg)
	}
	return fmt.Errorf("%s: %w", tg, core.ErrNotExist)
}

func newLsCmd(c cli, conn *connFlags) *cobra.Command {
	var long bool
	cmd := &cobra.Command{
		Use:     "ls [flags] BUCKET/GROUP[/PATH]",
		Short:   "list the objects of a group like a directory",
		Long:    lsHelp,
		Example: lsExample,
		Args:    argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLs(cmd.Context(), newTool(c, conn), args[0], long)
		},
	}
	cmd.Flags().BoolVarP(&long, "long", "l", false, "show size and modification time")
	return cmd
}

const lsHelp = `Lists the objects of a group like a directory: the files and subdirectories
directly under PATH (the group's root when PATH is left out), one a line,
directories with a trailing "/". PATH may also name one object. Names under
.b2cfs/ (b2cfs's own lock records and directory markers) are not shown.
With -l each line has the size in bytes and the modification time.
No mount is needed.
`

const lsExample = `  export B2_APPLICATION_KEY_ID=... B2_APPLICATION_KEY=...
  b2cfs ls -l my-bucket/deploy/manifests`

func runLs(ctx context.Context, t *tool, arg string, long bool) error {
	c := t.c
	tg, err := parseTarget(arg)
	if err != nil {
		return err
	}
	defer t.close()
	g, tree, err := t.tree(ctx, tg)
	if err != nil {
		return err
	}
	var files, dirs []string
	rel := func(p string) string { return p }
	switch {
	case tg.Path != "" && !tree.HasDir(tg.Path) && tree.HasFile(tg.Path):
		files = []string{tg.Path}
	case tree.HasDir(tg.Path):
		files, dirs = tree.Children(tg.Path)
		if tg.Path != "" {
			rel = func(p string) string { return p[len(tg.Path)+1:] }
		}
	default:
		return fmt.Errorf("%s: %w", tg, core.ErrNotExist)
	}
	if !long {
		for _, e := range mergeListing(files, dirs) {
			fmt.Fprintln(c.stdout, rel(e))
		}
		return nil
	}
	if len(files) > 1 {
		// One listing pass instead of one look-up per object.
		prefix := ""
		if tg.Path != "" {
			prefix = tg.Path + "/"
		}
		if err := g.Prefetch(ctx, prefix); err != nil {
			return err
		}
	}
	infos := map[string]core.FileInfo{}
	width := 1
	for _, f := range files {
		key, _ := tree.File(f)
		fi, err := g.Stat(ctx, f, key)
		if err != nil {
			return err
		}
		infos[f] = fi
		width = max(width, len(fmt.Sprint(fi.Size)))
	}
	for _, e := range mergeListing(files, dirs) {
		if fi, ok := infos[e]; ok {
			name := rel(e)
			if l, _ := tree.Entry(e); l.IsLink() {
				name += " -> " + l.Link
			}
			fmt.Fprintf(c.stdout, "%*d  %s  %s\n", width, fi.Size, fi.Modified.Local().Format(time.DateTime), name)
		} else {
			fmt.Fprintf(c.stdout, "%*s  %-19s  %s\n", width, "-", "-", rel(e))
		}
	}
	return nil
}

// mergeListing merges files and directories (given "/" at the end) into
// one sorted listing.
func mergeListing(files, dirs []string) []string {
	out := append([]string{}, files...)
	for _, d := range dirs {
		out = append(out, d+"/")
	}
	sort.Strings(out)
	return out
}

func newCatCmd(c cli, conn *connFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "cat [flags] BUCKET/GROUP/PATH...",
		Short:   "write objects of a group to stdout",
		Long:    catHelp,
		Example: catExample,
		Args:    argsBetween(1, math.MaxInt),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCat(cmd.Context(), newTool(c, conn), args)
		},
	}
}

const catHelp = `Writes the current version of each object to stdout, in order. A version
that another host replaces meanwhile is still read to its end.
No mount is needed.
`

const catExample = `  b2cfs cat my-bucket/deploy/release-counter
  b2cfs cat --credentials /etc/b2cfs/creds my-bucket/deploy/a my-bucket/deploy/b > both`

func runCat(ctx context.Context, t *tool, args []string) error {
	return t.eachObject(ctx, args, func(tg target) error {
		if tg.Path == "" {
			return fmt.Errorf("%s: no object path: want BUCKET/GROUP/PATH", tg)
		}
		return nil
	}, catOne)
}

// eachObject parses every argument as BUCKET/GROUP/PATH and checks it
// before anything is done, then runs do on each in turn.
func (t *tool) eachObject(ctx context.Context, args []string, check func(target) error, do func(context.Context, *tool, target) error) error {
	var tgs []target
	for _, a := range args {
		tg, err := parseTarget(a)
		if err != nil {
			return err
		}
		if err := check(tg); err != nil {
			return err
		}
		tgs = append(tgs, tg)
	}
	defer t.close()
	for _, tg := range tgs {
		if err := do(ctx, t, tg); err != nil {
			return err
		}
	}
	return nil
}

func catOne(ctx context.Context, t *tool, tg target) error {
	g, err := t.group(ctx, tg)
	if err != nil {
		return err
	}
	r, err := g.NewReader(ctx, tg.Path)
	if errors.Is(err, core.ErrNotExist) {
		if v, err := g.View(ctx); err == nil {
			return notFound(namespace.New(v), tg)
		}
	}
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := io.Copy(t.c.stdout, r); err != nil {
		return fmt.Errorf("cat %s: %w", tg, err)
	}
	return nil
}

func newRmCmd(c cli, conn *connFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "rm [flags] BUCKET/GROUP/PATH...",
		Short:   "remove objects from a group",
		Long:    rmHelp,
		Example: rmExample,
		Args:    argsBetween(1, math.MaxInt),
		RunE: func(cmd *cobra.Command, args []string) error {
			return newTool(c, conn).eachObject(cmd.Context(), args, checkUserPath, rmOne)
		},
	}
}

const rmHelp = `Removes objects from their group: each name leaves the group's index with one
compare-and-swap. The data stays readable for hosts that have the object
open; "b2cfs gc" deletes it once nothing references it.
No mount is needed.
`

const rmExample = `  b2cfs rm my-bucket/deploy/manifests/old.json`

func rmOne(ctx context.Context, t *tool, tg target) error {
	g, err := t.group(ctx, tg)
	if err != nil {
		return err
	}
	// A key that changes under us is retried: rm removes whatever is
	// there, as unlink does.
	for attempt := 0; ; attempt++ {
		v, err := g.View(ctx)
		if err != nil {
			return err
		}
		tree := namespace.New(v)
		name, key, err := namespace.Remove(tree, tg.Path, false)
		if errors.Is(err, syscall.ENOENT) {
			return notFound(tree, tg)
		}
		if err != nil {
			return fmt.Errorf("rm %s: %w", tg, err)
		}
		err = g.Remove(ctx, name, key)
		if err == nil {
			t.log.Debug("removed", "object", tg.String(), "key", key)
			return nil
		}
		if !errors.Is(err, core.ErrConflict) || attempt == 2 {
			return err
		}
	}
}

func newMvCmd(c cli, conn *connFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "mv [flags] BUCKET/GROUP/FROM TO",
		Short:   "rename an object or a directory of a group",
		Long:    mvHelp,
		Example: mvExample,
		Args:    argsBetween(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMv(cmd.Context(), newTool(c, conn), args[0], args[1])
		},
	}
}

const mvHelp = `Renames object FROM of the group to TO, a path in the same group (a full
BUCKET/GROUP/TO of the same group is accepted too). When FROM is a directory,
every name under it moves, in one compare-and-swap: readers on other hosts
see either the old names or the new ones. When TO is an existing directory
or ends with "/", FROM moves into it. An existing object at TO is replaced.
In the b2cfs format only the index changes; in blazer's, the data is copied
on the server, never downloaded. No mount is needed.
`

const mvExample = `  b2cfs mv my-bucket/deploy/manifests/next.json manifests/current.json
  b2cfs mv my-bucket/deploy/staging releases/v42`

func runMv(ctx context.Context, t *tool, from, dest string) error {
	src, err := parseTarget(from)
	if err != nil {
		return err
	}
	if err := checkUserPath(src); err != nil {
		return err
	}
	to := strings.TrimPrefix(dest, src.Bucket+"/"+src.Group+"/")
	into := to == "" || strings.HasSuffix(to, "/")
	to = strings.TrimSuffix(to, "/")
	if to != "" {
		if err := namespace.CheckPath(to); err != nil {
			return fmt.Errorf("mv: target %q: %w", dest, err)
		}
	}
	defer t.close()
	g, tree, err := t.tree(ctx, src)
	if err != nil {
		return err
	}
	if into || tree.HasDir(to) {
		to = path.Join(to, path.Base(src.Path))
	}
	moves, err := namespace.Moves(tree, src.Path, to)
	if errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("%s: %w", src, core.ErrNotExist)
	}
	if err != nil {
		return fmt.Errorf("mv %s: %w", src, err)
	}
	if len(moves) == 0 {
		return nil
	}
	if err := g.Rename(ctx, moves); err != nil {
		if errors.Is(err, core.ErrConflict) || errors.Is(err, core.ErrNotExist) {
			return fmt.Errorf("mv %s: objects changed while moving (another host wrote meanwhile); nothing was moved, run mv again: %w", src, err)
		}
		return err
	}
	t.log.Debug("moved", "from", src.String(), "to", to, "objects", len(moves))
	return nil
}
