package main

// The group tools: ls, cat, put (tools_put.go), rm, mv and status
// (tools_status.go) work on a group without a mount, through the same core
// engine as the mount.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/b2"
	"golang.org/x/term"
)

func init() {
	tools := []struct {
		name, summary string
		run           func(context.Context, cli, []string) error
	}{
		{"ls", "list the objects of a group like a directory", runLs},
		{"cat", "write objects of a group to stdout", runCat},
		{"put", "store a file or stdin as an object of a group", runPut},
		{"rm", "remove objects from a group", runRm},
		{"mv", "rename an object or a directory of a group", runMv},
		{"status", "show a group's size, index use and held locks", runStatus},
	}
	for _, t := range tools {
		run := t.run
		commands[t.name] = command{
			summary: t.summary,
			run:     func(ctx context.Context, args []string) error { return run(ctx, osCLI(), args) },
		}
	}
}

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

// tool is one run of a group tool: its flags, and the stores and groups it
// opened (closed by close).
type tool struct {
	name  string
	c     cli
	flags *flag.FlagSet
	conn  connFlags
	log   *slog.Logger

	stores map[string]*b2.Store   // by bucket
	groups map[string]*core.Group // by "bucket/group"
	format string                 // format of groups this run creates ("": core's default)
}

// newTool returns a tool whose --help prints help, the options and example.
func newTool(c cli, name, help, example string) *tool {
	t := &tool{name: name, c: c, stores: map[string]*b2.Store{}, groups: map[string]*core.Group{}}
	t.flags = flag.NewFlagSet(name, flag.ContinueOnError)
	t.flags.SetOutput(c.stderr)
	t.flags.Usage = func() {
		fmt.Fprint(t.flags.Output(), help)
		fmt.Fprint(t.flags.Output(), "\nOptions:\n")
		t.flags.PrintDefaults()
		fmt.Fprint(t.flags.Output(), example)
	}
	t.conn.register(t.flags)
	return t
}

