package fs

import (
	"context"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"bazil.org/fuse"
	fusefs "bazil.org/fuse/fs"

	"github.com/b2cfs/b2cfs/cache"
	"github.com/b2cfs/b2cfs/core"
)

// file is an object of the group.
type file struct {
	nodeBase

	mu      sync.Mutex
	lastKey string      // GUARDED_BY(mu); the version the kernel's cached pages belong to
	handles []*openFile // GUARDED_BY(mu); open handles, oldest first
}

var (
	_ fusefs.Node          = (*file)(nil)
	_ fusefs.NodeOpener    = (*file)(nil)
	_ fusefs.NodeSetattrer = (*file)(nil)
	_ fusefs.NodeFsyncer   = (*file)(nil)
	_ fusefs.NodeForgetter = (*file)(nil)
)

// Attr reports the size and time of the current version, or of the open
// handle's private copy while one has unsaved changes.
//
// bazil also calls Attr to answer create and setattr (truncate) after they
// changed B2, with the request's context: an interrupt must not then turn
// their success into EINTR (and leak the handle create made), so Attr does
// not stop for one. Its reads are bounded by the group's own deadlines.
func (n *file) Attr(ctx context.Context, a *fuse.Attr) error {
	ctx = context.WithoutCancel(ctx)
	f := n.fs
	p := n.path()
	a.Valid = f.cfg.TTL
	a.Inode = inode(p)
	st := n.changed()
	e, err := n.entry(ctx, p) // one view for the key and the mode
	if err != nil && st == nil {
		return f.errno("getattr", p, err)
	}
	mode, mtime, hasMtime := f.fileAttrs(p, e)
	a.Mode = mode
	a.Nlink = 1
	a.Uid, a.Gid = f.cfg.UID, f.cfg.GID
	a.BlockSize = 4096
	if st != nil {
		a.Size, a.Mtime = st.size, st.mtime
	} else {
		fi, err := f.g.Stat(ctx, p, e.Key)
		if err != nil {
			return f.errno("getattr", p, err)
		}
		a.Size, a.Mtime = uint64(fi.Size), fi.Modified
		if hasMtime {
			a.Mtime = mtime
		}
	}
	a.Ctime, a.Atime = a.Mtime, a.Mtime
	a.Blocks = (a.Size + 511) / 512
	return nil
}

// key returns the current key of the object, or the key of an open handle
// when the object is gone (it is still readable through that handle).
func (n *file) key(ctx context.Context, p string) (string, error) {
	e, err := n.entry(ctx, p)
	return e.Key, err
}

// entry returns the object's index entry, or an entry holding only the key
// of an open handle when the object is gone.
func (n *file) entry(ctx context.Context, p string) (core.Entry, error) {
	snap, err := n.fs.g.Snapshot(ctx)
	if err != nil {
		return core.Entry{}, err
	}
	if e, ok := snap[p]; ok {
		return e, nil
	}
	n.mu.Lock()
	hs := append([]*openFile(nil), n.handles...)
	n.mu.Unlock() // handle locks come before node locks
	for i := len(hs) - 1; i >= 0; i-- {
		if k := hs[i].capturedKey(); k != "" {
			return core.Entry{Key: k}, nil
		}
	}
	return core.Entry{}, syscall.ENOENT
}

// changed returns the state of the newest handle with unsaved changes.
func (n *file) changed() *dirtyStat {
	n.mu.Lock()
	defer n.mu.Unlock()
	var best *dirtyStat
	for _, h := range n.handles {
		if st := h.stat.Load(); st != nil && (best == nil || !st.mtime.Before(best.mtime)) {
			best = st
		}
	}
	return best
}

func (n *file) Forget() { n.fs.forget(n) }

// sawKey records that the kernel will now cache pages of version key, and
// reports whether its cached pages already belong to that version.
func (n *file) sawKey(key string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	same := n.lastKey == key
	n.lastKey = key
	return same
}

// Open captures the current key. Readable handles start copying that
// version to the local cache at once, so it stays readable to its end.
func (n *file) Open(ctx context.Context, req *fuse.OpenRequest, resp *fuse.OpenResponse) (fusefs.Handle, error) {
	f := n.fs
	p := n.path()
	if !req.Flags.IsReadOnly() && f.cfg.ReadOnly {
		return nil, f.errno("open", p, syscall.EROFS)
	}
	entries, err := f.g.Entries(ctx)
	if err != nil {
		return nil, f.errno("open", p, err)
	}
	key, ok := entries[p]
	if !ok {
		return nil, f.errno("open", p, syscall.ENOENT)
	}
	h := n.open(key, req.Flags)
	if n.sawKey(key) {
		resp.Flags |= fuse.OpenKeepCache
	} else {
		// The size the kernel holds may be another version's.
		f.invalidateAttr(n)
	}
	return h, nil
}

