package fs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"bazil.org/fuse"
	fusefs "bazil.org/fuse/fs"

	"github.com/b2cfs/b2cfs/cache"
	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/memstore"
	"github.com/b2cfs/b2cfs/core/storetest"
	b2fs "github.com/b2cfs/b2cfs/fs"
)

// The node-level tests drive the file system without a mount: they play
// the kernel's part, calling the bazil interfaces of the nodes and handles
// with the requests the kernel would send for each system call (as
// restic's internal/fuse tests do), on the in-memory store. Two FS values
// on one store are two hosts.
//
// They use only the exported API of package fs and the bazil interfaces,
// found by type assertion, so that they do not depend on how nodes and
// handles are built.
//
// What the simulated kernel does, as Linux does for FUSE without
// atomic_o_trunc and without a writeback cache:
//   - open looks the name up first (Lookup, then Attr as bazil's server
//     does); a missing name with O_CREAT is a Create (with O_CREAT and
//     O_EXCL in its flags), an existing one with O_CREAT|O_EXCL fails with
//     EEXIST in the kernel, and otherwise Open gets the flags without
//     O_CREAT, O_EXCL and O_TRUNC; O_TRUNC on an existing file is then a
//     Setattr of size 0 that names no handle, exactly as truncate(2);
//   - read and write on a descriptor not open for them fail with EBADF, and
//     ftruncate on one not open for writing with EINVAL, in the kernel;
//   - an O_APPEND write carries the offset the kernel believes is the end
//     (the size it cached at open plus what this descriptor appended),
//     which may be stale: the file system must write at the real end;
//   - every close(2) is a Flush; the last close of an open file description
//     (a dup'd descriptor shares it) is followed by a Release;
//   - fsync is sent for any descriptor, read-only ones included;
//   - handle ids are distinct among open handles, and reused once released,
//     as bazil's server hands them out.

// absent stands for a name that does not exist.
const absent = "\x00(absent)"

// show formats content for messages.
func show(s string) string {
	if s == absent {
		return "(absent)"
	}
	if len(s) > 64 {
		return fmt.Sprintf("%d bytes %q...", len(s), s[:32])
	}
	return fmt.Sprintf("%q", s)
}

var errnoNames = map[syscall.Errno]string{
	0:                 "0",
	syscall.ENOENT:    "ENOENT",
	syscall.EEXIST:    "EEXIST",
	syscall.EBUSY:     "EBUSY",
	syscall.EBADF:     "EBADF",
	syscall.EINVAL:    "EINVAL",
	syscall.EIO:       "EIO",
	syscall.EINTR:     "EINTR",
	syscall.EISDIR:    "EISDIR",
	syscall.ENOTDIR:   "ENOTDIR",
	syscall.ENOTEMPTY: "ENOTEMPTY",
	syscall.EPERM:     "EPERM",
	syscall.EROFS:     "EROFS",
	syscall.ENOSPC:    "ENOSPC",
	syscall.ENOSYS:    "ENOSYS",
}

func ename(e syscall.Errno) string {
	if n, ok := errnoNames[e]; ok {
		return n
	}
	return fmt.Sprintf("errno %d (%v)", int(e), e)
}

// errnoOf is the errno the kernel would get for err, as bazil's server
// answers it.
func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	var en fuse.ErrorNumber
	if errors.As(err, &en) {
		return syscall.Errno(en.Errno())
	}
	if errors.Is(err, context.Canceled) {
		return syscall.EINTR
	}
	return syscall.EIO
}

// world is one group on an in-memory store, mounted by two hosts.
type world struct {
	t     *testing.T
	ctx   context.Context
	store *memstore.Store
	A, B  *host
	log   *lockedBuffer
}

const (
	testBucket = "filemodel-bucket"
	testGroup  = "filemodel"
)

// newWorld makes a world whose hosts' views of the index may be indexTTL
// old (negative: always current).
func newWorld(t *testing.T, indexTTL time.Duration) *world {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	w := &world{t: t, ctx: ctx, store: memstore.New(), log: &lockedBuffer{}}
	w.A = w.newHost("A", indexTTL)
	w.B = w.newHost("B", indexTTL)
	t.Cleanup(func() {
		for _, h := range []*host{w.A, w.B} {
			h.close()
		}
		cancel()
		if t.Failed() && w.log.Len() > 0 {
			t.Logf("file system log:\n%s", w.log.String())
		}
	})
	return w
}

