package fs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sort"
	"strings"
	"syscall"

	"bazil.org/fuse"
	fusefs "bazil.org/fuse/fs"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/namespace"
)

// dir is a directory: the root, a prefix of object names, or a marker made
// by mkdir.
type dir struct {
	nodeBase
}

var (
	_ fusefs.Node                = (*dir)(nil)
	_ fusefs.NodeRequestLookuper = (*dir)(nil)
	_ fusefs.HandleReadDirAller  = (*dir)(nil)
	_ fusefs.NodeMkdirer         = (*dir)(nil)
	_ fusefs.NodeCreater         = (*dir)(nil)
	_ fusefs.NodeRemover         = (*dir)(nil)
	_ fusefs.NodeRenamer         = (*dir)(nil)
	_ fusefs.NodeSetattrer       = (*dir)(nil)
	_ fusefs.NodeForgetter       = (*dir)(nil)
	_ fusefs.NodeFsyncer         = (*dir)(nil)
	_ fusefs.NodeSymlinker       = (*dir)(nil)
	_ fusefs.NodeMknoder         = (*dir)(nil)
	_ fusefs.NodeLinker          = (*dir)(nil)
)

// Attr reports the mount's owner, and the directory's mode and times as
// its marker records them (FormatB2cfs), else the mount's umask and the
// time the mount started; entries this host added or removed since make
// its times now (touchDir).
func (d *dir) Attr(ctx context.Context, a *fuse.Attr) error {
	f := d.fs
	p := d.path()
	d.fillAttr(a, 2)
	var e core.Entry
	if t, err := f.tree(context.WithoutCancel(ctx)); err == nil {
		e = t.entry(namespace.Marker(p))
		for _, isDir := range t.Kids(p) {
			if isDir {
				a.Nlink++ // each subdirectory's ".."
			}
		}
	}
	m := f.metaOf(p, e, f.dirMode().Perm(), f.start)
	f.mu.Lock()
	touched, ok := f.dirTime[p]
	f.mu.Unlock()
	if ok && touched.After(m.ctime) {
		m.mtime, m.ctime = touched, touched
	}
	m.fill(a, os.ModeDir)
	return nil
}

// Setattr keeps chmod and utimes of a directory in its marker (FormatB2cfs;
// accepted without change in the blazer format); a directory that has no
// marker yet gets one at once. chown only to the mount's owner
// (checkSetattr).
func (d *dir) Setattr(ctx context.Context, req *fuse.SetattrRequest, resp *fuse.SetattrResponse) error {
	ctx = d.fs.fence(ctx, req.Pid) // a change made under a lock lands only while it is held
	f := d.fs
	p := d.path()
	if err := f.checkSetattr(req, p); err != nil {
		return err
	}
	if req.Valid.Size() {
		return f.errno("truncate", p, syscall.EISDIR)
	}
	c, ok := setattrChange(req)
	if !ok || !f.keepsAttrs() {
		return nil
	}
	f.mu.Lock()
	delete(f.dirTime, p) // the times set win over the last change's
	f.mu.Unlock()
	if _, ok := f.entryOf(ctx, namespace.Marker(p)); ok {
		f.attrs.set(p, "", true, c)
		return nil
	}
	a := pendingAttr{attrSet: c, dir: true}
	if c.mode == nil {
		m := f.dirMode().Perm()
		a.mode = &m
	}
	_, err := f.g.Commit(ctx, namespace.Marker(p), "", bytes.NewReader(nil), 0, a.options()...)
	if errors.Is(err, core.ErrConflict) { // another host made the marker meanwhile
		f.attrs.set(p, "", true, c)
		err = nil
	}
	return f.errno("setattr", p, err)
}

// Fsync commits the mode and time changes not committed yet (of every
// path: a directory's fsync stands for its entries): "sync DIR" works.
func (d *dir) Fsync(ctx context.Context, req *fuse.FsyncRequest) error {
	return d.fs.errno("fsync", d.path(), d.fs.flushAttrs(ctx))
}

func (d *dir) Forget() { d.fs.forget(d) }

