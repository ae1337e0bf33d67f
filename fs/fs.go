package fs

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"maps"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"bazil.org/fuse"
	fusefs "bazil.org/fuse/fs"

	"github.com/b2cfs/b2cfs/cache"
	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/namespace"
)

// Config describes a mount.
type Config struct {
	Group    *core.Group
	Cache    *cache.Cache
	ReadOnly bool
	UID, GID uint32
	// Umask masks the default mode shown for objects whose group records
	// none (FormatBlazer, or entries written without one).
	Umask os.FileMode
	// CreateUmask masks the mode recorded for every file and directory
	// created, besides the creating process's own umask.
	CreateUmask os.FileMode
	// TTL is how long the kernel may keep attributes and entries; it should
	// be the group's IndexTTL (0 when the index is always checked).
	TTL    time.Duration
	Logger *slog.Logger // default: discard
	// Bucket is recorded with changes kept in the recovery directory, so
	// that they can be committed back later.
	Bucket string
	// ObserveOp, when set, is called after every FUSE request with the
	// operation's name ("Lookup", "Read", ...) and how long it took
	// (observe.go). It must be safe for concurrent use and quick.
	ObserveOp func(op string, d time.Duration)
}

// FS is the file system of one group. It is safe for concurrent use.
type FS struct {
	g     *core.Group
	c     *cache.Cache
	cfg   Config
	log   *slog.Logger
	start time.Time

	mu      sync.Mutex
	srv     *fusefs.Server              // GUARDED_BY(mu); set by Serve
	nodes   map[string]node             // GUARDED_BY(mu); the node lookups give; INVARIANT: nodes[p].base().rel == p
	pending map[string]*file            // GUARDED_BY(mu); files created here, not committed yet (pending.go); INVARIANT: nodes[p] == pending[p]
	open    map[*openFile]struct{}      // GUARDED_BY(mu); every handle not yet released
	handles map[fuse.HandleID]*openFile // GUARDED_BY(mu); kernel handle ids seen so far
	seen    map[string]string           // GUARDED_BY(mu); path -> version this host last showed a process
	tr      *tree                       // GUARDED_BY(mu); built from the last index seen
	locks   map[lockID]*ownerLock       // GUARDED_BY(mu); distributed locks of kernel lock owners
	attrs   *attrQueue                  // chmod and utimes changes not committed yet (attrs.go)
	inos    map[string]uint64           // GUARDED_BY(mu); path -> inode number of its current node (inoLocked)
	inoUsed map[uint64]bool             // GUARDED_BY(mu); every number given out
	nextIno uint64                      // GUARDED_BY(mu); the next number when a path's own is taken
	dirTime map[string]time.Time        // GUARDED_BY(mu); dir path -> when this host last added or removed an entry in it
	once    sync.Map                    // kinds of refusal already logged (logOnce)

	life context.Context    // ends when Shutdown begins
	stop context.CancelFunc // ends life
}

var (
	_ fusefs.FS         = (*FS)(nil)
	_ fusefs.FSStatfser = (*FS)(nil)
)

// New returns the file system of cfg.Group.
func New(cfg Config) *FS {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.TTL < 0 {
		cfg.TTL = 0
	}
	life, stop := context.WithCancel(context.Background())
	f := &FS{
		g: cfg.Group, c: cfg.Cache, cfg: cfg, log: log, start: time.Now(),
		nodes:   map[string]node{},
		pending: map[string]*file{},
		open:    map[*openFile]struct{}{},
		handles: map[fuse.HandleID]*openFile{},
		seen:    map[string]string{},
		locks:   map[lockID]*ownerLock{},
		attrs:   newAttrQueue(),
		inos:    map[string]uint64{"": 1},
		inoUsed: map[uint64]bool{1: true},
		nextIno: 1 << 63,
		dirTime: map[string]time.Time{},
		life:    life, stop: stop,
	}
	go f.runAttrs()
	go f.keepFresh()
	return f
}