// host is one FS on the world's store: one machine's mount.
type host struct {
	w    *world
	name string
	g    *core.Group
	c    *cache.Cache
	fsys *b2fs.FS
	root fusefs.Node

	mu    sync.Mutex
	next  fuse.HandleID   // GUARDED_BY(mu); the next new handle id
	free  []fuse.HandleID // GUARDED_BY(mu); released ids, reused last-in first-out
	owner fuse.LockOwner
	pid   uint32 // the process the requests come from (0: unknown)
}

func (w *world) newHost(name string, indexTTL time.Duration) *host {
	w.t.Helper()
	g, err := core.NewGroup(w.store, testGroup, core.Options{IndexTTL: indexTTL, Host: "host-" + name})
	if err != nil {
		w.t.Fatal(err)
	}
	c, err := cache.New(filepath.Join(w.t.TempDir(), "cache-"+name), 1<<30)
	if err != nil {
		w.t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(w.log, &slog.HandlerOptions{Level: slog.LevelDebug})).With("host", name)
	fsys := b2fs.New(b2fs.Config{
		Group: g, Cache: c, UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), Umask: 0o022,
		TTL: max(indexTTL, time.Second), Logger: log, Bucket: testBucket,
	})
	root, err := fsys.Root()
	if err != nil {
		w.t.Fatal(err)
	}
	return &host{w: w, name: name, g: g, c: c, fsys: fsys, root: root, next: 1, owner: fuse.LockOwner(len(name) + 100)}
}

// header is the header of h's requests.
func (h *host) header() fuse.Header { return fuse.Header{Pid: h.pid} }

func (h *host) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h.fsys.Shutdown(ctx)
	h.g.Close()
	h.c.Close()
}

func (h *host) newID() fuse.HandleID {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := len(h.free); n > 0 {
		id := h.free[n-1]
		h.free = h.free[:n-1]
		return id
	}
	id := h.next
	h.next++
	return id
}

func (h *host) freeID(id fuse.HandleID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.free = append(h.free, id)
}

// errorf reports a failed expectation of host h.
func (h *host) errorf(format string, args ...any) {
	h.w.t.Helper()
	h.w.t.Errorf("host %s: %s", h.name, fmt.Sprintf(format, args...))
}

func (h *host) expect(what string, got, want syscall.Errno) bool {
	h.w.t.Helper()
	if got != want {
		h.errorf("%s: %s, want %s", what, ename(got), ename(want))
		return false
	}
	return true
}

// call runs one request's handler. As bazil's server does, a panic
// answers EIO; it is also reported, since it is always a bug.
func (h *host) call(op string, handler func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			h.errorf("panic in the handler of %s: %v\n%s", op, r, debug.Stack())
			err = syscall.EIO
		}
	}()
	return handler()
}

// attr asks n for its attributes as bazil's server does after lookups,
// creates and setattrs.
func (h *host) attr(n fusefs.Node) (fuse.Attr, error) {
	var a fuse.Attr
	err := h.call("getattr", func() error { return n.Attr(h.w.ctx, &a) })
	return a, err
}

// lookup finds name in the root directory.
func (h *host) lookup(name string) (fusefs.Node, fuse.Attr, error) {
	l, ok := h.root.(fusefs.NodeRequestLookuper)
	if !ok {
		h.w.t.Fatalf("root %T does not implement NodeRequestLookuper", h.root)
	}
	var n fusefs.Node
	err := h.call("lookup", func() (err error) {
		n, err = l.Lookup(h.w.ctx, &fuse.LookupRequest{Name: name}, &fuse.LookupResponse{})
		return err
	})
	if err != nil {
		return nil, fuse.Attr{}, err
	}
	a, err := h.attr(n)
	if err != nil {
		return nil, fuse.Attr{}, err
	}
	return n, a, nil
}

// ofd is an open file description: what one open(2) made, shared by the
// descriptors dup'd from it.
type ofd struct {
	h        *host
	name     string
	flags    int
	node     fusefs.Node
	handle   fusefs.Handle
	id       fuse.HandleID
	pos      int64 // the file offset
	size     int64 // the size the kernel believes the file has
	refs     int   // descriptors sharing it
	directIO bool  // the open asked the kernel not to cache
	// owner is the kernel's id of the description as a flock owner (the
	// address of its struct file, which a later open may reuse); 0 stands
	// for 1000 plus the handle id.
	owner   fuse.LockOwner
	flocked bool // a flock was asked through it: its release unlocks
}

