package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"bazil.org/fuse"
	fusefs "bazil.org/fuse/fs"

	"github.com/b2cfs/b2cfs/cache"
	"github.com/b2cfs/b2cfs/core"
)

// file is one object on this host: one version of it and, once changed,
// the local copy of its new content. Every handle of the file shares this
// one state, as on a local file system: what one process writes, truncates
// or commits, the others see at once.
//
// A version committed by another host is a new file node for new opens
// (Lookup makes it), while open handles keep reading the node, and so the
// version, they opened: the kernel's size and page caches belong to one
// node, so they never cut or mix an open version. The node of a path
// changes in place only when this host commits it, when nothing has it
// open, or when a lock on it is taken (lockTaken).
type file struct {
	nodeBase

	// mu guards the state below. Reads take it shared; writes, truncation
	// and commits take it exclusively, a commit for its whole B2 round trip,
	// so a commit sends exactly the content it leaves behind.
	// LOCK ORDERING: file.mu comes before FS.mu.
	mu       sync.RWMutex
	key      string         // GUARDED_BY(mu); the version this node shows, the base of dirty; "" for none
	entry    core.Entry     // GUARDED_BY(mu); its index entry as last seen (mode, time)
	ver      *cache.Version // GUARDED_BY(mu); local copy of key, held while handles are open
	dirty    *os.File       // GUARDED_BY(mu); the changed content, nil while unchanged
	size     int64          // GUARDED_BY(mu); size of dirty
	mtime    time.Time      // GUARDED_BY(mu); last change of dirty
	baseSize int64          // GUARDED_BY(mu); size of version key, once dirty
	appended bool           // GUARDED_BY(mu); every change to dirty appended to version key (O_APPEND, or past its non-empty end)
	handles  int            // GUARDED_BY(mu); open handles
	unlinked bool           // GUARDED_BY(mu); removed while open: commits nothing
	keepKey  string         // GUARDED_BY(mu); the version the kernel's cached pages belong to
	// writers are the processes (as the kernel named them) that changed
	// dirty: the locks they or their ancestors hold fence its commit.
	writers []uint32 // GUARDED_BY(mu)
	// changers are the lock owners (open file tables) that changed
	// dirty, and failed those whose changes a commit failed to store
	// since they last closed (reported).
	changers map[fuse.LockOwner]bool  // GUARDED_BY(mu)
	failed   map[fuse.LockOwner]error // GUARDED_BY(mu)
}

var (
	_ fusefs.Node          = (*file)(nil)
	_ fusefs.NodeOpener    = (*file)(nil)
	_ fusefs.NodeSetattrer = (*file)(nil)
	_ fusefs.NodeFsyncer   = (*file)(nil)
	_ fusefs.NodeForgetter = (*file)(nil)
)

// Attr reports the size and time of the node's own state: its changed
// content, or its version. Never another version's: the kernel would cut
// an open version to that size.
//
// bazil also calls Attr to answer create and setattr (truncate) after they
// changed B2, with the request's context: an interrupt must not then turn
// their success into EINTR (and leak the handle create made), so Attr does
// not stop for one. Its reads are bounded by the group's own deadlines.
func (n *file) Attr(ctx context.Context, a *fuse.Attr) error {
	ctx = context.WithoutCancel(ctx)
	f := n.fs
	p := n.path()
	n.fillAttr(a, 1)
	n.mu.RLock()
	key, e, dirty, size, mtime := n.key, n.entry, n.dirty != nil, n.size, n.mtime
	if n.unlinked {
		a.Nlink = 0 // open, and no longer in any directory
	}
	n.mu.RUnlock()
	inView := false
	if cur, ok := f.entryOf(ctx, p); ok && cur.Key == key {
		e, inView = cur, true // a chmod or utimes since the node was made
	}
	switch {
	case dirty:
		e.MTime, e.CTime = 0, 0 // the change is newer than the version
	case inView && f.keepsAttrs():
		size, mtime = e.Size, time.Unix(0, e.MTime) // what Stat would read from the same view
	default:
		fi, err := f.g.Stat(ctx, p, key)
		if err != nil {
			return f.errno("getattr", p, err)
		}
		size, mtime = fi.Size, fi.Modified
	}
	a.Size = uint64(size)
	f.metaOf(p, e, f.fileMode(), mtime).fill(a, 0)
	a.Blocks = (a.Size + 511) / 512
	return nil
}