// parse parses flags placed before, between or after the arguments (up to a
// "--") and checks that there are min to max arguments.
func (t *tool) parse(args []string, min, max int) ([]string, error) {
	var pos []string
	for {
		if err := t.flags.Parse(args); err != nil {
			return nil, err
		}
		rest := t.flags.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	t.log = newLogger(t.c.stderr, t.conn.verbose)
	if len(pos) < min || len(pos) > max {
		return nil, fmt.Errorf("%s: wrong number of arguments (run \"b2cfs %s --help\")", t.name, t.name)
	}
	return pos, nil
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

// tree opens tg's group and returns it with its names as a directory tree,
// from a view no older than the index TTL.
func (t *tool) tree(ctx context.Context, tg target) (*core.Group, *groupTree, error) {
	g, err := t.group(ctx, tg)
	if err != nil {
		return nil, nil, err
	}
	entries, err := g.Entries(ctx)
	if err != nil {
		return nil, nil, err
	}
	return g, newGroupTree(entries), nil
}

func (t *tool) close() {
	for _, g := range t.groups {
		g.Close()
	}
	for _, s := range t.stores {
		s.Close()
	}
}

// dirMarkers prefixes the objects that keep empty directories made with
// mkdir in a mount (see package fs).
const dirMarkers = core.DirMarkers

func checkUserPath(tg target) error {
	if tg.Path == "" {
		return fmt.Errorf("%s: no object path: want BUCKET/GROUP/PATH", tg)
	}
	if core.Reserved(tg.Path) {
		return fmt.Errorf("%s: names under %s are reserved for b2cfs", tg, core.ReservedPrefix)
	}
	return nil
}

// groupTree is the directory view of an index: user objects, and the
// directories implied by "/" in their names or kept by markers.
type groupTree struct {
	entries map[string]string // the whole index, reserved names included
	files   map[string]string // user object -> key
	dirs    map[string]bool   // directory paths; "" is the root
}

func newGroupTree(entries map[string]string) *groupTree {
	t := &groupTree{entries: entries, files: map[string]string{}, dirs: map[string]bool{"": true}}
	addParents := func(p string) {
		for i := strings.LastIndexByte(p, '/'); i > 0; i = strings.LastIndexByte(p[:i], '/') {
			t.dirs[p[:i]] = true
		}
	}
	for name, key := range entries {
		switch {
		case strings.HasPrefix(name, dirMarkers):
			d := name[len(dirMarkers):]
			t.dirs[d] = true
			addParents(d)
		case core.Reserved(name):
		default:
			t.files[name] = key
			addParents(name)
		}
	}
	return t
}

// children returns the files and subdirectories directly in dir, sorted,
// as full paths.
func (t *groupTree) children(dir string) (files, dirs []string) {
	under := func(p string) bool {
		if dir == "" {
			return !strings.Contains(p, "/")
		}
		return strings.HasPrefix(p, dir+"/") && !strings.Contains(p[len(dir)+1:], "/")
	}
	for f := range t.files {
		if under(f) {
			files = append(files, f)
		}
	}
	for d := range t.dirs {
		if d != "" && under(d) {
			dirs = append(dirs, d)
		}
	}
	sort.Strings(files)
	sort.Strings(dirs)
	return files, dirs
}

// empty reports whether directory dir holds nothing.
func (t *groupTree) empty(dir string) bool {
	f, d := t.children(dir)
	return len(f) == 0 && len(d) == 0
}

// notFound explains a missing path, telling a directory from nothing.
func (t *groupTree) notFound(tg target) error {
	if t.dirs[tg.Path] {
		return fmt.Errorf("%s: is a directory", tg)
	}
	return fmt.Errorf("%s: %w", tg, core.ErrNotExist)
}

const lsHelp = `usage: b2cfs ls [options] BUCKET/GROUP[/PATH]

Lists the objects of a group like a directory: the files and subdirectories
directly under PATH (the group's root when PATH is left out), one a line,
directories with a trailing "/". PATH may also name one object. Names under
.b2cfs/ (b2cfs's own lock records and directory markers) are not shown.
With -l each line has the size in bytes and the modification time.
No mount is needed.
`

const lsExample = `
Example:
  export B2_APPLICATION_KEY_ID=... B2_APPLICATION_KEY=...
  b2cfs ls -l my-bucket/deploy/manifests
`

func runLs(ctx context.Context, c cli, args []string) error {
	t := newTool(c, "ls", lsHelp, lsExample)
	long := t.flags.Bool("l", false, "show size and modification time")
	pos, err := t.parse(args, 1, 1)
	if err != nil {
		return err
	}
	tg, err := parseTarget(pos[0])
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
	case tg.Path != "" && tree.files[tg.Path] != "" && !tree.dirs[tg.Path]:
		files = []string{tg.Path}
	case tree.dirs[tg.Path]:
		files, dirs = tree.children(tg.Path)
		if tg.Path != "" {
			rel = func(p string) string { return p[len(tg.Path)+1:] }
		}
	default:
		return fmt.Errorf("%s: %w", tg, core.ErrNotExist)
	}
	if !*long {
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
		fi, err := g.Stat(ctx, f, tree.files[f])
		if err != nil {
			return err
		}
		infos[f] = fi
		width = max(width, len(fmt.Sprint(fi.Size)))
	}
	snap, err := g.Snapshot(ctx) // symbolic links' targets (the b2cfs format)
	if err != nil {
		return err
	}
	for _, e := range mergeListing(files, dirs) {
		if fi, ok := infos[e]; ok {
			name := rel(e)
			if l := snap[e]; l.IsLink() {
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

const catHelp = `usage: b2cfs cat [options] BUCKET/GROUP/PATH...

Writes the current version of each object to stdout, in order. A version
that another host replaces meanwhile is still read to its end.
No mount is needed.
`

const catExample = `
Example:
  b2cfs cat my-bucket/deploy/release-counter
  b2cfs cat --credentials /etc/b2cfs/creds my-bucket/deploy/a my-bucket/deploy/b > both
`

func runCat(ctx context.Context, c cli, args []string) error {
	t := newTool(c, "cat", catHelp, catExample)
	pos, err := t.parse(args, 1, 1<<20)
	if err != nil {
		return err
	}
	return t.eachObject(ctx, pos, func(tg target) error {
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
		if entries, err := g.Entries(ctx); err == nil {
			return newGroupTree(entries).notFound(tg)
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

const rmHelp = `usage: b2cfs rm [options] BUCKET/GROUP/PATH...

Removes objects from their group: each name leaves the group's index with one
compare-and-swap. The data stays readable for hosts that have the object
open; "b2cfs gc" deletes it once nothing references it.
No mount is needed.
`

const rmExample = `
Example:
  b2cfs rm my-bucket/deploy/manifests/old.json
`

func runRm(ctx context.Context, c cli, args []string) error {
	t := newTool(c, "rm", rmHelp, rmExample)
	pos, err := t.parse(args, 1, 1<<20)
	if err != nil {
		return err
	}
	return t.eachObject(ctx, pos, checkUserPath, rmOne)
}

func rmOne(ctx context.Context, t *tool, tg target) error {
	g, err := t.group(ctx, tg)
	if err != nil {
		return err
	}
	// A key that changes under us is retried: rm removes whatever is
	// there, as unlink does.
	for attempt := 0; ; attempt++ {
		entries, err := g.Entries(ctx)
		if err != nil {
			return err
		}
		tree := newGroupTree(entries)
		key, ok := tree.files[tg.Path]
		if !ok {
			return tree.notFound(tg)
		}
		err = g.Remove(ctx, key, tg.Path)
		if err == nil {
			t.log.Debug("removed", "object", tg.String(), "key", key)
			return nil
		}
		if !errors.Is(err, core.ErrConflict) || attempt == 2 {
			return err
		}
	}
}

const mvHelp = `usage: b2cfs mv [options] BUCKET/GROUP/FROM TO

Renames object FROM of the group to TO, a path in the same group (a full
BUCKET/GROUP/TO of the same group is accepted too). When FROM is a directory,
every name under it moves, in one compare-and-swap: readers on other hosts
see either the old names or the new ones. When TO is an existing directory
or ends with "/", FROM moves into it. An existing object at TO is replaced.
In the b2cfs format only the index changes; in blazer's, the data is copied
on the server, never downloaded. No mount is needed.
`

const mvExample = `
Example:
  b2cfs mv my-bucket/deploy/manifests/next.json manifests/current.json
  b2cfs mv my-bucket/deploy/staging releases/v42
`

func runMv(ctx context.Context, c cli, args []string) error {
	t := newTool(c, "mv", mvHelp, mvExample)
	pos, err := t.parse(args, 2, 2)
	if err != nil {
		return err
	}
	src, err := parseTarget(pos[0])
	if err != nil {
		return err
	}
	if err := checkUserPath(src); err != nil {
		return err
	}
	to := strings.TrimPrefix(pos[1], src.Bucket+"/"+src.Group+"/")
	into := to == "" || strings.HasSuffix(to, "/")
	to = strings.TrimSuffix(to, "/")
	if to != "" {
		if err := core.CheckName(to); err != nil {
			return fmt.Errorf("mv: target %q: %w", pos[1], err)
		}
		if core.Reserved(to) {
			return fmt.Errorf("mv: target %q: names under %s are reserved for b2cfs", pos[1], core.ReservedPrefix)
		}
	}
	defer t.close()
	g, tree, err := t.tree(ctx, src)
	if err != nil {
		return err
	}
	if into || tree.dirs[to] {
		to = path.Join(to, path.Base(src.Path))
	}
	moves, err := mvMoves(tree, src, to)
	if err != nil {
		return err
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

// mvMoves returns the renames that move src.Path to to, as a mount's
// rename does: one object, or a directory with everything in it (markers
// of empty subdirectories included).
func mvMoves(tree *groupTree, src target, to string) ([]core.Move, error) {
	from := src.Path
	if from == to {
		return nil, nil
	}
	if key, ok := tree.files[from]; ok {
		if tree.dirs[to] {
			return nil, fmt.Errorf("mv %s: target %q is a directory", src, to)
		}
		// A target is replaced only at the version just read.
		return []core.Move{{From: from, To: to, Key: key, ToKey: tree.files[to]}}, nil
	}
	if !tree.dirs[from] {
		return nil, fmt.Errorf("%s: %w", src, core.ErrNotExist)
	}
	if _, ok := tree.files[to]; ok {
		return nil, fmt.Errorf("mv %s: target %q is not a directory", src, to)
	}
	if tree.dirs[to] && !tree.empty(to) {
		return nil, fmt.Errorf("mv %s: target directory %q is not empty", src, to)
	}
	if strings.HasPrefix(to, from+"/") {
		return nil, fmt.Errorf("mv %s: cannot move a directory into itself (%q)", src, to)
	}
	return core.DirMoves(tree.entries, from, to), nil
}
