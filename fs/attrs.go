package fs

import (
	"context"
	"os"
	"strings"
	"sync"
	"time"

	"bazil.org/fuse"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/namespace"
)

// attrDelay is how long chmod and utimes changes wait to be committed
// together.
const attrDelay = 100 * time.Millisecond

// attrQueue holds chmod and utimes changes not yet in the index, for groups
// whose format keeps modes and times (core.FormatB2cfs). A change to a file
// with unsaved data goes with that data's commit; the others are committed
// together every attrDelay, so "tar x" and "cp -p" of many files cost one
// extra commit in all rather than one per file. This host sees a change at
// once; other hosts once it is committed. A directory's change goes to its
// marker object. Safe for concurrent use.
type attrQueue struct {
	flushing sync.Mutex // held by flushAttrs
	mu       sync.Mutex
	pending  map[string]pendingAttr // GUARDED_BY(mu); by path
	sending  map[string]pendingAttr // GUARDED_BY(mu); taken by a flush that has not returned: still shown
	kick     chan struct{}          // has an element when pending is not empty
}

// attrSet is one chmod or utimes: the attributes it sets.
type attrSet struct {
	mode         *os.FileMode
	mtime, atime *time.Time
}

// setattrChange returns what req sets of mode and times.
func setattrChange(req *fuse.SetattrRequest) (attrSet, bool) {
	var c attrSet
	now := time.Now()
	if req.Valid.Mode() {
		m := modeBits(req.Mode)
		c.mode = &m
	}
	switch {
	case req.Valid.MtimeNow():
		c.mtime = &now
	case req.Valid.Mtime():
		c.mtime = &req.Mtime
	}
	switch {
	case req.Valid.AtimeNow():
		c.atime = &now
	case req.Valid.Atime():
		c.atime = &req.Atime
	}
	return c, c.mode != nil || c.mtime != nil || c.atime != nil
}

// modeBits keeps the permission, set-id and sticky bits of m.
func modeBits(m os.FileMode) os.FileMode {
	return m & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
}

// pendingAttr is one path's uncommitted attributes.
type pendingAttr struct {
	attrSet
	key     string    // the version they were set on ("" for a directory: its marker, whatever version)
	changed time.Time // when they were last set: the change time this host shows
	dir     bool      // the path is a directory: the change goes to its marker
}

// merge returns a with the fields b sets and a does not; a wins.
func (a pendingAttr) merge(b pendingAttr) pendingAttr {
	if a.mode == nil {
		a.mode = b.mode
	}
	if a.mtime == nil {
		a.mtime = b.mtime
	}
	if a.atime == nil {
		a.atime = b.atime
	}
	return a
}

// applies reports whether a was set on version key.
func (a pendingAttr) applies(key string) bool { return a.key == "" || a.key == key }

func newAttrQueue() *attrQueue {
	return &attrQueue{pending: map[string]pendingAttr{}, kick: make(chan struct{}, 1)}
}

// set records c for version key of path (a directory if dir, key "").
// What was pending for another version of path is dropped: that version is
// no longer the path's.
func (q *attrQueue) set(path, key string, dir bool, c attrSet) {
	q.mu.Lock()
	a := pendingAttr{attrSet: c, key: key, changed: time.Now(), dir: dir}
	if old, ok := q.pending[path]; ok && old.key == key {
		a = a.merge(old)
	}
	q.pending[path] = a
	q.mu.Unlock()
	q.wake()
}

// wake makes the flusher run.
func (q *attrQueue) wake() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// get returns path's uncommitted attributes, those a flush is sending
// included.
func (q *attrQueue) get(path string) (pendingAttr, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	a, ok := q.pending[path]
	if !ok {
		a, ok = q.sending[path]
	}
	return a, ok
}

// take removes the uncommitted attributes of version key of path, for a
// commit of its data.
func (q *attrQueue) take(path, key string) (pendingAttr, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	a, ok := q.pending[path]
	if !ok || !a.applies(key) {
		return pendingAttr{}, false
	}
	delete(q.pending, path)
	return a, true
}

// drop forgets what is pending for path, which was removed.
func (q *attrQueue) drop(path string) {
	q.mu.Lock()
	delete(q.pending, path)
	q.mu.Unlock()
}

