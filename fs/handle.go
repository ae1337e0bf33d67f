package fs

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"bazil.org/fuse"
	fusefs "bazil.org/fuse/fs"

	"github.com/b2cfs/b2cfs/cache"
)

// openFile is an open file: the version captured at open and, once
// changed, a private copy on local disk.
type openFile struct {
	n     *file
	write bool
	bound bool // GUARDED_BY(n.fs.mu); its kernel id is in FS.handles

	// stat is the size and time of the private copy, nil while there is
	// none. Read without mu by file.Attr.
	stat atomic.Pointer[dirtyStat]

	// mu is held shared for reads and exclusively to change the fields
	// below (and across a commit).
	mu    sync.RWMutex
	key   string         // GUARDED_BY(mu); the captured version, replaced by each commit
	base  *cache.Version // GUARDED_BY(mu); local copy of key, nil until needed
	dirty *os.File       // GUARDED_BY(mu); the private copy, nil while unchanged
	size  int64          // GUARDED_BY(mu); size of dirty
}

// dirtyStat describes a private copy. Immutable.
type dirtyStat struct {
	size  uint64
	mtime time.Time
}

var (
	_ fusefs.Handle         = (*openFile)(nil)
	_ fusefs.HandleReader   = (*openFile)(nil)
	_ fusefs.HandleWriter   = (*openFile)(nil)
	_ fusefs.HandleFlusher  = (*openFile)(nil)
	_ fusefs.HandleReleaser = (*openFile)(nil)

	_ fusefs.HandleFlockLocker = (*openFile)(nil)
	_ fusefs.HandlePOSIXLocker = (*openFile)(nil)
)

func (h *openFile) capturedKey() string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.key
}

// Read reads the private copy, or the captured version (waiting for the
// bytes asked for while it downloads).
func (h *openFile) Read(ctx context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	f := h.n.fs
	f.bind(req.Handle, h)
	h.mu.RLock()
	if h.dirty == nil && h.base == nil {
		h.mu.RUnlock()
		h.mu.Lock()
		h.ensureBase()
		h.mu.Unlock()
		h.mu.RLock()
	}
	defer h.mu.RUnlock()
	buf := make([]byte, req.Size)
	var n int
	var err error
	if h.dirty != nil {
		n, err = h.dirty.ReadAt(buf, req.Offset)
	} else {
		n, err = h.base.ReadAt(ctx, buf, req.Offset)
	}
	if err == io.EOF {
		err = nil
	}
	resp.Data = buf[:n]
	return f.errno("read", h.n.path(), err)
}

// ensureBase starts the local copy of the captured version.
// LOCKS_REQUIRED(h.mu)
func (h *openFile) ensureBase() {
	if h.base == nil {
		h.base = h.n.fs.version(h.n.path(), h.key)
	}
}

// ensureDirty makes the private copy, from the captured version unless
// empty is set.
// LOCKS_REQUIRED(h.mu)
func (h *openFile) ensureDirty(ctx context.Context, empty bool) error {
	if h.dirty != nil {
		return nil
	}
	c := h.n.fs.c
	d, err := c.NewFile()
	if err != nil {
		return err
	}
	var size int64
	if !empty {
		h.ensureBase()
		if size, err = h.base.CopyTo(ctx, d); err != nil {
			c.Discard(d)
			return err
		}
	}
	h.dirty, h.size = d, size
	h.touch()
	return nil
}

// touch publishes the private copy's size.
// LOCKS_REQUIRED(h.mu)
func (h *openFile) touch() {
	h.stat.Store(&dirtyStat{size: uint64(h.size), mtime: time.Now()})
}

// Write changes the private copy.
func (h *openFile) Write(ctx context.Context, req *fuse.WriteRequest, resp *fuse.WriteResponse) error {
	f := h.n.fs
	f.bind(req.Handle, h)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.ensureDirty(ctx, false); err != nil {
		return f.errno("write", h.n.path(), err)
	}
	n, err := h.dirty.WriteAt(req.Data, req.Offset)
	resp.Size = n
	if end := req.Offset + int64(n); end > h.size {
		h.size = end
	}
	h.touch()
	return f.errno("write", h.n.path(), err)
}

// truncate sets the size of the private copy.
func (h *openFile) truncate(ctx context.Context, size int64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.ensureDirty(ctx, size == 0); err != nil {
		return err
	}
	if err := h.dirty.Truncate(size); err != nil {
		return err
	}
	h.size = size
	h.touch()
	return nil
}

// Flush commits the handle's changes, if any, then releases the POSIX
// locks the closing process holds on the file (after the commit, so the
// next holder sees what was written under the lock).
func (h *openFile) Flush(ctx context.Context, req *fuse.FlushRequest) error {
	f := h.n.fs
	f.bind(req.Handle, h)
	err := h.commit(ctx)
	f.flushLocks(ctx, h.n, req.LockOwner)
	return f.errno("close", h.n.path(), err)
}

// Release commits what is still changed (normally Flush did), releases
// the locks that end with the open file description and drops the handle.
func (h *openFile) Release(ctx context.Context, req *fuse.ReleaseRequest) error {
	f := h.n.fs
	err := h.release(ctx)
	f.releaseLocks(ctx, h, req)
	f.unbind(req.Handle, h)
	return f.errno("release", h.n.path(), err)
}

func (h *openFile) release(ctx context.Context) error {
	err := h.commit(ctx)
	h.mu.Lock()
	if h.base != nil {
		h.base.Release()
		h.base = nil
	}
	h.mu.Unlock()
	h.n.closed(h)
	h.n.fs.mu.Lock()
	delete(h.n.fs.open, h)
	h.n.fs.mu.Unlock()
	return err
}

// commit stores the private copy as the new version of the object if the
// object still has the captured key. On failure the copy is moved to the
// recovery directory and the error says where; either way the handle is
// unchanged afterwards. An interrupted caller does not stop the commit.
func (h *openFile) commit(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dirty == nil {
		return nil
	}
	f := h.n.fs
	p := h.n.path()
	pending, _ := f.attrs.get(p)
	nk, err := f.g.Commit(ctx, p, h.key, h.dirty, h.size, f.attrs.take(p)...)
	if err != nil {
		f.attrs.restore(p, pending)
		kept, kerr := f.keep(h.dirty, p, h.key, err)
		h.dirty = nil
		h.stat.Store(nil)
		if kerr != nil {
			return fmt.Errorf("%w; changes could not be kept: %v", err, kerr)
		}
		return fmt.Errorf("%w; changes kept in %s", err, kept)
	}
	v, err := f.c.Put(p, nk, h.dirty, h.size)
	if err != nil {
		f.c.Discard(h.dirty) // committed: only the local copy is lost
		v = nil
	}
	if h.base != nil {
		h.base.Release()
	}
	h.base, h.dirty, h.key = v, nil, nk
	h.stat.Store(nil)
	h.n.sawKey(nk) // the kernel's pages hold what was just written
	return nil
}

// rekey replaces the captured key old by key after a rename.
func (h *openFile) rekey(old, key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.key == old && key != "" {
		h.key = key
		if h.base != nil {
			h.base.Release()
			h.base = nil
		}
	}
}
