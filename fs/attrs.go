package fs

import (
	"context"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/b2cfs/b2cfs/core"
)

// attrDelay is how long chmod and utimes changes wait to be committed
// together.
const attrDelay = 100 * time.Millisecond

// attrQueue holds chmod and utimes changes not yet in the index, for groups
// whose format keeps modes and times (core.FormatB2cfs). A change to a file
// with unsaved data goes with that data's commit; the others are committed
// together every attrDelay, so "tar x" and "cp -p" of many files cost one
// extra commit in all rather than one per file. This host sees a change at
// once; other hosts once it is committed. Safe for concurrent use.
type attrQueue struct {
	mu      sync.Mutex
	pending map[string]pendingAttr // GUARDED_BY(mu); by path
	kick    chan struct{}          // has an element when pending is not empty
}

// pendingAttr is one file's uncommitted attributes.
type pendingAttr struct {
	mode     os.FileMode
	hasMode  bool
	mtime    time.Time
	hasMtime bool
}

func newAttrQueue() *attrQueue {
	return &attrQueue{pending: map[string]pendingAttr{}, kick: make(chan struct{}, 1)}
}

// set records mode and/or mtime for path.
func (q *attrQueue) set(path string, mode *os.FileMode, mtime *time.Time) {
	q.mu.Lock()
	a := q.pending[path]
	if mode != nil {
		a.mode, a.hasMode = *mode, true
	}
	if mtime != nil {
		a.mtime, a.hasMtime = *mtime, true
	}
	q.pending[path] = a
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// get returns path's uncommitted attributes.
func (q *attrQueue) get(path string) (pendingAttr, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	a, ok := q.pending[path]
	return a, ok
}

// take removes path's uncommitted attributes and returns them as options
// for a commit of its data.
func (q *attrQueue) take(path string) []core.CommitOption {
	q.mu.Lock()
	a, ok := q.pending[path]
	delete(q.pending, path)
	q.mu.Unlock()
	if !ok {
		return nil
	}
	return a.options()
}

// move follows a rename of from (a file or a directory) to to.
func (q *attrQueue) move(from, to string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for p, a := range q.pending {
		if p == from || strings.HasPrefix(p, from+"/") {
			delete(q.pending, p)
			q.pending[to+p[len(from):]] = a
		}
	}
}

// restore puts back options taken for a commit that failed.
func (q *attrQueue) restore(path string, a pendingAttr) {
	q.mu.Lock()
	if _, ok := q.pending[path]; !ok {
		q.pending[path] = a
	}
	q.mu.Unlock()
}

func (a pendingAttr) options() []core.CommitOption {
	var opts []core.CommitOption
	if a.hasMode {
		opts = append(opts, core.WithMode(a.mode))
	}
	if a.hasMtime {
		opts = append(opts, core.WithMTime(a.mtime))
	}
	return opts
}

// flush commits every pending change in one commit. Changes made meanwhile
// wait for the next flush.
func (f *FS) flushAttrs(ctx context.Context) error {
	q := f.attrs
	q.mu.Lock()
	batch := q.pending
	q.pending = map[string]pendingAttr{}
	q.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	changes := make([]core.AttrChange, 0, len(batch))
	for p, a := range batch {
		if f.unsaved(p) {
			q.restore(p, a) // goes with the data's commit
			continue
		}
		changes = append(changes, core.AttrChange{Name: p, Opts: a.options()})
	}
	if err := f.g.SetAttrs(ctx, changes); err != nil {
		for p, a := range batch {
			q.restore(p, a)
		}
		return err
	}
	return nil
}

// runAttrs commits queued attribute changes until the file system shuts
// down; Shutdown flushes what is left.
func (f *FS) runAttrs() {
	for {
		select {
		case <-f.life.Done():
			return
		case <-f.attrs.kick:
		}
		select {
		case <-f.life.Done():
			return
		case <-time.After(attrDelay):
		}
		ctx, cancel := context.WithTimeout(f.life, time.Minute)
		if err := f.flushAttrs(ctx); err != nil {
			f.log.Warn("mode and time changes not committed yet, will retry", "err", err)
			select {
			case f.attrs.kick <- struct{}{}:
			default:
			}
		}
		cancel()
	}
}

// unsaved reports whether the file at p has a handle with unsaved changes.
func (f *FS) unsaved(p string) bool {
	f.mu.Lock()
	n := f.nodes[p]
	f.mu.Unlock()
	fl, ok := n.(*file)
	return ok && fl.changed()
}

// keepsAttrs reports whether the group records modes and times.
func (f *FS) keepsAttrs() bool { return f.g.Format() == core.FormatB2cfs }

// fileAttrs returns the mode and, if known, the modification time of the
// file at p, from uncommitted changes first, then its index entry e.
func (f *FS) fileAttrs(p string, e core.Entry) (mode os.FileMode, mtime time.Time, hasMtime bool) {
	mode = f.fileMode()
	if !f.keepsAttrs() {
		return mode, time.Time{}, false
	}
	if e.Mode != 0 {
		mode = os.FileMode(e.Mode).Perm()
	}
	a, ok := f.attrs.get(p)
	if ok && a.hasMode {
		mode = a.mode.Perm()
	}
	return mode, a.mtime, ok && a.hasMtime
}