// extendTo moves n in place to version e when e ends a run of appends
// (e.Prev) that the version n shows belongs to, n holds no changes and no
// handle of it is open for writing: its readers read on past the old end,
// as readers of a local file see it grow (tail -f), and what they read
// before stays true. The new local copy starts from the old one and
// downloads only the appended bytes. It reports whether n moved.
//
// What this host last showed a process (lastSeen) stays the old version:
// a process that read it has not read the appended bytes, so a rename or
// unlink based on what it read must still find the file changed (EBUSY),
// and a writer's base must not move under it either.
func (n *file) extendTo(e core.Entry) bool {
	f := n.fs
	if e.Prev == "" {
		return false
	}
	n.mu.Lock()
	cur := n.entry
	inRun := e.Prev == n.key || (cur.Key == n.key && cur.Prev == e.Prev && e.Size > cur.Size)
	if !inRun || n.dirty != nil || n.unlinked || n.hasWriters() {
		n.mu.Unlock()
		return false
	}
	if a, ok := f.attrs.get(n.path()); ok && a.key == n.key {
		n.mu.Unlock()
		return false // a chmod or utimes of the version it shows is on its way
	}
	p := n.path()
	old := n.ver
	n.key, n.entry, n.ver, n.keepKey = e.Key, e, nil, ""
	if old != nil {
		n.ver = f.extension(p, e, old)
	}
	n.mu.Unlock()
	go f.invalidateData(n)
	return true
}

// extension returns the local copy of version e of p, which begins with
// the bytes of old: those are copied, the rest downloaded (nothing when
// e appended nothing). old is released once the copy is complete.
func (f *FS) extension(p string, e core.Entry, old *cache.Version) *cache.Version {
	v := f.c.Open(p, e.Key, func(ctx context.Context, w io.Writer) error {
		k, err := old.CopyTo(ctx, w)
		if err != nil || k >= e.Size {
			return err
		}
		r := f.g.OpenVersion(ctx, p, e.Key)
		defer r.Close()
		if _, err := r.Seek(k, io.SeekStart); err != nil {
			return err
		}
		_, err = io.CopyBuffer(w, r, make([]byte, 1<<20))
		return err
	})
	go func() {
		// The fill ends: its reads have deadlines, and the cache's Close
		// cancels it.
		v.Wait(context.Background())
		old.Release()
	}()
	return v
}

// dropSetID clears the set-user-id bit, and the set-group-id bit of a
// group-executable file, after a write by a process other than root, as
// POSIX asks of write(2); the change goes with the data's commit.
func (n *file) dropSetID() {
	f := n.fs
	if !f.keepsAttrs() {
		return
	}
	p := n.path()
	n.mu.RLock()
	e := n.entry
	e.Key = n.key
	n.mu.RUnlock()
	m := f.metaOf(p, e, f.fileMode(), time.Time{}).mode
	drop := os.ModeSetuid
	if m&0o010 != 0 {
		drop |= os.ModeSetgid
	}
	if m&drop == 0 {
		return
	}
	m &^= drop
	f.attrs.set(p, e.Key, false, attrSet{mode: &m})
}

// refresh takes the attributes of e, the entry of the version n shows as
// a newer view has it (a chmod or utimes since).
func (n *file) refresh(e core.Entry) {
	n.mu.Lock()
	if n.key == e.Key {
		n.entry = e
	}
	n.mu.Unlock()
}

func (n *file) Forget() { n.fs.forget(n) }

// replaceable reports whether a lookup that finds version key may give
// the path a new node: n shows another version and holds no changes.
func (n *file) replaceable(key string) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.key != key && n.dirty == nil
}

// Open attaches a handle to the file's state. A descriptor open for
// writing does direct I/O: its reads and writes reach the file's state
// without the kernel's page cache, which cannot order a page read against
// another process's write and would fill the page with zeros when the
// state was answered short in between (a truncate and rewrite). A node nothing has open
// moves to the current version first (within the view's age, IndexTTL);
// one that is open keeps its version for the new handle too, until a
// lookup gives the path a new node. Handles that were closed and wait only
// for the kernel's (late) release do not count as open.
func (n *file) Open(ctx context.Context, req *fuse.OpenRequest, resp *fuse.OpenResponse) (fusefs.Handle, error) {
	f := n.fs
	p := n.path()
	if !req.Flags.IsReadOnly() && f.cfg.ReadOnly {
		return nil, f.errno("open", p, syscall.EROFS)
	}
	v, err := f.g.View(ctx)
	if err != nil {
		return nil, f.errno("open", p, err)
	}
	e, exists := v.Entry(p)
	active := n.activeHandles()
	n.mu.Lock()
	if !active && n.dirty == nil && !n.unlinked {
		if !exists || e.IsLink() { // removed, or replaced by a link: not this file
			n.mu.Unlock()
			return nil, f.errno("open", p, syscall.ENOENT)
		}
		if e.Key != n.key {
			n.setVersionLocked(e)
		}
	}
	h := n.attach(req.Flags)
	keep := n.keepKey == n.key
	n.keepKey = n.key
	key := n.key
	n.mu.Unlock()
	f.saw(p, key)
	switch {
	case h.write:
		resp.Flags |= fuse.OpenDirectIO
	case keep:
		resp.Flags |= fuse.OpenKeepCache
	}
	if !keep {
		f.invalidateAttr(n) // the size the kernel holds may be another version's
	}
	return h, nil
}