// Serve answers the kernel's requests on conn until it is unmounted.
func (f *FS) Serve(conn *fuse.Conn) error {
	srv := fusefs.New(conn, f.serverConfig())
	f.mu.Lock()
	f.srv = srv
	f.mu.Unlock()
	return srv.Serve(f)
}

// Root returns the root directory.
func (f *FS) Root() (fusefs.Node, error) { return f.dirNode(""), nil }

// Statfs reports the bytes and objects the index holds as used (in the
// blazer format, bytes from the versions' attributes: one listing when
// some are unknown), and a fixed free count, since B2 sets no capacity:
// freeBlocks and freeFiles.
func (f *FS) Statfs(ctx context.Context, req *fuse.StatfsRequest, resp *fuse.StatfsResponse) error {
	t, err := f.tree(ctx)
	if err != nil {
		return f.errno("statfs", "", err)
	}
	bytes, err := f.usedBytes(ctx, t)
	if err != nil {
		return f.errno("statfs", "", err)
	}
	const bsize = 4096
	used := uint64(bytes+bsize-1) / bsize
	resp.Bsize, resp.Frsize = bsize, bsize
	resp.Blocks = used + freeBlocks
	resp.Bfree, resp.Bavail = freeBlocks, freeBlocks
	resp.Files = uint64(t.NumFiles()+t.NumDirs()+1) + freeFiles
	resp.Ffree = freeFiles
	resp.Namelen = nameMax
	return nil
}

// usedBytes sums the sizes of t's files: from the index in the b2cfs
// format; from the versions' attributes in the blazer format, with one
// listing when some are not cached.
func (f *FS) usedBytes(ctx context.Context, t *tree) (int64, error) {
	var bytes int64
	if f.keepsAttrs() {
		for p := range t.Files() {
			bytes += t.entry(p).Size
		}
		return bytes, nil
	}
	for p, key := range t.Files() {
		if !f.g.Cached(p, key) {
			if err := f.g.Prefetch(ctx, ""); err != nil {
				return 0, err
			}
			break
		}
	}
	for p, key := range t.Files() {
		fi, err := f.g.Stat(ctx, p, key)
		if err != nil {
			return 0, err
		}
		bytes += fi.Size
	}
	return bytes, nil
}

// The free space statfs reports: 1 PiB and 2^32 names, far above what a
// group holds, so that tools that check free space go ahead.
const (
	freeBlocks = 1 << 38 // of 4 KiB
	freeFiles  = 1 << 32
)

// Shutdown commits every changed open file, or keeps its bytes in the
// recovery directory when the commit fails, then releases every lock held
// through the mount; waits for locks end and later lock requests fail with
// ENOLCK. It returns how many commits failed; their bytes are kept and
// logged.
func (f *FS) Shutdown(ctx context.Context) int {
	f.mu.Lock()
	files := map[*file]bool{}
	for h := range f.open {
		files[h.n] = true
	}
	f.mu.Unlock()
	failed := 0
	for n := range files {
		if err := n.commit(ctx); err != nil {
			f.errno("unmount", n.path(), err)
			failed++
		}
	}
	if err := f.flushAttrs(ctx); err != nil {
		f.errno("unmount", "", err)
		failed++
	}
	if n := f.shutdownLocks(ctx); n > 0 {
		f.log.Info("released locks at unmount", "locks", n)
	}
	return failed
}

// node is what dir and file share.
type node interface {
	fusefs.Node
	base() *nodeBase
}

type nodeBase struct {
	fs  *FS
	rel string // GUARDED_BY(fs.mu); path from the root, "" for the root
	ino uint64 // the inode number, for the node's life (inoLocked)
}

func (b *nodeBase) base() *nodeBase { return b }