// Lookup finds a file or directory in the current view of the index.
func (d *dir) Lookup(ctx context.Context, req *fuse.LookupRequest, resp *fuse.LookupResponse) (fusefs.Node, error) {
	f := d.fs
	p := namespace.Join(d.path(), req.Name)
	if len(p) > f.g.MaxName() || len(req.Name) > nameMax {
		return nil, f.errno("lookup", p, f.checkName(p, req.Name))
	}
	if namespace.Reserved(p) {
		return nil, f.errno("lookup", p, syscall.ENOENT)
	}
	t, err := f.tree(ctx)
	if err != nil {
		return nil, f.errno("lookup", p, err)
	}
	resp.EntryValid = f.cfg.TTL
	if n := f.pendingNode(p); n != nil {
		return n, nil
	}
	if _, ok := t.File(p); ok {
		if e := t.entry(p); e.IsLink() {
			return f.linkNode(p, e), nil
		}
		return f.fileNode(p, t.entry(p)), nil
	}
	if _, ok := t.Dir(p); ok {
		return f.dirNode(p), nil
	}
	return nil, f.errno("lookup", p, syscall.ENOENT)
}

// ReadDirAll lists the directory. It also caches the sizes and times of its
// files with one listing when some are unknown, so that `ls -l` costs two
// B2 calls cold and none warm.
func (d *dir) ReadDirAll(ctx context.Context) ([]fuse.Dirent, error) {
	f := d.fs
	p := d.path()
	t, err := f.tree(ctx)
	if err != nil {
		return nil, f.errno("readdir", p, err)
	}
	if _, ok := t.Dir(p); !ok {
		return nil, f.errno("readdir", p, syscall.ENOENT)
	}
	var out []fuse.Dirent
	prefetch := false
	for name, isDir := range t.Kids(p) {
		cp := namespace.Join(p, name)
		de := fuse.Dirent{Inode: f.direntIno(cp), Name: name, Type: fuse.DT_File}
		if isDir {
			de.Type = fuse.DT_Dir
		} else {
			if t.entry(cp).IsLink() {
				de.Type = fuse.DT_Link
			}
			key, _ := t.File(cp)
			f.saw(cp, key) // listed: a rename over it replaces this version
			if !f.g.Cached(cp, key) {
				prefetch = true
			}
		}
		out = append(out, de)
	}
	for _, name := range f.pendingIn(p) {
		if cp := namespace.Join(p, name); !t.HasFile(cp) && !t.HasDir(cp) { // not listed above
			out = append(out, fuse.Dirent{Inode: f.direntIno(cp), Name: name, Type: fuse.DT_File})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if prefetch {
		prefix := ""
		if p != "" {
			prefix = p + "/"
		}
		if err := f.g.Prefetch(ctx, prefix); err != nil {
			// Only an optimisation: Stat will look the versions up one by one.
			f.log.Debug("prefetch failed", "path", "/"+p, "err", err)
		}
	}
	return out, nil
}

// Mkdir stores an empty marker object for the directory, so that other
// hosts see it while it is empty.
func (d *dir) Mkdir(ctx context.Context, req *fuse.MkdirRequest) (fusefs.Node, error) {
	ctx = d.fs.fence(ctx, req.Pid) // a change made under a lock lands only while it is held
	f := d.fs
	p := namespace.Join(d.path(), req.Name)
	if err := d.checkNew(p, req.Name); err != nil {
		return nil, f.errno("mkdir", p, err)
	}
	if err := f.checkName(namespace.Marker(p), req.Name); err != nil {
		return nil, f.errno("mkdir", p, err)
	}
	t, err := f.tree(ctx)
	if err != nil {
		return nil, f.errno("mkdir", p, err)
	}
	if _, ok := t.File(p); ok || f.pendingNode(p) != nil {
		return nil, f.errno("mkdir", p, syscall.EEXIST)
	}
	if _, ok := t.Dir(p); ok {
		return nil, f.errno("mkdir", p, syscall.EEXIST)
	}
	mode := core.WithMode(os.ModeDir | f.newMode(req.Mode, req.Umask))
	if _, err := f.g.Commit(ctx, namespace.Marker(p), "", bytes.NewReader(nil), 0, mode); err != nil {
		if errors.Is(err, core.ErrConflict) {
			err = syscall.EEXIST
		}
		return nil, f.errno("mkdir", p, err)
	}
	f.touchDir(d.path())
	return f.dirNode(p), nil
}

// checkNew fails for names that cannot be created here: p, whose last
// component is name.
func (d *dir) checkNew(p, name string) error {
	switch {
	case d.fs.cfg.ReadOnly:
		return syscall.EROFS
	case namespace.Reserved(p):
		return syscall.EPERM
	}
	return d.fs.checkName(p, name)
}

// Create makes a new file and opens it: a pending one (pending.go), which
// its first close commits. If the name exists, that file is opened
// (EEXIST with O_EXCL).
func (d *dir) Create(ctx context.Context, req *fuse.CreateRequest, resp *fuse.CreateResponse) (fusefs.Node, fusefs.Handle, error) {
	ctx = d.fs.fence(ctx, req.Pid) // a change made under a lock lands only while it is held
	f := d.fs
	p := namespace.Join(d.path(), req.Name)
	if err := d.checkNew(p, req.Name); err != nil {
		return nil, nil, f.errno("create", p, err)
	}
	t, err := f.tree(ctx)
	if err != nil {
		return nil, nil, f.errno("create", p, err)
	}
	if t.IsDir(p) {
		return nil, nil, f.errno("create", p, syscall.EISDIR)
	}
	key, exists := t.File(p)
	pn := f.pendingNode(p)
	if (exists || pn != nil) && req.Flags&fuse.OpenExclusive != 0 {
		return nil, nil, f.errno("create", p, syscall.EEXIST)
	}
	if t.entry(p).IsLink() {
		return nil, nil, f.errno("create", p, syscall.EEXIST) // the kernel follows links: a dangling one
	}
	if !exists {
		n, err := d.createPending(ctx, p, pn, req.Mode, req.Umask)
		if err != nil {
			return nil, nil, f.errno("create", p, err)
		}
		n.mu.Lock()
		h := n.attach(req.Flags)
		h.create = true
		n.keepKey = ""
		n.mu.Unlock()
		resp.EntryValid = f.cfg.TTL
		if h.write {
			resp.Flags |= fuse.OpenDirectIO // see file.Open
		}
		return n, h, nil
	}
	e := t.entry(p)
	if cur, ok := f.entryOf(ctx, p); ok && cur.Key == key {
		e = cur
	} else if !exists {
		e = core.Entry{Key: key}
	}
	n := f.fileNode(p, e)
	n.mu.Lock()
	if n.key != key && n.handles == 0 && n.dirty == nil {
		n.setVersionLocked(e)
	}
	h := n.attach(req.Flags)
	n.keepKey = n.key
	n.mu.Unlock()
	f.saw(p, key)
	resp.EntryValid = f.cfg.TTL
	if h.write {
		resp.Flags |= fuse.OpenDirectIO // see file.Open
	}
	return n, h, nil
}

// createPending returns the pending file at p: pn if there is one, else a
// new one with the mode asked for (kept in groups that record modes).
func (d *dir) createPending(ctx context.Context, p string, pn *file, mode, umask os.FileMode) (*file, error) {
	f := d.fs
	if pn != nil {
		return pn, nil
	}
	var e core.Entry
	core.WithMode(f.newMode(mode, umask))(&e)
	f.mu.Lock()
	if n := f.pending[p]; n != nil {
		f.mu.Unlock()
		return n, nil // another create got there first
	}
	n := &file{nodeBase: nodeBase{fs: f, rel: p, ino: f.inoLocked(p, false)}, entry: e}
	n.mu.Lock() // not yet seen by anyone: no lock order to keep
	f.nodes[p], f.pending[p] = n, n
	f.mu.Unlock()
	err := n.ensureDirtyLocked(ctx, true)
	n.mu.Unlock()
	if err != nil {
		f.unmapPath(p)
		return nil, err
	}
	f.saw(p, "")
	f.touchDir(d.path())
	return n, nil
}

// Remove unlinks a file (one compare-and-swap) or removes an empty
// directory's marker.
func (d *dir) Remove(ctx context.Context, req *fuse.RemoveRequest) error {
	ctx = d.fs.fence(ctx, req.Pid) // a change made under a lock lands only while it is held
	f := d.fs
	p := namespace.Join(d.path(), req.Name)
	op := "unlink"
	if req.Dir {
		op = "rmdir"
	}
	if f.cfg.ReadOnly {
		return f.errno(op, p, syscall.EROFS)
	}
	err := d.remove(ctx, p, req.Dir)
	if err == nil {
		f.unmapPath(p)
	}
	return f.errno(op, p, err)
}

// remove removes p. A file is removed only at the version this host last
// showed a process (lastSeen): one changed elsewhere since is EBUSY, and
// stays. An empty directory's marker goes whatever its version.
func (d *dir) remove(ctx context.Context, p string, isDir bool) error {
	f := d.fs
	if !isDir && f.pendingNode(p) != nil {
		return nil // never committed: nothing in B2 to remove
	}
	for attempt := 0; ; attempt++ {
		t, err := f.tree(ctx)
		if err != nil {
			return err
		}
		if isDir && len(f.pendingIn(p)) > 0 {
			return syscall.ENOTEMPTY
		}
		name, key, err := namespace.Remove(t.Tree, p, isDir)
		if err != nil {
			return err
		}
		if !isDir {
			key = f.lastSeen(p, key)
		}
		err = f.g.Remove(ctx, name, key)
		if !errors.Is(err, core.ErrConflict) || !isDir || attempt == 2 {
			return err
		}
	}
}

// Rename moves a file, or a directory with everything in it, with one
// compare-and-swap after server-side copies. It replaces a target file or
// empty directory.
func (d *dir) Rename(ctx context.Context, req *fuse.RenameRequest, newDir fusefs.Node) error {
	ctx = d.fs.fence(ctx, req.Pid) // a change made under a lock lands only while it is held
	f := d.fs
	nd, ok := newDir.(*dir)
	if !ok {
		return f.errno("rename", req.OldName, syscall.ENOTDIR)
	}
	from := namespace.Join(d.path(), req.OldName)
	to := namespace.Join(nd.path(), req.NewName)
	if err := d.checkNew(to, req.NewName); err != nil {
		return f.errno("rename", from, err)
	}
	if from == to {
		return nil
	}
	if done, err := d.renamePending(ctx, from, to); done || err != nil {
		return f.errno("rename", from, err)
	}
	t, err := f.tree(ctx)
	if err != nil {
		return f.errno("rename", from, err)
	}
	moves, err := namespace.Moves(t.Tree, from, to)
	if err != nil {
		return f.errno("rename", from, err)
	}
	for i, m := range moves {
		if !strings.HasPrefix(m.To, namespace.MarkerPrefix) {
			moves[i].ToKey = f.lastSeen(m.To, m.ToKey)
		}
	}
	for _, m := range moves {
		if err := f.checkName(m.To, req.NewName); err != nil {
			return f.errno("rename", from, err)
		}
	}
	// Not while a flush of mode and time changes is sending: it names the
	// objects by their old names, and would miss them once renamed.
	f.attrs.flushing.Lock()
	defer f.attrs.flushing.Unlock()
	if err := f.g.Rename(ctx, moves); err != nil {
		return f.errno("rename", from, err)
	}
	f.moved(from, to)
	f.rekey(moves)
	return nil
}

// rekey gives the files moved the key their object has under its new
// name (what Rename reported: a new one in FormatBlazer, where the data is
// copied), so that they can still commit. It reads nothing: a rename that
// succeeded stays a success when the request is interrupted right after.
func (f *FS) rekey(moves []core.Move) {
	for _, m := range moves {
		f.mu.Lock()
		n, _ := f.nodes[m.To].(*file)
		f.mu.Unlock()
		if n == nil {
			continue
		}
		n.mu.Lock()
		if n.key == m.Key && m.NewKey != "" {
			// The local copy of the old key holds the same bytes.
			n.key, n.entry.Key = m.NewKey, m.NewKey
		}
		n.mu.Unlock()
		f.saw(m.To, m.NewKey)
	}
}