// open makes a handle on version key.
func (n *file) open(key string, flags fuse.OpenFlags) *openFile {
	f := n.fs
	h := &openFile{n: n, key: key, write: !flags.IsReadOnly()}
	if !flags.IsWriteOnly() {
		h.base = f.version(n.path(), key)
	}
	n.mu.Lock()
	n.handles = append(n.handles, h)
	n.mu.Unlock()
	f.mu.Lock()
	f.open[h] = struct{}{}
	f.mu.Unlock()
	return h
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

// closed forgets handle h.
func (n *file) closed(h *openFile) {
	n.mu.Lock()
	for i, x := range n.handles {
		if x == h {
			n.handles = append(n.handles[:i], n.handles[i+1:]...)
			break
		}
	}
	n.mu.Unlock()
}

// Setattr truncates (through the handle the kernel names, or as a commit of
// its own for truncate(2) on a path). chmod and utimes are kept in groups
// that record modes and times (attrs.go) and accepted without change in the
// others, as chown always is.
func (n *file) Setattr(ctx context.Context, req *fuse.SetattrRequest, resp *fuse.SetattrResponse) error {
	f := n.fs
	if f.cfg.ReadOnly {
		return f.errno("setattr", n.path(), syscall.EROFS)
	}
	if f.keepsAttrs() && (req.Valid.Mode() || req.Valid.Mtime() || req.Valid.MtimeNow()) {
		var mode *os.FileMode
		var mtime *time.Time
		if req.Valid.Mode() {
			m := req.Mode.Perm()
			mode = &m
		}
		if req.Valid.Mtime() {
			mtime = &req.Mtime
		} else if req.Valid.MtimeNow() {
			now := time.Now()
			mtime = &now
		}
		f.attrs.set(n.path(), mode, mtime)
	}
	if !req.Valid.Size() {
		return nil
	}
	var h *openFile
	if req.Valid.Handle() {
		h = f.handleFor(req.Handle, n)
	} else if req.Size == 0 {
		h = n.opening()
	}
	if h != nil {
		return f.errno("truncate", n.path(), h.truncate(ctx, int64(req.Size)))
	}
	return f.errno("truncate", n.path(), n.truncate(ctx, int64(req.Size)))
}

// opening returns the handle being opened with O_TRUNC, if any. Without
// atomic O_TRUNC support (bazil does not offer it) the kernel truncates
// right after the open, by path and without naming the handle: the handle
// is the newest writable one that has seen no request and no change yet.
// Truncating it, not the object, keeps "echo x > f" one commit.
func (n *file) opening() *openFile {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.fs.mu.Lock()
	defer n.fs.mu.Unlock()
	for i := len(n.handles) - 1; i >= 0; i-- {
		if h := n.handles[i]; h.write && !h.bound && h.stat.Load() == nil {
			return h
		}
	}
	return nil
}

// truncate changes the size of the current version with a commit.
func (n *file) truncate(ctx context.Context, size int64) error {
	key, err := n.key(ctx, n.path())
	if err != nil {
		return err
	}
	h := n.open(key, fuse.OpenWriteOnly)
	defer h.release(ctx)
	if err := h.truncate(ctx, size); err != nil {
		return err
	}
	return h.commit(ctx)
}

// Fsync commits the handle the kernel names, or all changed handles of the
// file when it is not known.
func (n *file) Fsync(ctx context.Context, req *fuse.FsyncRequest) error {
	f := n.fs
	if h := f.handleFor(req.Handle, n); h != nil {
		return f.errno("fsync", n.path(), h.commit(ctx))
	}
	n.mu.Lock()
	hs := append([]*openFile(nil), n.handles...)
	n.mu.Unlock()
	for _, h := range hs {
		if err := h.commit(ctx); err != nil {
			return f.errno("fsync", n.path(), err)
		}
	}
	return nil
}

// handleFor returns our handle for the kernel's handle id on n. bazil does
// not tell node methods which handle a request names, so ids are learnt from
// handle requests; an id not seen yet is a handle just opened (for example
// truncation by open(O_TRUNC) comes before any read or write), taken to be
// n's newest writable handle whose id is unknown.
func (f *FS) handleFor(id fuse.HandleID, n *file) *openFile {
	f.mu.Lock()
	h, ok := f.handles[id]
	f.mu.Unlock()
	if ok {
		return h
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(n.handles) - 1; i >= 0; i-- {
		h := n.handles[i]
		if h.write && !h.bound {
			h.bound = true
			f.handles[id] = h
			return h
		}
	}
	return nil
}

// bind records that the kernel calls h id.
func (f *FS) bind(id fuse.HandleID, h *openFile) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !h.bound {
		h.bound = true
		f.handles[id] = h
	}
}

// unbind forgets h.
func (f *FS) unbind(id fuse.HandleID, h *openFile) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.handles[id] == h {
		delete(f.handles, id)
	}
	delete(f.open, h)
}

// lockTaken is called once an owner has taken the distributed lock of path
// (flock or fcntl). A process that reads under a lock must see every commit
// made under that lock before, even through a descriptor it opened earlier:
// when this host holds no changes to the file, its state moves to the
// version B2 holds now, as NFS revalidates its cache when a lock is taken.
func (f *FS) lockTaken(ctx context.Context, path string) {}
