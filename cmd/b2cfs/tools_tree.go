package main

// Tree transfers: "put -r" stores a local directory tree as objects under a
// prefix in one compare-and-swap (core's Publish), and "get" writes objects
// of one snapshot of the group to local files.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/namespace"
	"github.com/docker/go-units"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
)

func newGetCmd(c cli, conn *connFlags) *cobra.Command {
	var f getFlags
	cmd := &cobra.Command{
		Use:     "get [flags] BUCKET/GROUP/PATH FILE",
		Short:   "copy objects of a group, or a whole directory (-r), to local files",
		Long:    getHelp,
		Example: getExample,
		Args:    argsBetween(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGet(cmd.Context(), newTool(c, conn), args[0], args[1], f)
		},
	}
	cmd.Flags().BoolVarP(&f.recursive, "recursive", "r", false, "copy every object under PREFIX to DIR")
	cmd.Flags().BoolVar(&f.force, "force", false, "replace existing local files")
	return cmd
}

// getFlags are get's options.
type getFlags struct {
	recursive bool
	force     bool
}

// putTreeBeforePublish, when set by a test, runs after put -r has read the
// keys it replaces and before it uploads.
var putTreeBeforePublish func()

// putTreeUploaded, when set by a test, runs after each finished upload of
// put -r with the number of files staged so far.
var putTreeUploaded func(files int)

// treeFile is a local regular file that put -r stores as object name.
type treeFile struct {
	src   string // local path
	name  string // object name
	size  int64
	mode  os.FileMode
	mtime time.Time
}

// runPutTree stores every regular file under pos[0] as an object under
// the target pos[1], in one Publish.
func runPutTree(ctx context.Context, t *tool, pos []string) error {
	c := t.c
	if len(pos) != 2 || pos[0] == "-" {
		return fmt.Errorf("put -r: want a local DIR and BUCKET/GROUP[/PREFIX] (run \"b2cfs put --help\")")
	}
	tg, err := parseTarget(pos[1])
	if err != nil {
		return err
	}
	if err := checkTreePath(tg); err != nil {
		return err
	}
	start := time.Now()
	files, err := walkTree(pos[0], tg.Path, c.stderr)
	if err != nil {
		return err
	}
	defer t.close()
	// One view gives every precondition.
	g, tree, err := t.tree(ctx, tg)
	if err != nil {
		return err
	}
	if err := checkTreeTargets(tg, tree, files); err != nil {
		return err
	}
	var total int64
	replaced := 0
	changes := make([]core.Change, len(files))
	readers := make([]*lazyFile, len(files))
	for i, f := range files {
		readers[i] = &lazyFile{path: f.src, size: f.size}
		key, _ := tree.File(f.name) // "" creates the object
		if key != "" {
			replaced++
		}
		changes[i] = core.Change{
			Name: f.name,
			Key:  key,
			Data: io.NewSectionReader(readers[i], 0, f.size),
			Size: f.size,
			Opts: []core.CommitOption{core.WithMode(f.mode), core.WithMTime(f.mtime)},
		}
		total += f.size
	}
	defer func() {
		for _, r := range readers {
			r.close()
		}
	}()
	if len(changes) == 0 {
		fmt.Fprintf(c.stdout, "put %s: no files under %s, nothing stored\n", tg, pos[0])
		return nil
	}
	var bar *progressbar.ProgressBar
	if c.stderrTTY {
		bar = newTreeBar(c.stderr, total, fmt.Sprintf("uploading 0/%d files", len(files)))
		for i := range changes {
			changes[i].Data = &progressReaderAt{r: changes[i].Data, size: files[i].size, bar: bar}
		}
	}
	if putTreeBeforePublish != nil {
		putTreeBeforePublish()
	}
	done := 0
	_, err = g.Publish(ctx, changes, func(int64) {
		done++
		if bar != nil {
			bar.Describe(fmt.Sprintf("uploading %d/%d files", done, len(files)))
		}
		if putTreeUploaded != nil {
			putTreeUploaded(done)
		}
	})
	if bar != nil {
		bar.Exit()
	}
	switch {
	case errors.Is(err, core.ErrConflict):
		return fmt.Errorf("put %s: conflict: another writer changed objects of the tree while it was uploading; nothing was stored (run put -r again to replace the newer versions): %w", tg, err)
	case errors.Is(err, core.ErrGroupFull):
		return fmt.Errorf("put %s: the group's index is full; nothing was stored (remove objects or use another group): %w", tg, err)
	case errors.Is(err, core.ErrUnknownOutcome):
		return fmt.Errorf("put %s: B2 did not confirm the commit: either every file of the tree is stored or none is (run \"b2cfs ls\" to see which): %w", tg, err)
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("put %s: interrupted; nothing was stored: %w", tg, err)
	case err != nil:
		return fmt.Errorf("put %s: nothing was stored: %w", tg, err)
	}
	fmt.Fprintf(c.stdout, "put %s: %d files (%d new, %d replaced), %d bytes (%s) in %v\n",
		tg, len(files), len(files)-replaced, replaced, total, units.BytesSize(float64(total)), time.Since(start).Round(time.Millisecond))
	return nil
}