// setVersionLocked makes n show version e, dropping the local copy of the
// one before. LOCKS_REQUIRED(n.mu, exclusive)
func (n *file) setVersionLocked(e core.Entry) {
	if n.ver != nil {
		n.ver.Release()
		n.ver = nil
	}
	n.key, n.entry = e.Key, e
}

// attach counts a new handle of n with flags. Readable handles start
// copying the version to the local cache at once, so that it stays
// readable to its end. LOCKS_REQUIRED(n.mu, exclusive)
func (n *file) attach(flags fuse.OpenFlags) *openFile {
	n.handles++
	if !flags.IsWriteOnly() {
		n.ensureVersionLocked()
	}
	h := &openFile{n: n, write: !flags.IsReadOnly(), append: flags&fuse.OpenAppend != 0}
	f := n.fs
	f.mu.Lock()
	f.open[h] = struct{}{}
	f.mu.Unlock()
	return h
}

// detach drops handle h. The last handle of a file removed while open
// discards its changes: nobody can reach them any more.
func (n *file) detach(h *openFile) {
	f := n.fs
	f.mu.Lock()
	delete(f.open, h)
	f.mu.Unlock()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.handles--
	if n.handles > 0 {
		return
	}
	n.failed = nil // every descriptor has closed: nobody is left to tell
	if n.unlinked && n.dirty != nil {
		f.c.Discard(n.dirty)
		n.dirty = nil
	}
	if n.ver != nil {
		n.ver.Release()
		n.ver = nil
	}
}

// ensureVersionLocked starts the local copy of version key.
// LOCKS_REQUIRED(n.mu, exclusive)
func (n *file) ensureVersionLocked() {
	if n.ver == nil && n.key != "" {
		n.ver = n.fs.version(n.path(), n.key)
	}
}

// version returns the local copy of version key of p, starting its
// download if needed.
func (f *FS) version(p, key string) *cache.Version {
	return f.c.Open(p, key, func(ctx context.Context, w io.Writer) error {
		if f.g.Cached(p, key) {
			if fi, err := f.g.Stat(ctx, p, key); err == nil && fi.Size == 0 {
				return nil // nothing to download
			}
		}
		r := f.g.OpenVersion(ctx, p, key)
		defer r.Close()
		_, err := io.CopyBuffer(w, r, make([]byte, 1<<20))
		return err
	})
}

// read reads the file's state at off.
func (n *file) read(ctx context.Context, buf []byte, off int64) (int, error) {
	n.mu.RLock()
	if n.dirty == nil && n.ver == nil && n.key != "" {
		n.mu.RUnlock()
		n.mu.Lock()
		n.ensureVersionLocked()
		n.mu.Unlock()
		n.mu.RLock()
	}
	defer n.mu.RUnlock()
	var k int
	var err error
	switch {
	case n.dirty != nil:
		k, err = n.dirty.ReadAt(buf, off)
	case n.ver != nil:
		k, err = n.ver.ReadAt(ctx, buf, off)
	default:
		err = io.EOF // created and not written yet
	}
	if err == io.EOF {
		err = nil
	}
	return k, err
}

// ensureDirtyLocked makes the changed copy, from the version unless empty
// is set. LOCKS_REQUIRED(n.mu, exclusive)
func (n *file) ensureDirtyLocked(ctx context.Context, empty bool) error {
	if n.dirty != nil {
		return nil
	}
	c := n.fs.c
	d, err := c.NewFile()
	if err != nil {
		return err
	}
	var size int64
	if n.key != "" {
		n.ensureVersionLocked()
		if empty {
			size, err = n.ver.Wait(ctx) // the base's size, for the append rule
			if err == nil {
				n.baseSize, size = size, 0
			}
		} else if size, err = n.ver.CopyTo(ctx, d); err == nil {
			n.baseSize = size
		}
		if err != nil {
			c.Discard(d)
			return err
		}
	} else {
		n.baseSize = 0
	}
	n.dirty, n.size, n.appended = d, size, !empty
	n.mtime = time.Now()
	return nil
}

