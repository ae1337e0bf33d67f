package fs

import (
	"context"
	"sync/atomic"

	"bazil.org/fuse"
	fusefs "bazil.org/fuse/fs"
)

// openFile is an open file description: flags only. The content it reads
// and writes is its file's state, shared with every other handle of the
// file on this host.
type openFile struct {
	n      *file       // never changes: the node (and so the version) it opened
	write  bool        // opened for writing: its close and fsync commit
	create bool        // made by Create: its close commits a pending file even read-only (pending.go)
	append bool        // O_APPEND: every write goes to the real end of the file
	wrote  atomic.Bool // it wrote since its last close (flush)
	closed atomic.Bool // closed (flushed) and not used since: only its release is due
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

// Read reads the file's state: its changes, or the version it shows
// (waiting for the bytes asked for while they download).
func (h *openFile) Read(ctx context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	f := h.n.fs
	f.bind(req.Handle, h)
	h.closed.Store(false)
	buf := make([]byte, req.Size)
	k, err := h.n.read(ctx, buf, req.Offset)
	resp.Data = buf[:k]
	return f.errno("read", h.n.path(), err)
}

// Write changes the file's state; with O_APPEND at its real end, which
// may not be where the kernel thought (another host appended).
func (h *openFile) Write(ctx context.Context, req *fuse.WriteRequest, resp *fuse.WriteResponse) error {
	f := h.n.fs
	f.bind(req.Handle, h)
	atEnd := h.append || req.FileFlags&fuse.OpenAppend != 0
	h.wrote.Store(true)
	h.closed.Store(false)
	k, _, err := h.n.write(ctx, req.Data, req.Offset, atEnd, req.Pid, req.LockOwner)
	resp.Size = k
	if err == nil && req.Uid != 0 {
		h.n.dropSetID()
	}
	return f.errno("write", h.n.path(), err)
}

// Flush commits the file's state if this handle may write, then releases
// the POSIX locks the closing process holds on the file (after the commit,
// so the next holder sees what was written under the lock).
func (h *openFile) Flush(ctx context.Context, req *fuse.FlushRequest) error {
	f := h.n.fs
	f.bind(req.Handle, h)
	var err error
	if h.write || h.create && h.n.isPending() {
		h.wrote.Store(false)
		err = h.n.reported(req.LockOwner, h.n.commit(ctx, req.Pid))
	}
	f.flushLocks(ctx, h.n, req.LockOwner)
	h.closed.Store(true)
	return f.errno("close", h.n.path(), err)
}

// Release commits what the handle wrote after its last close (writes
// through a mapping; normally Flush committed everything), releases the
// locks that end with the open file description and drops the handle. It
// does not commit changes other handles made: the kernel may send it long
// after the close, when another process has started changing the file.
func (h *openFile) Release(ctx context.Context, req *fuse.ReleaseRequest) error {
	f := h.n.fs
	var err error
	if h.write && h.wrote.Load() || h.create && h.n.isPending() {
		err = h.n.commit(ctx)
	}
	h.n.detach(h)
	f.releaseLocks(ctx, h, req)
	f.unbind(req.Handle, h)
	return f.errno("release", h.n.path(), err)
}

// bind records that the kernel calls h id, for requests that name a handle
// only by id (fsync).
func (f *FS) bind(id fuse.HandleID, h *openFile) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handles[id] = h
}

// unbind forgets h.
func (f *FS) unbind(id fuse.HandleID, h *openFile) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.handles[id] == h {
		delete(f.handles, id)
	}
}