func accmode(flags int) int { return flags & syscall.O_ACCMODE }

func (f *ofd) readable() bool { return accmode(f.flags) != syscall.O_WRONLY }
func (f *ofd) writable() bool { return accmode(f.flags) != syscall.O_RDONLY }

func (f *ofd) String() string {
	return fmt.Sprintf("%s (%s, handle %d)", f.name, flagNames(f.flags), f.id)
}

// flagNames spells open(2) flags.
func flagNames(flags int) string {
	var s []string
	switch accmode(flags) {
	case syscall.O_RDONLY:
		s = append(s, "O_RDONLY")
	case syscall.O_WRONLY:
		s = append(s, "O_WRONLY")
	case syscall.O_RDWR:
		s = append(s, "O_RDWR")
	}
	for _, fl := range []struct {
		bit  int
		name string
	}{{syscall.O_APPEND, "O_APPEND"}, {syscall.O_TRUNC, "O_TRUNC"}, {syscall.O_CREAT, "O_CREAT"}, {syscall.O_EXCL, "O_EXCL"}} {
		if flags&fl.bit != 0 {
			s = append(s, fl.name)
		}
	}
	return strings.Join(s, "|")
}

// open is open(2) of name with flags; it reports an errno other than want
// and returns nil unless the open succeeded. Every method of a nil *ofd
// does nothing, so that a row goes on after a failed open.
func (h *host) open(name string, flags int, want syscall.Errno) *ofd {
	h.w.t.Helper()
	f, err := h.tryOpen(name, flags)
	if !h.expect(fmt.Sprintf("open %s %s", name, flagNames(flags)), errnoOf(err), want) {
		f.close(0) // an unexpected success
		return nil
	}
	return f
}

func (h *host) tryOpen(name string, flags int) (*ofd, error) {
	ctx := h.w.ctx
	f := &ofd{h: h, name: name, flags: flags, refs: 1}
	n, a, err := h.lookup(name)
	switch {
	case errnoOf(err) == syscall.ENOENT && flags&syscall.O_CREAT != 0:
		c, ok := h.root.(fusefs.NodeCreater)
		if !ok {
			h.w.t.Fatalf("root %T does not implement NodeCreater", h.root)
		}
		var resp fuse.CreateResponse
		var n fusefs.Node
		var hd fusefs.Handle
		err := h.call("create", func() (err error) {
			n, hd, err = c.Create(ctx, &fuse.CreateRequest{Header: h.header(), Name: name, Flags: fuse.OpenFlags(flags), Mode: 0o644, Umask: 0o022}, &resp)
			return err
		})
		if err != nil {
			return nil, err
		}
		if _, err := h.attr(n); err != nil {
			return nil, err
		}
		f.node, f.handle, f.id = n, hd, h.newID()
		f.directIO = resp.Flags&fuse.OpenDirectIO != 0
		return f, nil
	case err != nil:
		return nil, err
	case flags&(syscall.O_CREAT|syscall.O_EXCL) == syscall.O_CREAT|syscall.O_EXCL:
		return nil, syscall.EEXIST
	}
	f.node, f.size = n, int64(a.Size)
	var resp fuse.OpenResponse
	req := &fuse.OpenRequest{Flags: fuse.OpenFlags(flags &^ (syscall.O_CREAT | syscall.O_EXCL | syscall.O_TRUNC))}
	if o, ok := n.(fusefs.NodeOpener); ok {
		err := h.call("open", func() (err error) {
			f.handle, err = o.Open(ctx, req, &resp)
			return err
		})
		if err != nil {
			return nil, err
		}
	} else {
		f.handle = n
	}
	f.id = h.newID()
	f.directIO = resp.Flags&fuse.OpenDirectIO != 0
	if flags&syscall.O_TRUNC != 0 && f.writable() {
		if err := h.setattr(n, &fuse.SetattrRequest{Valid: fuse.SetattrSize, Size: 0}); err != nil {
			f.close(0)
			return nil, err
		}
		f.size = 0
	}
	return f, nil
}