// write writes data at off, or at the end of the file with atEnd
// (O_APPEND: the real end, whatever the kernel thinks it is). It returns
// the offset it wrote at.
func (n *file) write(ctx context.Context, data []byte, off int64, atEnd bool, pid uint32, owner fuse.LockOwner) (int, int64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.ensureDirtyLocked(ctx, false); err != nil {
		return 0, off, err
	}
	n.wroteLocked(pid, owner)
	if atEnd {
		off = n.size
	}
	if !atEnd && (off < n.baseSize || n.baseSize == 0) {
		// Not an append: it overwrites, or starts an empty file (as
		// "cp" and "dd" do after truncating), which is a new content.
		n.appended = false
	}
	k, err := n.dirty.WriteAt(data, off)
	if end := off + int64(k); end > n.size {
		n.size = end
	}
	n.mtime = time.Now()
	n.keepKey = "" // direct I/O wrote past the kernel's pages
	if n.handles > 1 {
		// Other descriptors may read through the page cache.
		go n.fs.invalidateData(n)
	}
	return k, off, err
}

// wroteLocked records that process pid, with lock owner owner, changed
// the file's state. LOCKS_REQUIRED(n.mu, exclusive)
func (n *file) wroteLocked(pid uint32, owner fuse.LockOwner) {
	if pid != 0 && !slices.Contains(n.writers, pid) {
		n.writers = append(n.writers, pid)
	}
	if n.changers == nil {
		n.changers = map[fuse.LockOwner]bool{}
	}
	n.changers[owner] = true
}

// truncate sets the size of the file's state.
func (n *file) truncate(ctx context.Context, size int64, pid uint32, owner fuse.LockOwner) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.ensureDirtyLocked(ctx, size == 0); err != nil {
		return err
	}
	n.wroteLocked(pid, owner)
	if err := n.dirty.Truncate(size); err != nil {
		return err
	}
	if size < n.baseSize {
		n.appended = false
	}
	n.size, n.mtime = size, time.Now()
	n.keepKey = ""
	return nil
}

// commit stores the file's changes, if any, as the new version of its
// object if the object still has the version they are based on. Changes
// that only appended to that version are appended to a newer one instead
// (rebase). On failure the changes go to the recovery directory, the file
// shows its version again, and the error says where they are. A file
// removed while open commits nothing. An interrupted caller does not stop
// the commit. The commit is fenced (FS.fence) by the locks of pids and of
// every process that changed the state since its base.
func (n *file) commit(ctx context.Context, pids ...uint32) error {
	ctx = context.WithoutCancel(ctx)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.dirty == nil || n.unlinked {
		return nil
	}
	f := n.fs
	// Fenced by the locks of every process that changed the state, and of
	// the one committing it.
	ctx = f.fence(ctx, append(pids, n.writers...)...)
	n.writers = nil
	changers := n.changers
	n.changers = nil
	p := n.path()
	defer f.settled(n) // a pending file is created now, or never
	pending, took := f.attrs.take(p, n.key)
	opts := pending.options()
	if pending.mtime == nil {
		opts = append(opts, core.WithMTime(n.mtime)) // the last write, not the commit
	}
	if m, ok := n.entry.FileMode(); ok && n.key == "" && pending.mode == nil {
		opts = append(opts, core.WithMode(m)) // a new file: the mode it was created with
	}
	if n.appended && n.key != "" {
		opts = append(opts, core.WithAppended()) // readers elsewhere can read on (extendTo)
	}
	data, size := n.dirty, n.size
	nk, err := f.g.Commit(ctx, p, n.key, data, size, opts...)
	rebased := false
	if errors.Is(err, core.ErrConflict) && n.appended && n.key != "" {
		var r *os.File
		if nk, r, size, err = n.rebaseLocked(ctx, p, opts); err == nil {
			f.c.Discard(n.dirty)
			n.dirty, rebased = r, true
		}
	}
	if err != nil && n.key == "" && size == 0 && len(changers) == 0 && errors.Is(err, core.ErrConflict) {
		// A new file nobody wrote, created elsewhere meanwhile: it opens
		// theirs, as O_CREAT opens an existing file.
		if e, ok := f.entryOf(ctx, p); ok && !e.IsLink() {
			if took {
				f.attrs.restore(p, pending)
			}
			f.c.Discard(n.dirty)
			n.dirty = nil
			n.setVersionLocked(e)
			f.saw(p, e.Key)
			return nil
		}
	}
	if err != nil {
		if took {
			f.attrs.restore(p, pending)
		}
		kept, kerr := f.keep(n.dirty, p, n.key, err)
		n.dirty = nil
		if kerr != nil {
			err = fmt.Errorf("%w; changes could not be kept: %v", err, kerr)
		} else {
			err = fmt.Errorf("%w; changes kept in %s", err, kept)
		}
		for owner := range changers {
			if n.failed == nil {
				n.failed = map[fuse.LockOwner]error{}
			}
			n.failed[owner] = err
		}
		return err
	}
	v, perr := f.c.Put(p, nk, n.dirty, size)
	if perr != nil {
		f.c.Discard(n.dirty) // committed: only the local copy is lost
		v = nil
	}
	if n.ver != nil {
		n.ver.Release()
	}
	if v != nil && n.handles == 0 {
		v.Release()
		v = nil
	}
	n.ver, n.dirty, n.key = v, nil, nk
	n.entry = core.Entry{Key: nk, Mode: n.entry.Mode, Size: size}
	if e, ok := f.entryOf(ctx, p); ok && e.Key == nk {
		n.entry = e
	}
	if rebased {
		// The kernel's pages and size hold this host's bytes at the old
		// end; the version now has the other host's bytes before them.
		n.keepKey = ""
		go f.invalidateData(n)
	} else {
		n.keepKey = nk // the kernel's pages hold what was just written
	}
	f.saw(p, nk)
	return nil
}

