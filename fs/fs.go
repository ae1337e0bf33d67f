package fs

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync"
	"time"

	"bazil.org/fuse"
	fusefs "bazil.org/fuse/fs"

	"github.com/b2cfs/b2cfs/cache"
	"github.com/b2cfs/b2cfs/core"
)

// dirMarkers prefixes the marker objects of directories made with mkdir.
const dirMarkers = core.DirMarkers

// Config describes a mount.
type Config struct {
	Group    *core.Group
	Cache    *cache.Cache
	ReadOnly bool
	UID, GID uint32
	Umask    os.FileMode
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
	open    map[*openFile]struct{}      // GUARDED_BY(mu); every handle not yet released
	handles map[fuse.HandleID]*openFile // GUARDED_BY(mu); kernel handle ids seen so far
	seen    map[string]string           // GUARDED_BY(mu); path -> version this host last showed a process
	tr      *tree                       // GUARDED_BY(mu); built from the last index seen
	locks   map[lockID]*ownerLock       // GUARDED_BY(mu); distributed locks of kernel lock owners
	attrs   *attrQueue                  // chmod and utimes changes not committed yet (attrs.go)

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
		open:    map[*openFile]struct{}{},
		handles: map[fuse.HandleID]*openFile{},
		seen:    map[string]string{},
		locks:   map[lockID]*ownerLock{},
		attrs:   newAttrQueue(),
		life:    life, stop: stop,
	}
	go f.runAttrs()
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

// Statfs reports made-up capacity: B2 has no meaningful limit in bytes.
func (f *FS) Statfs(ctx context.Context, req *fuse.StatfsRequest, resp *fuse.StatfsResponse) error {
	entries, err := f.g.Entries(ctx)
	if err != nil {
		return f.errno("statfs", "", err)
	}
	resp.Bsize = 4096
	resp.Frsize = 4096
	resp.Blocks = 1 << 40
	resp.Bfree = 1 << 40
	resp.Bavail = 1 << 40
	resp.Files = uint64(len(entries))
	resp.Ffree = 1 << 20
	resp.Namelen = 255
	return nil
}

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
}

func (b *nodeBase) base() *nodeBase { return b }

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
	d := &dir{nodeBase{fs: f, rel: path}}
	f.nodes[path] = d
	return d
}

// fileNode returns the file node of path for version e: the node the path
// has, unless it shows another version and holds no changes; then a new
// node, so that handles open on the old one keep their version (file).
func (f *FS) fileNode(path string, e core.Entry) *file {
	f.mu.Lock()
	n, ok := f.nodes[path].(*file)
	f.mu.Unlock()
	if ok && !n.replaceable(e.Key) {
		return n
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if cur, ok := f.nodes[path].(*file); ok && cur != n {
		return cur // another lookup got there first
	}
	n = &file{nodeBase: nodeBase{fs: f, rel: path}, key: e.Key, entry: e}
	f.nodes[path] = n
	return n
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
	f.mu.Lock()
	n, _ := f.nodes[path].(*file)
	delete(f.nodes, path)
	delete(f.seen, path)
	f.mu.Unlock()
	if n != nil {
		n.unlink()
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

// tree returns the directory structure of the current view of the index.
func (f *FS) tree(ctx context.Context) (*tree, error) {
	entries, attrs, err := f.g.Index(ctx)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	t := f.tr
	f.mu.Unlock()
	// Entries returns the same map for the same view, so the tree is built
	// once per view.
	if t != nil && reflect.ValueOf(t.src).UnsafePointer() == reflect.ValueOf(entries).UnsafePointer() {
		return t, nil
	}
	t = buildTree(entries)
	t.attrs = attrs
	f.mu.Lock()
	f.tr = t
	f.mu.Unlock()
	return t, nil
}

func (f *FS) fileMode() os.FileMode { return 0o666 &^ f.cfg.Umask }
func (f *FS) dirMode() os.FileMode  { return os.ModeDir | 0o777&^f.cfg.Umask }

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

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func split(path string) (dir, name string) {
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		return "", path
	}
	return path[:i], path[i+1:]
}

// reserved reports whether path is b2cfs's own.
func reserved(path string) bool {
	return path+"/" == core.ReservedPrefix || strings.HasPrefix(path, core.ReservedPrefix)
}