// setattr sends req to n, then asks for the attributes as bazil does.
func (h *host) setattr(n fusefs.Node, req *fuse.SetattrRequest) error {
	s, ok := n.(fusefs.NodeSetattrer)
	if !ok {
		h.w.t.Fatalf("node %T does not implement NodeSetattrer", n)
	}
	if err := h.call("setattr", func() error { return s.Setattr(h.w.ctx, req, &fuse.SetattrResponse{}) }); err != nil {
		return err
	}
	_, err := h.attr(n)
	return err
}

// pread reads n bytes at off through f and expects data.
func (f *ofd) pread(off int64, n int, want string) {
	if f == nil {
		return
	}
	f.h.w.t.Helper()
	got, err := f.tryRead(off, n)
	if f.h.expect(fmt.Sprintf("pread %s @%d", f, off), errnoOf(err), 0) && got != want {
		f.h.errorf("pread %s @%d: read %s, want %s", f, off, show(got), show(want))
	}
}

// read reads n bytes at the file offset and expects data, or errno
// wantErr.
func (f *ofd) read(n int, want string, wantErr syscall.Errno) {
	if f == nil {
		return
	}
	f.h.w.t.Helper()
	got, err := f.tryRead(f.pos, n)
	if !f.h.expect(fmt.Sprintf("read %s @%d", f, f.pos), errnoOf(err), wantErr) || err != nil {
		return
	}
	f.pos += int64(len(got))
	if got != want {
		f.h.errorf("read %s: read %s, want %s", f, show(got), show(want))
	}
}

// readAll reads from off to the end of the file through f.
func (f *ofd) readAll(off int64) (string, error) {
	var b strings.Builder
	for {
		got, err := f.tryRead(off, 64<<10)
		if err != nil {
			return b.String(), err
		}
		if got == "" {
			return b.String(), nil
		}
		b.WriteString(got)
		off += int64(len(got))
	}
}

func (f *ofd) tryRead(off int64, n int) (string, error) {
	if !f.readable() {
		return "", syscall.EBADF
	}
	r, ok := f.handle.(fusefs.HandleReader)
	if !ok {
		f.h.w.t.Fatalf("handle %T does not implement HandleReader", f.handle)
	}
	var resp fuse.ReadResponse
	err := f.h.call("read", func() error {
		return r.Read(f.h.w.ctx, &fuse.ReadRequest{Handle: f.id, Offset: off, Size: n, FileFlags: fuse.OpenFlags(f.flags), LockOwner: f.h.owner}, &resp)
	})
	return string(resp.Data), err
}

// write writes data at the file offset (at the end with O_APPEND).
func (f *ofd) write(data string, want syscall.Errno) {
	if f == nil {
		return
	}
	f.h.w.t.Helper()
	off := f.pos
	if f.flags&syscall.O_APPEND != 0 {
		off = f.size // the kernel's idea of the end; the file system knows better
	}
	n, err := f.tryWrite(off, data)
	if f.h.expect(fmt.Sprintf("write %s %s", f, show(data)), errnoOf(err), want) && err == nil {
		f.pos = off + int64(n)
		f.size = max(f.size, f.pos)
	}
}

// pwrite writes data at off.
func (f *ofd) pwrite(off int64, data string, want syscall.Errno) {
	if f == nil {
		return
	}
	f.h.w.t.Helper()
	if f.flags&syscall.O_APPEND != 0 {
		off = f.size // Linux ignores the offset of pwrite with O_APPEND
	}
	n, err := f.tryWrite(off, data)
	if f.h.expect(fmt.Sprintf("pwrite %s @%d %s", f, off, show(data)), errnoOf(err), want) && err == nil {
		f.size = max(f.size, off+int64(n))
	}
}

func (f *ofd) tryWrite(off int64, data string) (int, error) {
	if !f.writable() {
		return 0, syscall.EBADF
	}
	w, ok := f.handle.(fusefs.HandleWriter)
	if !ok {
		f.h.w.t.Fatalf("handle %T does not implement HandleWriter", f.handle)
	}
	var resp fuse.WriteResponse
	err := f.h.call("write", func() error {
		return w.Write(f.h.w.ctx, &fuse.WriteRequest{Header: f.h.header(), Handle: f.id, Offset: off, Data: []byte(data), FileFlags: fuse.OpenFlags(f.flags), LockOwner: f.h.owner}, &resp)
	})
	if err == nil && resp.Size != len(data) {
		f.h.errorf("write %s: %d of %d bytes written", f, resp.Size, len(data))
	}
	return resp.Size, err
}

