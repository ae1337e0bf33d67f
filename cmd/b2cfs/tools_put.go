package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/b2cfs/b2cfs/core"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

func newPutCmd(c cli, conn *connFlags) *cobra.Command {
	var format string
	var recursive bool
	cmd := &cobra.Command{
		Use:     "put [flags] [FILE|-] BUCKET/GROUP/PATH",
		Short:   "store a file or stdin as an object of a group",
		Long:    putHelp,
		Example: putExample,
		Args:    argsBetween(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			t := newTool(c, conn)
			t.format = format
			if recursive {
				return runPutTree(cmd.Context(), t, args)
			}
			return runPut(cmd.Context(), t, args)
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "on-bucket `FORMAT` if the group is new: b2cfs (default) or blazer (blazer's x/consistent, a few dozen names)")
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "store every file under directory DIR as objects under PREFIX, in one compare-and-swap")
	return cmd
}

const putHelp = `Stores the contents of FILE, or of stdin when FILE is "-" or left out, as
object PATH of the group, creating it or replacing its current version.
The replacement is a compare-and-swap against the version current when put
started: if another host commits PATH meanwhile, put fails with a conflict
and stores nothing (run it again to replace the newer version). Hosts that
have the old version open keep reading it; "b2cfs gc" deletes it later.
A progress bar is drawn on stderr for large inputs when stderr is a terminal.
No mount is needed.

  b2cfs put -r [flags] DIR BUCKET/GROUP[/PREFIX]

With -r, every regular file under the local directory DIR becomes object
PREFIX/relative/path (the group's root when PREFIX is left out), with its
mode and modification time. Files upload eight at a time (small ones go into
the index itself), then ALL of them become visible in one compare-and-swap:
readers see the whole tree or none of it. Existing objects at those paths are
replaced at the versions current when put started; if another host changes
one meanwhile, or put is interrupted, nothing is stored. A path that is a
directory in the group, or an object where the tree needs a directory, is an
error before anything is uploaded. Symbolic links and special files are
skipped with a warning, empty directories are ignored. A summary line is
printed on stdout, and a progress bar over the whole tree on stderr when it
is a terminal.
`

const putExample = `  b2cfs put build/manifest.json my-bucket/deploy/manifests/current.json
  date | b2cfs put my-bucket/deploy/last-run
  b2cfs put -r build/site my-bucket/deploy/releases/v42`

// putBeforeCommit, when set by a test, runs after put has read the key it
// replaces and before it commits.
var putBeforeCommit func()

// progressMin is the smallest input that gets a progress bar.
const progressMin = 8 << 20

// spoolMemMax is how much of a stream put keeps in memory before spooling
// it to a temporary file.
const spoolMemMax = 1 << 20

// runPut stores one object: pos is [FILE|-] BUCKET/GROUP/PATH.
func runPut(ctx context.Context, t *tool, pos []string) error {
	c := t.c
	src := "-"
	if len(pos) == 2 {
		src = pos[0]
	}
	tg, err := parseTarget(pos[len(pos)-1])
	if err != nil {
		return err
	}
	if err := checkUserPath(tg); err != nil {
		return err
	}
	in, err := openInput(src, c.stdin)
	if err != nil {
		return err
	}
	defer in.close()
	defer t.close()
	g, tree, err := t.tree(ctx, tg)
	if err != nil {
		return err
	}
	if tree.HasDir(tg.Path) {
		return fmt.Errorf("put %s: is a directory", tg)
	}
	key, _ := tree.File(tg.Path) // "" creates the object
	var data io.ReaderAt = in.r
	var bar *progressbar.ProgressBar
	if c.stderrTTY && in.size >= progressMin {
		bar = progressbar.NewOptions64(in.size,
			progressbar.OptionSetWriter(c.stderr),
			progressbar.OptionSetDescription("uploading "+tg.Path),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		data = &progressReaderAt{r: in.r, size: in.size, bar: bar}
	}
	if putBeforeCommit != nil {
		putBeforeCommit()
	}
	nk, err := g.Commit(ctx, tg.Path, key, data, in.size)
	if bar != nil {
		bar.Exit()
	}
	if errors.Is(err, core.ErrConflict) {
		return fmt.Errorf("put %s: conflict: another writer changed the object while it was uploading; nothing was stored (run put again to replace the newer version)", tg)
	}
	if errors.Is(err, core.ErrGroupFull) {
		return fmt.Errorf("put %s: the group's index is full; nothing was stored (remove objects or use another group): %w", tg, err)
	}
	if err != nil {
		return err
	}
	t.log.Debug("stored", "object", tg.String(), "bytes", in.size, "key", nk, "replaced", key)
	return nil
}

// input is what put uploads: a file, or stdin held in memory or spooled to
// a temporary file.
type input struct {
	r     io.ReaderAt
	size  int64
	close func()
}

// openInput opens src ("-" is stdin). Regular files are read in place;
// streams are read to their end first, because an upload must know its size
// and may need to read again when a part is retried.
func openInput(src string, stdin io.Reader) (*input, error) {
	var r io.Reader = stdin
	if src != "-" {
		f, err := os.Open(src)
		if err != nil {
			return nil, fmt.Errorf("put: %w", err)
		}
		r = f
	}
	if f, ok := r.(*os.File); ok {
		fi, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("put: %w", err)
		}
		if fi.IsDir() {
			f.Close()
			return nil, fmt.Errorf("put: %s is a directory", src)
		}
		if fi.Mode().IsRegular() {
			// Start where stdin stands, as cat would.
			off, err := f.Seek(0, io.SeekCurrent)
			if err != nil {
				off = 0
			}
			in := &input{r: io.NewSectionReader(f, off, fi.Size()-off), size: fi.Size() - off, close: func() {}}
			if src != "-" {
				in.close = func() { f.Close() }
			}
			return in, nil
		}
		if src != "-" {
			defer f.Close()
		}
	}
	return spool(r)
}

// spool reads r to its end: in memory up to spoolMemMax, else into a
// temporary file removed by close.
func spool(r io.Reader) (*input, error) {
	head, err := io.ReadAll(io.LimitReader(r, spoolMemMax+1))
	if err != nil {
		return nil, fmt.Errorf("put: reading input: %w", err)
	}
	if len(head) <= spoolMemMax {
		return &input{r: bytes.NewReader(head), size: int64(len(head)), close: func() {}}, nil
	}
	tmp, err := os.CreateTemp("", "b2cfs-put-*")
	if err != nil {
		return nil, fmt.Errorf("put: spooling input: %w", err)
	}
	cleanup := func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}
	n, err := io.Copy(tmp, io.MultiReader(bytes.NewReader(head), r))
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("put: spooling input to %s: %w", tmp.Name(), err)
	}
	return &input{r: tmp, size: n, close: cleanup}, nil
}

// progressReaderAt advances a progress bar by the bytes of one file as its
// upload reads them. Parts may be read concurrently and again on retries,
// so the file's count is capped at size.
type progressReaderAt struct {
	r    io.ReaderAt
	size int64
	bar  *progressbar.ProgressBar

	mu   sync.Mutex
	read int64 // GUARDED_BY(mu)
}

func (p *progressReaderAt) ReadAt(b []byte, off int64) (int, error) {
	n, err := p.r.ReadAt(b, off)
	p.mu.Lock()
	next := min(p.read+int64(n), p.size)
	delta := next - p.read
	p.read = next
	p.mu.Unlock()
	if delta > 0 {
		p.bar.Add64(delta) // the bar may be shared by many files (put -r)
	}
	return n, err
}