// fillAttr sets what every node's attributes share: the kernel may keep
// them for the mount's TTL; the node's inode number, nlink links, and the
// mount's owner.
func (b *nodeBase) fillAttr(a *fuse.Attr, nlink uint32) {
	a.Valid = b.fs.cfg.TTL
	a.Inode = b.ino
	a.Nlink = nlink
	a.Uid, a.Gid = b.fs.cfg.UID, b.fs.cfg.GID
	a.BlockSize = 4096
}

func (b *nodeBase) path() string {
	b.fs.mu.Lock()
	defer b.fs.mu.Unlock()
	return b.rel
}

// dirNode returns the one dir node of path, as bazil wants the same Node
// for the same entry.
func (f *FS) dirNode(path string) *dir {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d, ok := f.nodes[path].(*dir); ok {
		return d
	}
	d := &dir{nodeBase{fs: f, rel: path, ino: f.inoLocked(path, false)}}
	f.nodes[path] = d
	return d
}

// linkNode returns the node of the symbolic link at path, entry e.
func (f *FS) linkNode(path string, e core.Entry) *symlink {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l, ok := f.nodes[path].(*symlink); ok && l.entry.Key == e.Key {
		return l
	}
	l := &symlink{nodeBase: nodeBase{fs: f, rel: path, ino: f.inoLocked(path, false)}, entry: e}
	f.nodes[path] = l
	return l
}

// fileNode returns the file node of path for version e: the node the path
// has, unless it shows another version and holds no changes; then a new
// node, so that handles open on the old one keep their version (file).
func (f *FS) fileNode(path string, e core.Entry) *file {
	f.mu.Lock()
	n, ok := f.nodes[path].(*file)
	f.mu.Unlock()
	if ok && (!n.replaceable(e.Key) || n.extendTo(e)) {
		n.refresh(e)
		return n
	}
	// The version that replaces one still open is another file, with a
	// number of its own, as after a rename over it: tools that follow a
	// name (tail -F) then see that it changed.
	fresh := ok && n.activeHandles()
	f.mu.Lock()
	defer f.mu.Unlock()
	if cur, ok := f.nodes[path].(*file); ok && cur != n {
		return cur // another lookup got there first
	}
	n = &file{nodeBase: nodeBase{fs: f, rel: path, ino: f.inoLocked(path, fresh)}, key: e.Key, entry: e}
	f.nodes[path] = n
	return n
}

// inoLocked returns the inode number of path's current node, giving the
// path one when it has none, or a new one with fresh. A path's first
// number is a hash of it, so that it is the same after a remount, unless
// another path has it; then the next free one. A number is never given
// twice in a mount: a node keeps its number through renames, and a path
// gets a new one only after an unlink or a rename over it on this host, or
// when a version from another host replaces one still open here (fileNode).
// LOCKS_REQUIRED(f.mu)
func (f *FS) inoLocked(path string, fresh bool) uint64 {
	if n, ok := f.inos[path]; ok && !fresh {
		return n
	}
	n := inode(path)
	for f.inoUsed[n] {
		n = f.nextIno
		f.nextIno++
	}
	f.inoUsed[n] = true
	f.inos[path] = n
	return n
}

// direntIno returns the inode number a directory listing shows for path:
// that of its node, or the hash of a path no node has a number for yet,
// without giving it one, so that listings of many names cost no memory.
func (f *FS) direntIno(path string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n, ok := f.inos[path]; ok {
		return n
	}
	return inode(path)
}

// touchDir records that this host added or removed an entry of directory
// p now: its modification and change times show that (POSIX), on this
// host, until a utimes on it sets them.
func (f *FS) touchDir(p string) {
	f.mu.Lock()
	f.touchDirLocked(time.Now(), p)
	f.mu.Unlock()
}

// touchDirLocked is touchDir of dirs at now. LOCKS_REQUIRED(f.mu)
func (f *FS) touchDirLocked(now time.Time, dirs ...string) {
	for _, d := range dirs {
		f.dirTime[d] = now
	}
}