// ftruncate sets the size through f.
func (f *ofd) ftruncate(size int64, want syscall.Errno) {
	if f == nil {
		return
	}
	f.h.w.t.Helper()
	var err error
	if !f.writable() {
		err = syscall.EINVAL
	} else {
		err = f.h.setattr(f.node, &fuse.SetattrRequest{Valid: fuse.SetattrSize | fuse.SetattrHandle, Handle: f.id, Size: uint64(size)})
	}
	if f.h.expect(fmt.Sprintf("ftruncate %s to %d", f, size), errnoOf(err), want) && err == nil {
		f.size = size
	}
}

// fsync is fsync(2) of a descriptor of f.
func (f *ofd) fsync(want syscall.Errno) {
	if f == nil {
		return
	}
	f.h.w.t.Helper()
	s, ok := f.node.(fusefs.NodeFsyncer)
	if !ok {
		f.h.w.t.Fatalf("node %T does not implement NodeFsyncer", f.node)
	}
	err := f.h.call("fsync", func() error { return s.Fsync(f.h.w.ctx, &fuse.FsyncRequest{Handle: f.id}) })
	f.h.expect(fmt.Sprintf("fsync %s", f), errnoOf(err), want)
}

// dup makes one more descriptor of f (the same handle, the same offset).
func (f *ofd) dup() *ofd {
	if f != nil {
		f.refs++
	}
	return f
}

// close is close(2) of one descriptor of f: a Flush, and the Release when
// it was the last one (whose errors the kernel drops, so they are only
// logged here).
func (f *ofd) close(want syscall.Errno) {
	if f == nil {
		return
	}
	f.h.w.t.Helper()
	if f.refs <= 0 {
		f.h.w.t.Fatalf("close %s: no descriptor left", f)
	}
	f.flush(want)
	if f.refs == 0 {
		f.release()
	}
}

// flush is the part of close(2) that the caller waits for: a Flush, and
// one descriptor less. The kernel sends the Release of the last one later,
// on its own (release).
func (f *ofd) flush(want syscall.Errno) {
	f.h.w.t.Helper()
	var err error
	if fl, ok := f.handle.(fusefs.HandleFlusher); ok {
		err = f.h.call("flush", func() error {
			return fl.Flush(f.h.w.ctx, &fuse.FlushRequest{Header: f.h.header(), Handle: f.id, LockOwner: f.h.owner})
		})
	}
	f.h.expect(fmt.Sprintf("close %s", f), errnoOf(err), want)
	f.refs--
}

// release is the Release the kernel sends once the last descriptor of f
// is closed: it unlocks f's flock, if one was asked for through it.
func (f *ofd) release() {
	if r, ok := f.handle.(fusefs.HandleReleaser); ok {
		req := &fuse.ReleaseRequest{Handle: f.id, Flags: fuse.OpenFlags(f.flags), LockOwner: f.h.owner}
		if f.flocked {
			req.ReleaseFlags |= fuse.ReleaseFlockUnlock
			req.LockOwner = f.flockOwner()
		}
		if err := f.h.call("release", func() error { return r.Release(f.h.w.ctx, req) }); err != nil {
			f.h.w.t.Logf("host %s: release %s: %v (ignored, as the kernel does)", f.h.name, f, err)
		}
	}
	f.h.freeID(f.id)
}

// flockOwner is the lock owner the kernel names in f's flock requests.
func (f *ofd) flockOwner() fuse.LockOwner {
	if f.owner != 0 {
		return f.owner
	}
	return fuse.LockOwner(1000 + f.id)
}

// sizeOf returns the size the node of f reports.
func (f *ofd) sizeOf() (uint64, error) {
	a, err := f.h.attr(f.node)
	return a.Size, err
}

// truncate is truncate(2) of name.
func (h *host) truncate(name string, size int64, want syscall.Errno) {
	h.w.t.Helper()
	n, _, err := h.lookup(name)
	if err == nil {
		err = h.setattr(n, &fuse.SetattrRequest{Valid: fuse.SetattrSize, Size: uint64(size)})
	}
	h.expect(fmt.Sprintf("truncate %s to %d", name, size), errnoOf(err), want)
}