// reported returns err, the outcome of a commit made for a close by
// owner, or else the failure of an earlier commit of changes owner made
// (commit records them), and forgets that failure: the earlier commit may
// have been started by another process's close of a shared descriptor (a
// child closing the copy it inherited at exec), and the process that
// wrote must still learn that its changes are only in the recovery
// directory. Each failure is reported once to each owner.
func (n *file) reported(owner fuse.LockOwner, err error) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if failed, ok := n.failed[owner]; ok {
		delete(n.failed, owner)
		if err == nil {
			return failed
		}
	}
	return err
}

// maxRebase bounds the attempts to append to a version that keeps
// changing; between attempts the appender backs off with jitter, so that
// hosts appending to one file at once take turns.
const maxRebase = 32

// rebaseLocked appends the bytes the file's changes added past its base
// to the object's current version, and commits that, as O_APPEND means
// writing at the end wherever the end is. If the object was truncated or
// replaced elsewhere, the bytes go to the end of what it holds now; if it
// was removed, the conflict stands. LOCKS_REQUIRED(n.mu, exclusive)
func (n *file) rebaseLocked(ctx context.Context, p string, opts []core.CommitOption) (string, *os.File, int64, error) {
	tail := io.NewSectionReader(n.dirty, n.baseSize, n.size-n.baseSize)
	backoff := 5 * time.Millisecond
	for try := 0; ; try++ {
		nk, r, size, err := n.appendTo(ctx, p, tail, opts)
		if err == nil || !errors.Is(err, core.ErrConflict) || try+1 >= maxRebase {
			return nk, r, size, err
		}
		time.Sleep(backoff/2 + time.Duration(rand.Int64N(int64(backoff))))
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// appendTo commits the current version of p followed by tail.
func (n *file) appendTo(ctx context.Context, p string, tail *io.SectionReader, opts []core.CommitOption) (string, *os.File, int64, error) {
	f := n.fs
	view, err := f.g.View(ctx)
	if err != nil {
		return "", nil, 0, err
	}
	key, ok := view.Key(p)
	if !ok {
		return "", nil, 0, fmt.Errorf("%w: removed elsewhere", core.ErrConflict)
	}
	r, err := f.c.NewFile()
	if err != nil {
		return "", nil, 0, err
	}
	v := f.version(p, key)
	size, err := v.CopyTo(ctx, r)
	v.Release()
	if err == nil {
		var k int64
		k, err = io.Copy(io.NewOffsetWriter(r, size), io.NewSectionReader(tail, 0, tail.Size()))
		size += k
	}
	var nk string
	if err == nil {
		nk, err = f.g.Commit(ctx, p, key, r, size, append(opts, core.WithAppended())...)
	}
	if err != nil {
		f.c.Discard(r)
		return "", nil, 0, err
	}
	return nk, r, size, nil
}

// Setattr truncates the file's state, by descriptor or by path: a
// truncation with no handle open for writing is committed at once, since
// no close will commit it. chmod and utimes are kept in groups that record
// modes and times (attrs.go) and accepted without change in the others;
// chown only to the mount's owner (checkOwner).
func (n *file) Setattr(ctx context.Context, req *fuse.SetattrRequest, resp *fuse.SetattrResponse) error {
	f := n.fs
	if err := f.checkSetattr(req, n.path()); err != nil {
		return err
	}
	if c, ok := setattrChange(req); ok && f.keepsAttrs() {
		n.mu.RLock()
		key, gone := n.key, n.unlinked
		n.mu.RUnlock()
		if !gone { // an unlinked file's attributes go nowhere
			f.attrs.set(n.path(), key, false, c)
		}
	}
	if !req.Valid.Size() {
		return nil
	}
	// bazil does not pass the truncating lock owner on: 0 stands for it.
	if err := n.truncate(ctx, int64(req.Size), req.Pid, 0); err != nil {
		return f.errno("truncate", n.path(), err)
	}
	if !req.Valid.Handle() && !n.hasWriters() {
		return f.errno("truncate", n.path(), n.commit(ctx, req.Pid))
	}
	return nil
}

// activeHandles reports whether a handle of n is open and not closed.
func (n *file) activeHandles() bool {
	return n.anyHandle(func(h *openFile) bool { return !h.closed.Load() })
}

// hasWriters reports whether a handle open for writing will commit the
// file's state when it closes.
func (n *file) hasWriters() bool {
	return n.anyHandle(func(h *openFile) bool { return h.write })
}

// anyHandle reports whether an open handle of n satisfies ok.
func (n *file) anyHandle(ok func(*openFile) bool) bool {
	n.fs.mu.Lock()
	defer n.fs.mu.Unlock()
	for h := range n.fs.open {
		if h.n == n && ok(h) {
			return true
		}
	}
	return false
}

// Fsync commits the file's state when the descriptor is open for writing
// (a read-only descriptor never publishes content), and any chmod or
// utimes of the file not committed yet. bazil does not say which
// handle an fsync names, so the handle is the one the kernel's id was
// bound to by an earlier request (a descriptor that wrote has made one).
func (n *file) Fsync(ctx context.Context, req *fuse.FsyncRequest) error {
	f := n.fs
	f.mu.Lock()
	h := f.handles[req.Handle]
	f.mu.Unlock()
	var err error
	if h != nil && h.n == n && h.write {
		err = n.commit(ctx, req.Pid)
	}
	if _, pending := f.attrs.get(n.path()); err == nil && pending {
		err = f.flushAttrs(ctx) // a chmod or utimes before the fsync
	}
	return f.errno("fsync", n.path(), err)
}

// unlink marks the file removed while open: it keeps working until its
// last close and commits nothing. It reports whether the file is open.
func (n *file) unlink() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.handles > 0 {
		n.unlinked = true
	}
	return n.unlinked
}

// lockTaken is called once an owner has taken the distributed lock of path
// (flock or fcntl) through node locked. A process that reads under a lock
// must see every commit made under that lock before, even through a
// descriptor it opened earlier: when this host holds no changes to the
// file, its state moves to the version B2 holds now, as NFS revalidates
// its cache when a lock is taken. That is the locked node, which may no
// longer be the path's (a version from another host gave the path a new
// node while it was open), and the path's node.
func (f *FS) lockTaken(ctx context.Context, path string, locked *file) {
	f.mu.Lock()
	cur, _ := f.nodes[path].(*file)
	f.mu.Unlock()
	v, err := f.g.View(ctx) // fresh: taking the lock installed the view
	if err != nil {
		return
	}
	e, ok := v.Entry(path)
	if !ok || e.IsLink() {
		return
	}
	nodes := []*file{locked}
	if cur != nil && cur != locked {
		nodes = append(nodes, cur)
	}
	for _, n := range nodes {
		n.mu.Lock()
		moved := n.dirty == nil && !n.unlinked && e.Key != n.key
		if moved {
			n.setVersionLocked(e)
			if n.handles > 0 {
				n.ensureVersionLocked()
			}
			n.keepKey = ""
		}
		n.mu.Unlock()
		if moved {
			f.saw(path, e.Key)
			f.invalidateData(n)
		}
	}
}