// logOnce logs msg at warning level the first time kind is refused in
// this mount, so that a tool that tries a thousand times logs one line.
func (f *FS) logOnce(kind, msg string, args ...any) {
	if _, seen := f.once.LoadOrStore(kind, true); !seen {
		f.log.Warn(msg, args...)
	}
}

// saw records that this host showed version key of path to a process
// (opened, listed, created or wrote it): a rename or unlink of path
// replaces only that version (lastSeen).
func (f *FS) saw(path, key string) {
	f.mu.Lock()
	f.seen[path] = key
	f.mu.Unlock()
}

// lastSeen returns the version of path this host last showed a process,
// or, for a path it never showed, fallback (what the view holds).
func (f *FS) lastSeen(path, fallback string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if k, ok := f.seen[path]; ok {
		return k
	}
	return fallback
}

// forget drops n from the node table if it is still there.
func (f *FS) forget(n node) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := n.base()
	if f.nodes[b.rel] == n {
		delete(f.nodes, b.rel)
	}
}

// unmapPath drops whatever node path has, so that a new object at the same
// path gets a new node: the kernel has already unlinked the old one. A file
// still open keeps working until its last close, committing nothing.
func (f *FS) unmapPath(path string) {
	f.attrs.drop(path) // a new object at path must not get them
	f.mu.Lock()
	n, _ := f.nodes[path].(*file)
	delete(f.nodes, path)
	delete(f.pending, path)
	delete(f.seen, path)
	ino, numbered := f.inos[path]
	delete(f.inos, path)
	delete(f.dirTime, path)
	parent, _ := namespace.Split(path)
	f.touchDirLocked(time.Now(), parent)
	f.mu.Unlock()
	if (n == nil || !n.unlink()) && numbered {
		f.mu.Lock()
		delete(f.inoUsed, ino) // nothing open has the number: it may be given again
		f.mu.Unlock()
	}
}

// moved renames the nodes of from and everything below it to to, and
// what this host saw of them.
func (f *FS) moved(from, to string) {
	f.attrs.move(from, to)
	under := func(p string) bool { return p == from || strings.HasPrefix(p, from+"/") }
	f.mu.Lock()
	type mv struct {
		n    node
		dest string
	}
	var mvs []mv
	for p, n := range f.nodes {
		if under(p) {
			mvs = append(mvs, mv{n, to + p[len(from):]})
			delete(f.nodes, p)
		}
	}
	replaced, _ := f.nodes[to].(*file)
	delete(f.nodes, to) // the replaced target, if any
	delete(f.pending, to)
	pend := map[string]*file{}
	for p, n := range f.pending {
		if under(p) {
			pend[to+p[len(from):]] = n
			delete(f.pending, p)
		}
	}
	maps.Copy(f.pending, pend)
	inos, times := map[string]uint64{}, map[string]time.Time{}
	delete(f.inos, to)
	delete(f.dirTime, to)
	for p, n := range f.inos {
		if under(p) {
			inos[to+p[len(from):]] = n
			delete(f.inos, p)
		}
	}
	for p, t := range f.dirTime {
		if under(p) {
			times[to+p[len(from):]] = t
			delete(f.dirTime, p)
		}
	}
	maps.Copy(f.inos, inos)
	maps.Copy(f.dirTime, times)
	fromDir, _ := namespace.Split(from)
	toDir, _ := namespace.Split(to)
	f.touchDirLocked(time.Now(), fromDir, toDir)
	seen := map[string]string{}
	for p, k := range f.seen {
		if under(p) {
			seen[to+p[len(from):]] = k
			delete(f.seen, p)
		}
	}
	delete(f.seen, to)
	for p, k := range seen {
		f.seen[p] = k
	}
	for _, m := range mvs {
		m.n.base().rel = m.dest
		f.nodes[m.dest] = m.n
	}
	f.mu.Unlock()
	if replaced != nil {
		replaced.unlink() // still open: it keeps working and commits nothing
	}
}