// unlink is unlink(2) of name.
func (h *host) unlink(name string, want syscall.Errno) {
	h.w.t.Helper()
	r, ok := h.root.(fusefs.NodeRemover)
	if !ok {
		h.w.t.Fatalf("root %T does not implement NodeRemover", h.root)
	}
	err := h.call("unlink", func() error { return r.Remove(h.w.ctx, &fuse.RemoveRequest{Header: h.header(), Name: name}) })
	h.expect("unlink "+name, errnoOf(err), want)
}

// rename is rename(2) of from to to, both in the root directory.
func (h *host) rename(from, to string, want syscall.Errno) {
	h.w.t.Helper()
	r, ok := h.root.(fusefs.NodeRenamer)
	if !ok {
		h.w.t.Fatalf("root %T does not implement NodeRenamer", h.root)
	}
	err := h.call("rename", func() error {
		return r.Rename(h.w.ctx, &fuse.RenameRequest{Header: h.header(), OldName: from, NewName: to, NewDir: 1}, h.root)
	})
	h.expect(fmt.Sprintf("rename %s %s", from, to), errnoOf(err), want)
}

// cat returns name's content as a new open on h reads it, or absent.
func (h *host) cat(name string) string {
	h.w.t.Helper()
	f, err := h.tryOpen(name, syscall.O_RDONLY)
	if errnoOf(err) == syscall.ENOENT {
		return absent
	}
	if err != nil {
		h.errorf("open %s to read it: %s", name, ename(errnoOf(err)))
		return absent
	}
	s, err := f.readAll(0)
	if err != nil {
		h.errorf("read %s: %s", name, ename(errnoOf(err)))
	}
	f.close(0)
	return s
}

// check expects name to read as want on h.
func (h *host) check(name, want string) {
	h.w.t.Helper()
	if got := h.cat(name); got != want {
		h.errorf("%s reads %s, want %s", name, show(got), show(want))
	}
}

// put is "printf CONTENT > name" on h: every step must succeed.
func (h *host) put(name, content string) {
	h.w.t.Helper()
	f := h.open(name, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_TRUNC, 0)
	f.write(content, 0)
	f.close(0)
}

// append is "printf DATA >> name" on h: every step must succeed.
func (h *host) append(name, data string) {
	h.w.t.Helper()
	f := h.open(name, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_APPEND, 0)
	f.write(data, 0)
	f.close(0)
}

// kept counts the changes in h's recovery directory.
func (h *host) kept() int {
	ents, err := os.ReadDir(h.c.RecoveryDir())
	if err != nil {
		h.w.t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), cache.KeptSuffix) {
			n++
		}
	}
	return n
}

// seed commits the initial content of objects, as another tool would.
func (w *world) seed(objects map[string]string) {
	w.t.Helper()
	g, err := core.NewGroup(w.store, testGroup, core.Options{IndexTTL: -1})
	if err != nil {
		w.t.Fatal(err)
	}
	defer g.Close()
	for name, content := range objects {
		if _, err := g.Commit(w.ctx, name, "", strings.NewReader(content), int64(len(content))); err != nil {
			w.t.Fatalf("seed %s: %v", name, err)
		}
	}
}

// stored returns name's content as B2 holds it, read through a new group.
func (w *world) stored(name string) string {
	w.t.Helper()
	g, err := core.NewGroup(w.store, testGroup, core.Options{IndexTTL: -1})
	if err != nil {
		w.t.Fatal(err)
	}
	defer g.Close()
	r, err := g.NewReader(w.ctx, name)
	if errors.Is(err, core.ErrNotExist) {
		return absent
	}
	if err != nil {
		w.t.Fatalf("read %s from the store: %v", name, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		w.t.Fatalf("read %s from the store: %v", name, err)
	}
	return string(b)
}

// checkStored expects B2 to hold want as name.
func (w *world) checkStored(name, want string) {
	w.t.Helper()
	if got := w.stored(name); got != want {
		w.t.Errorf("B2 holds %s as %s, want %s", name, show(got), show(want))
	}
}

// lockedBuffer is the log sink of the hosts' file systems.
type lockedBuffer = storetest.SyncBuffer