// move follows a rename of from (a file or a directory) to to, which
// replaces to and what was under it.
func (q *attrQueue) move(from, to string) {
	under := func(p, d string) bool { return p == d || strings.HasPrefix(p, d+"/") }
	q.mu.Lock()
	defer q.mu.Unlock()
	moved := map[string]pendingAttr{}
	for p, a := range q.pending {
		switch {
		case under(p, from):
			moved[to+p[len(from):]] = a
			delete(q.pending, p)
		case under(p, to):
			delete(q.pending, p) // replaced
		}
	}
	for p, a := range moved {
		q.pending[p] = a
	}
}

// restore puts back attributes taken for a commit or flush that failed,
// under what was set since, and wakes the flusher.
func (q *attrQueue) restore(path string, a pendingAttr) {
	q.mu.Lock()
	if cur, ok := q.pending[path]; !ok {
		q.pending[path] = a
	} else if cur.key == a.key {
		q.pending[path] = cur.merge(a)
	}
	q.mu.Unlock()
	q.wake()
}

func (a pendingAttr) options() []core.CommitOption {
	var opts []core.CommitOption
	if a.mode != nil {
		m := *a.mode
		if a.dir {
			m |= os.ModeDir
		}
		opts = append(opts, core.WithMode(m))
	}
	if a.mtime != nil {
		opts = append(opts, core.WithMTime(*a.mtime))
	}
	if a.atime != nil {
		opts = append(opts, core.WithATime(*a.atime))
	}
	return opts
}

// flush commits every pending change in one commit. Changes made meanwhile
// wait for the next flush.
func (f *FS) flushAttrs(ctx context.Context) error {
	q := f.attrs
	q.flushing.Lock() // one flush at a time: sending is its batch
	defer q.flushing.Unlock()
	q.mu.Lock()
	batch := q.pending
	q.pending, q.sending = map[string]pendingAttr{}, batch
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		q.sending = nil
		q.mu.Unlock()
	}()
	if len(batch) == 0 {
		return nil
	}
	changes := make([]core.AttrChange, 0, len(batch))
	for p, a := range batch {
		name := p
		switch {
		case a.dir:
			name = namespace.Marker(p)
		case f.unsaved(p):
			q.restore(p, a) // goes with the data's commit
			continue
		}
		changes = append(changes, core.AttrChange{Name: name, Key: a.key, Opts: a.options()})
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
			f.attrs.wake()
		}
		cancel()
	}
}

// unsaved reports whether the file at p has unsaved changes, or is busy
// (a commit holds it for its round trip): its attributes then wait for the
// next flush rather than hold up this one, and the renames that wait for
// it.
func (f *FS) unsaved(p string) bool {
	f.mu.Lock()
	n := f.nodes[p]
	f.mu.Unlock()
	fl, ok := n.(*file)
	if !ok {
		return false
	}
	if !fl.mu.TryRLock() {
		return true
	}
	defer fl.mu.RUnlock()
	return fl.dirty != nil
}

// keepsAttrs reports whether the group records modes and times.
func (f *FS) keepsAttrs() bool { return f.g.Format() == core.FormatB2cfs }

// meta is what Attr reports of a node besides its size.
type meta struct {
	mode                os.FileMode // permission, set-id and sticky bits
	mtime, atime, ctime time.Time
}

// metaOf returns the attributes of path: those its index entry e records
// (in groups that keep them), else def and the time t, with this host's
// uncommitted changes over them.
func (f *FS) metaOf(p string, e core.Entry, def os.FileMode, t time.Time) meta {
	m := meta{mode: def, mtime: t, atime: t, ctime: t}
	if f.keepsAttrs() {
		at := func(ns int64, or time.Time) time.Time {
			if ns == 0 {
				return or
			}
			return time.Unix(0, ns)
		}
		if mode, ok := e.FileMode(); ok {
			m.mode = modeBits(mode)
		}
		m.mtime = at(e.MTime, t)
		m.atime, m.ctime = at(e.ATime, m.mtime), at(e.CTime, m.mtime)
	}
	if a, ok := f.attrs.get(p); ok && a.applies(e.Key) {
		if a.mode != nil {
			m.mode = *a.mode
		}
		if a.mtime != nil {
			m.mtime = *a.mtime
		}
		if a.atime != nil {
			m.atime = *a.atime
		}
		m.ctime = a.changed
	}
	return m
}

// fill sets the mode and times of a from m; typ is the node's type bits.
func (m meta) fill(a *fuse.Attr, typ os.FileMode) {
	a.Mode = typ | m.mode
	a.Mtime, a.Atime, a.Ctime = m.mtime, m.atime, m.ctime
}
