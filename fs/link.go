package fs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync"
	"syscall"
	"time"

	"bazil.org/fuse"
	fusefs "bazil.org/fuse/fs"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/namespace"
)

// symlink is a symbolic link: an index entry that holds its target, with
// no data file (core.Group.Symlink). Only groups in core.FormatB2cfs have
// them.
type symlink struct {
	nodeBase
	mu    sync.Mutex
	entry core.Entry // GUARDED_BY(mu)
}

var (
	_ fusefs.Node           = (*symlink)(nil)
	_ fusefs.NodeReadlinker = (*symlink)(nil)
	_ fusefs.NodeSetattrer  = (*symlink)(nil)
	_ fusefs.NodeForgetter  = (*symlink)(nil)
)

func (l *symlink) Attr(ctx context.Context, a *fuse.Attr) error {
	f := l.fs
	p := l.path()
	l.mu.Lock()
	e := l.entry
	l.mu.Unlock()
	if cur, ok := f.entryOf(ctx, p); ok && cur.Key == e.Key {
		e = cur // utimes since
	}
	l.fillAttr(a, 1)
	a.Size = uint64(len(e.Link))
	f.metaOf(p, e, 0o777, time.Unix(0, e.MTime)).fill(a, os.ModeSymlink)
	a.Mode = os.ModeSymlink | 0o777 // a link's own mode is always this on Linux
	return nil
}

func (l *symlink) Readlink(ctx context.Context, req *fuse.ReadlinkRequest) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.entry.Link, nil
}

// Setattr sets a link's times (utimensat with AT_SYMLINK_NOFOLLOW); Linux
// has no chmod of a link.
func (l *symlink) Setattr(ctx context.Context, req *fuse.SetattrRequest, resp *fuse.SetattrResponse) error {
	f := l.fs
	p := l.path()
	if err := f.checkSetattr(req, p); err != nil {
		return err
	}
	if c, ok := setattrChange(req); ok {
		c.mode = nil
		l.mu.Lock()
		key := l.entry.Key
		l.mu.Unlock()
		f.attrs.set(p, key, false, c)
	}
	return nil
}

func (l *symlink) Forget() { l.fs.forget(l) }

// Symlink makes a symbolic link: one commit, no data file. A group in
// core.FormatBlazer cannot record one: EPERM.
func (d *dir) Symlink(ctx context.Context, req *fuse.SymlinkRequest) (fusefs.Node, error) {
	ctx = d.fs.fence(ctx, req.Pid) // a change made under a lock lands only while it is held
	f := d.fs
	p := namespace.Join(d.path(), req.NewName)
	if err := d.checkNew(p, req.NewName); err != nil {
		return nil, f.errno("symlink", p, err)
	}
	t, err := f.tree(ctx)
	if err != nil {
		return nil, f.errno("symlink", p, err)
	}
	if _, ok := t.File(p); ok || t.IsDir(p) {
		return nil, f.errno("symlink", p, syscall.EEXIST)
	}
	if len(req.Target) > core.MaxLinkBytes {
		return nil, f.errno("symlink", p, syscall.ENAMETOOLONG)
	}
	if _, err := f.g.Symlink(ctx, p, req.Target); err != nil {
		switch {
		case errors.Is(err, core.ErrConflict):
			err = syscall.EEXIST
		case errors.Is(err, core.ErrNotSupported):
			f.logOnce("symlink", "symbolic links refused: the group is in the blazer format, which cannot record them (EPERM)", "path", "/"+p)
			return nil, syscall.EPERM // logged once above
		}
		return nil, f.errno("symlink", p, err)
	}
	f.touchDir(d.path())
	e, ok := f.entryOf(ctx, p)
	if !ok || !e.IsLink() {
		return nil, f.errno("symlink", p, syscall.EIO) // the view must have what was just committed
	}
	f.saw(p, e.Key)
	return f.linkNode(p, e), nil
}

// Mknod refuses fifos, sockets and device nodes: B2 objects cannot be
// any of them. EPERM, as POSIX allows for a file system that does not
// support the type, logged once per kind.
func (d *dir) Mknod(ctx context.Context, req *fuse.MknodRequest) (fusefs.Node, error) {
	f := d.fs
	p := namespace.Join(d.path(), req.Name)
	if err := d.checkNew(p, req.Name); err != nil {
		return nil, f.errno("mknod", p, err)
	}
	kind := "special file"
	switch {
	case req.Mode&os.ModeNamedPipe != 0:
		kind = "fifo"
	case req.Mode&os.ModeSocket != 0:
		kind = "socket"
	case req.Mode&os.ModeDevice != 0:
		kind = "device node"
	case req.Mode&os.ModeType == 0:
		return d.mknodFile(ctx, p, req)
	}
	f.logOnce(kind, "refused: b2cfs stores regular files, directories and symbolic links only (EPERM)", "kind", kind, "path", "/"+p)
	return nil, syscall.EPERM // logged once above
}

// mknodFile makes an empty regular file, as mknod(2) with S_IFREG does.
func (d *dir) mknodFile(ctx context.Context, p string, req *fuse.MknodRequest) (fusefs.Node, error) {
	ctx = d.fs.fence(ctx, req.Pid)
	f := d.fs
	t, err := f.tree(ctx)
	if err != nil {
		return nil, f.errno("mknod", p, err)
	}
	if _, ok := t.File(p); ok || t.IsDir(p) {
		return nil, f.errno("mknod", p, syscall.EEXIST)
	}
	key, err := f.g.Commit(ctx, p, "", bytes.NewReader(nil), 0, core.WithMode(f.newMode(req.Mode, req.Umask)))
	if errors.Is(err, core.ErrConflict) {
		err = syscall.EEXIST
	}
	if err != nil {
		return nil, f.errno("mknod", p, err)
	}
	f.touchDir(d.path())
	f.saw(p, key)
	e, ok := f.entryOf(ctx, p)
	if !ok || e.Key != key {
		e = core.Entry{Key: key}
	}
	return f.fileNode(p, e), nil
}

// Link refuses hard links: an object has one name. EPERM, as Linux gives
// where a file system has no hard links, logged once.
func (d *dir) Link(ctx context.Context, req *fuse.LinkRequest, old fusefs.Node) (fusefs.Node, error) {
	f := d.fs
	p := namespace.Join(d.path(), req.NewName)
	f.logOnce("hard link", "hard links refused: an object has one name (EPERM)", "path", "/"+p)
	return nil, syscall.EPERM // logged once above
}