// walkTree returns the regular files under dir, sorted, with their object
// names under prefix. Symbolic links and other special files are skipped
// with a warning on warn; directories only give their files' names.
func walkTree(dir, prefix string, warn io.Writer) ([]treeFile, error) {
	root, err := filepath.EvalSymlinks(dir) // a link to the tree names the tree
	if err != nil {
		return nil, fmt.Errorf("put -r: %w", err)
	}
	if fi, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("put -r: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("put -r: %s is not a directory", dir)
	}
	var files []treeFile
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		shown := filepath.Join(dir, strings.TrimPrefix(p, root))
		switch {
		case d.IsDir():
			return nil
		case d.Type()&fs.ModeSymlink != 0:
			fmt.Fprintf(warn, "b2cfs: put: skipping symbolic link %s\n", shown)
			return nil
		case !d.Type().IsRegular():
			fmt.Fprintf(warn, "b2cfs: put: skipping %s: not a regular file\n", shown)
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := path.Join(prefix, filepath.ToSlash(rel))
		if err := namespace.CheckPath(name); err != nil {
			return fmt.Errorf("%s: %w", shown, err)
		}
		files = append(files, treeFile{src: p, name: name, size: fi.Size(), mode: fi.Mode(), mtime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("put -r: %w", err)
	}
	return files, nil
}

// checkTreeTargets refuses, before anything is uploaded, a tree that does
// not fit the group: a file where the group has a directory or a symbolic
// link, or a directory where it has an object.
func checkTreeTargets(tg target, tree *namespace.Tree, files []treeFile) error {
	checked := map[string]bool{}
	for _, f := range files {
		if tree.HasDir(f.name) {
			return fmt.Errorf("put %s: %q is a directory in the group; nothing was stored", tg, f.name)
		}
		if e, _ := tree.Entry(f.name); e.IsLink() {
			return fmt.Errorf("put %s: %q is a symbolic link in the group; nothing was stored", tg, f.name)
		}
		for d := path.Dir(f.name); d != "." && !checked[d]; d = path.Dir(d) {
			checked[d] = true
			if tree.HasFile(d) {
				return fmt.Errorf("put %s: %q is an object in the group, where the tree needs a directory; nothing was stored", tg, d)
			}
		}
	}
	return nil
}

// lazyFile reads a local file for an upload. It opens the file on the
// first read and closes it once a read reached the end and no other read
// runs, so that a large tree does not hold every file open; a retried
// upload opens it again.
type lazyFile struct {
	path string
	size int64

	mu    sync.Mutex
	f     *os.File // GUARDED_BY(mu)
	users int      // GUARDED_BY(mu)
	ended bool     // GUARDED_BY(mu)
}

func (l *lazyFile) ReadAt(b []byte, off int64) (int, error) {
	l.mu.Lock()
	if l.f == nil {
		f, err := os.Open(l.path)
		if err != nil {
			l.mu.Unlock()
			return 0, err
		}
		l.f = f
	}
	f := l.f
	l.users++
	l.mu.Unlock()
	n, err := f.ReadAt(b, off)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.users--
	if off+int64(n) >= l.size || err != nil {
		l.ended = true
	}
	if l.ended && l.users == 0 {
		l.f.Close()
		l.f, l.ended = nil, false
	}
	return n, err
}

func (l *lazyFile) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// newTreeBar returns a progress bar of total bytes on w (total < 0: an
// unknown total).
func newTreeBar(w io.Writer, total int64, desc string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

const getHelp = `Copies the current version of object PATH to the local FILE (into it when
FILE is a directory).

  b2cfs get -r [flags] BUCKET/GROUP[/PREFIX] DIR

With -r, get copies every object under PREFIX (the whole group when PREFIX
is left out) to DIR/relative/path, creating DIR and the directories in it,
as "put -r" stored them. Every object comes from one
snapshot of the group's index, so the copy is a consistent set of versions
even while other hosts write. Objects are downloaded eight at a time, each
to a temporary name, and renamed into place only once all downloads have
finished: a failed get leaves no file under its final name. Permission bits
and modification times are set where the group records them (the b2cfs
format), symbolic links are created as links, and names under .b2cfs/ are
skipped. get -r prints a summary line on stdout.
An existing local file is never replaced unless --force is given. A progress
bar is drawn on stderr when stderr is a terminal. No mount is needed.
`

const getExample = `  b2cfs get my-bucket/deploy/manifests/current.json current.json
  b2cfs get -r my-bucket/deploy/releases/v42 ./v42`

// getFile is one local file get writes: object name (version key) to dst,
// through the temporary file tmp.
type getFile struct {
	name, key string
	entry     core.Entry
	dst, tmp  string
}

func runGet(ctx context.Context, t *tool, src, dest string, o getFlags) error {
	c := t.c
	tg, err := parseTarget(src)
	if err != nil {
		return err
	}
	if err := checkTreePath(tg); err != nil {
		return err
	}
	if !o.recursive {
		if err := checkUserPath(tg); err != nil {
			return err
		}
	}
	start := time.Now()
	defer t.close()
	g, tree, err := t.tree(ctx, tg) // one snapshot for every object
	if err != nil {
		return err
	}
	var files []*getFile
	var dirs []string // local directories to create, parents first
	if o.recursive {
		files, dirs, err = getTreePlan(c.stderr, tg, tree, dest)
	} else {
		files, err = getOnePlan(tg, tree, dest)
	}
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := checkGetDest(f.dst, o.force); err != nil {
			return err
		}
	}
	var made []string // directories this run created, to remove on failure
	fail := func(err error) error {
		for _, f := range files {
			if f.tmp != "" {
				os.Remove(f.tmp)
			}
		}
		for i := len(made) - 1; i >= 0; i-- {
			os.Remove(made[i]) // only if still empty
		}
		return err
	}
	for _, d := range dirs {
		if err := mkdirTracked(d, &made); err != nil {
			return fail(fmt.Errorf("get: %w", err))
		}
	}
	var total int64
	for _, f := range files {
		if !f.entry.IsLink() {
			total += f.entry.Size
		}
	}
	var bar *progressbar.ProgressBar
	if c.stderrTTY && len(files) > 0 {
		if g.Format() != core.FormatB2cfs {
			total = -1 // blazer's index records no sizes
		}
		bar = newTreeBar(c.stderr, total, fmt.Sprintf("downloading %d files", len(files)))
	}
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(getDownloads)
	var written int64
	var wmu sync.Mutex
	for _, f := range files {
		eg.Go(func() error {
			n, err := fetchGetFile(ectx, g, f, bar)
			wmu.Lock()
			written += n
			wmu.Unlock()
			return err
		})
	}
	err = eg.Wait()
	if bar != nil {
		bar.Exit()
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("interrupted: %w", ctx.Err())
		}
		return fail(fmt.Errorf("get %s: %w; no file was written", tg, err))
	}
	// Every download is complete: only now do files take their names.
	for _, f := range files {
		if !o.force {
			if err := checkGetDest(f.dst, false); err != nil {
				return fail(err)
			}
		}
		if err := os.Rename(f.tmp, f.dst); err != nil {
			return fail(fmt.Errorf("get: %w", err))
		}
		f.tmp = ""
	}
	if o.recursive {
		fmt.Fprintf(c.stdout, "get %s: %d files, %d bytes (%s) in %v\n",
			tg, len(files), written, units.BytesSize(float64(written)), time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// getDownloads is how many downloads of get run at once (as many as the
// uploads of put -r).
const getDownloads = 8

// getOnePlan plans get of one object to dest (into dest when it is a
// directory).
func getOnePlan(tg target, tree *namespace.Tree, dest string) ([]*getFile, error) {
	key, ok := tree.File(tg.Path)
	if !ok {
		return nil, notFound(tree, tg)
	}
	if fi, err := os.Stat(dest); err == nil && fi.IsDir() {
		dest = filepath.Join(dest, path.Base(tg.Path))
	}
	return []*getFile{{name: tg.Path, key: key, entry: entryOf(tree, tg.Path), dst: dest}}, nil
}

// getTreePlan plans get -r of the directory tg.Path to dir: the files, and
// the local directories to create (dir itself and the group's directories
// under tg.Path, parents first). Names that cannot be local paths are
// skipped with a warning on warn.
func getTreePlan(warn io.Writer, tg target, tree *namespace.Tree, dir string) ([]*getFile, []string, error) {
	if tree.HasFile(tg.Path) && !tree.HasDir(tg.Path) {
		return nil, nil, fmt.Errorf("get -r %s: is an object, not a directory (run get without -r)", tg)
	}
	if !tree.HasDir(tg.Path) {
		return nil, nil, fmt.Errorf("%s: %w", tg, core.ErrNotExist)
	}
	rel := func(p string) (string, bool) {
		if tg.Path == "" {
			return p, true
		}
		return strings.CutPrefix(p, tg.Path+"/")
	}
	local := func(r string) (string, bool) {
		for _, el := range strings.Split(r, "/") {
			if el == "." || el == ".." {
				return "", false
			}
		}
		return filepath.Join(dir, filepath.FromSlash(r)), true
	}
	dirs := []string{dir}
	for d := range tree.Dirs() {
		if r, ok := rel(d); ok && d != tg.Path {
			if p, ok := local(r); ok {
				dirs = append(dirs, p)
			}
		}
	}
	sort.Strings(dirs[1:])
	var files []*getFile
	for name, key := range tree.Files() {
		r, ok := rel(name)
		if !ok {
			continue
		}
		p, ok := local(r)
		switch {
		case !ok:
			fmt.Fprintf(warn, "b2cfs: get: skipping %q: not a local path\n", name)
			continue
		case tree.HasDir(name):
			fmt.Fprintf(warn, "b2cfs: get: skipping object %q: it is a directory too\n", name)
			continue
		}
		files = append(files, &getFile{name: name, key: key, entry: entryOf(tree, name), dst: p})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	return files, dirs, nil
}

// checkGetDest refuses to replace a directory, or an existing file unless
// force.
func checkGetDest(dst string, force bool) error {
	fi, err := os.Lstat(dst)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("get: %w", err)
	case fi.IsDir():
		return fmt.Errorf("get: %s is a directory", dst)
	case !force:
		return fmt.Errorf("get: %s exists (use --force to replace it); no file was written", dst)
	}
	return nil
}

// mkdirTracked creates dir and its missing parents, appending each one it
// created to made.
func mkdirTracked(dir string, made *[]string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirTracked(parent, made); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o777); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	*made = append(*made, dir)
	return nil
}

// fetchGetFile writes version f.key of f.name to a new temporary file
// beside f.dst (f.tmp) with the mode and times the index records, and
// returns the bytes written.
func fetchGetFile(ctx context.Context, g *core.Group, f *getFile, bar *progressbar.ProgressBar) (int64, error) {
	dir := filepath.Dir(f.dst)
	if f.entry.IsLink() {
		for {
			tmp := tempName(dir)
			err := os.Symlink(f.entry.Link, tmp)
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			if err != nil {
				return 0, err
			}
			f.tmp = tmp
			return 0, nil
		}
	}
	var out *os.File
	for {
		tmp := tempName(dir)
		var err error
		out, err = os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666) // umask applies
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		f.tmp = tmp
		break
	}
	var w io.Writer = out
	if bar != nil {
		w = io.MultiWriter(out, bar)
	}
	n, err := io.Copy(w, g.OpenVersion(ctx, f.name, f.key))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("%s: %w", f.name, err)
	}
	if mode, ok := f.entry.FileMode(); ok {
		if err := os.Chmod(f.tmp, mode.Perm()); err != nil {
			return n, err
		}
	}
	if f.entry.MTime != 0 {
		mtime := time.Unix(0, f.entry.MTime)
		atime := mtime
		if f.entry.ATime != 0 {
			atime = time.Unix(0, f.entry.ATime)
		}
		if err := os.Chtimes(f.tmp, atime, mtime); err != nil {
			return n, err
		}
	}
	return n, nil
}

// tempName returns a random name in dir for a file get renames later.
func tempName(dir string) string {
	var b [8]byte
	rand.Read(b[:]) // crypto/rand never fails on supported platforms
	return filepath.Join(dir, ".b2cfs-get-"+hex.EncodeToString(b[:]))
}

// entryOf returns the index entry of name in tree, the zero Entry when it
// has none.
func entryOf(tree *namespace.Tree, name string) core.Entry {
	e, _ := tree.Entry(name)
	return e
}