// invalidateAttr makes the kernel forget the attributes of n.
func (f *FS) invalidateAttr(n node) {
	f.invalidate(n, false)
}

// invalidateData makes the kernel forget the attributes and cached pages
// of n.
func (f *FS) invalidateData(n node) {
	f.invalidate(n, true)
}

func (f *FS) invalidate(n node, data bool) {
	f.mu.Lock()
	srv := f.srv
	f.mu.Unlock()
	if srv == nil {
		return
	}
	if data {
		if err := srv.InvalidateNodeData(n); err != nil && !errors.Is(err, fuse.ErrNotCached) {
			f.log.Debug("invalidate data", "err", err)
		}
	}
	if err := srv.InvalidateNodeAttr(n); err != nil && !errors.Is(err, fuse.ErrNotCached) {
		f.log.Debug("invalidate attributes", "err", err)
	}
}

// tree is the directory structure of one view of the index, beside the
// view it was built from.
type tree struct {
	*namespace.Tree
	view *core.View
}

// entry returns name's index entry, the zero Entry when it has none.
func (t *tree) entry(name string) core.Entry {
	e, _ := t.view.Entry(name)
	return e
}

// tree returns the directory structure of the current view of the index,
// built once per view.
func (f *FS) tree(ctx context.Context) (*tree, error) {
	v, err := f.g.View(ctx)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	old := f.tr
	f.mu.Unlock()
	if old != nil && old.view.Same(v) {
		return old, nil
	}
	t := &tree{Tree: namespace.New(v), view: v}
	f.mu.Lock()
	f.tr = t
	f.mu.Unlock()
	if old != nil {
		go f.viewChanged(old, t) // not from within a request: the kernel may wait for it
	}
	return t, nil
}

func (f *FS) fileMode() os.FileMode { return 0o666 &^ f.cfg.Umask }
func (f *FS) dirMode() os.FileMode  { return os.ModeDir | 0o777&^f.cfg.Umask }

// newMode is the mode recorded for a file or directory created with mode
// by a process with umask: both that umask and CreateUmask apply.
func (f *FS) newMode(mode, umask os.FileMode) os.FileMode {
	return modeBits(mode) &^ umask.Perm() &^ f.cfg.CreateUmask.Perm()
}

// entryOf returns the index entry of name in the current view (within
// IndexTTL), false when it has none or the index cannot be read.
func (f *FS) entryOf(ctx context.Context, name string) (core.Entry, bool) {
	t, err := f.tree(ctx)
	if err != nil {
		return core.Entry{}, false
	}
	return t.view.Entry(name)
}

// checkSetattr refuses a setattr on p this mount cannot keep: any change
// on a read-only mount (EROFS), and chown or chgrp to another owner than
// the mount's (EPERM, logged once). Owners are not stored: uids differ
// between the hosts that share a group, so a stored uid would name a
// different user on each of them; the mount's uid= and gid= options say
// who owns everything.
func (f *FS) checkSetattr(req *fuse.SetattrRequest, p string) error {
	if f.cfg.ReadOnly {
		return f.errno("setattr", p, syscall.EROFS)
	}
	if (req.Valid.Uid() && req.Uid != f.cfg.UID) || (req.Valid.Gid() && req.Gid != f.cfg.GID) {
		f.logOnce("chown", "chown refused: owners are the mount's uid= and gid= options, not stored (EPERM)", "path", "/"+p)
		return syscall.EPERM // logged once above
	}
	return nil
}

// inode numbers are derived from paths, so they are stable across lookups.
func inode(path string) uint64 {
	if path == "" {
		return 1
	}
	h := fnv.New64a()
	h.Write([]byte(path))
	if n := h.Sum64(); n > 1 {
		return n
	}
	return 2
}
