package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// maxVersions bounds the number of cached versions whatever their size, so
// that many tiny files cannot exhaust file descriptors.
const maxVersions = 4096

// FillFunc writes the data of one version to w. It must return when ctx ends.
type FillFunc func(ctx context.Context, w io.Writer) error

// Cache is a size-bounded store of version data on local disk. It is safe
// for concurrent use.
type Cache struct {
	dir    string
	max    int64
	ctx    context.Context // ends on Close; fills run under it
	cancel context.CancelFunc

	mu   sync.Mutex
	lru  *simplelru.LRU[string, *Version] // GUARDED_BY(mu); every version reachable by Open
	used int64                            // GUARDED_BY(mu); bytes of the complete versions in lru
	seq  int64                            // GUARDED_BY(mu); makes temporary names unique

	stats counters
}

// New opens the cache in dir, creating it if needed, with a budget of
// maxBytes for cached versions (files in use may exceed it). Leftover
// private copies of an earlier process are moved to the recovery directory.
func New(dir string, maxBytes int64) (*Cache, error) {
	for _, sub := range []string{"versions", "dirty", "recovery"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
	}
	if err := emptyDir(filepath.Join(dir, "versions")); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	left, err := os.ReadDir(filepath.Join(dir, "dirty"))
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	for _, e := range left {
		from := filepath.Join(dir, "dirty", e.Name())
		if err := os.Rename(from, filepath.Join(dir, "recovery", "leftover-"+e.Name())); err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
	}
	c := &Cache{dir: dir, max: maxBytes}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	// Eviction is done by hand (evictLocked) to skip versions in use; the
	// callback only covers the count limit, which never hits a version in
	// use in practice and is then harmless: the holder keeps its file open.
	c.lru, _ = simplelru.NewLRU[string, *Version](maxVersions, func(_ string, v *Version) {
		c.dropLocked(v)
	})
	return c, nil
}

// Dir returns the directory of the cache.
func (c *Cache) Dir() string { return c.dir }

// RecoveryDir returns the directory where Keep puts rejected changes.
func (c *Cache) RecoveryDir() string { return filepath.Join(c.dir, "recovery") }

// Close stops running fills. Versions already held stay readable.
func (c *Cache) Close() error {
	c.cancel()
	return nil
}

// Used returns the bytes held by cached versions.
func (c *Cache) Used() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}

// Open returns version key of name, held for the caller until Release. If
// the version is not cached, fill is started in the background and the
// version can be read while it fills. A fill that fails is reported by the
// readers of that version and not kept, so the next Open tries again.
func (c *Cache) Open(name, key string, fill FillFunc) *Version {
	id := versionID(name, key)
	c.mu.Lock()
	if v, ok := c.lru.Get(id); ok {
		v.refs++
		c.mu.Unlock()
		c.stats.hits.Add(1)
		return v
	}
	c.stats.misses.Add(1)
	v := &Version{c: c, id: id, refs: 1, progress: make(chan struct{})}
	path := filepath.Join(c.dir, "versions", id)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		v.fail(err)
		c.mu.Unlock()
		return v
	}
	v.f = f
	ctx, cancel := context.WithCancel(c.ctx)
	v.cancel = cancel
	c.lru.Add(id, v)
	c.mu.Unlock()
	go v.fill(ctx, fill)
	return v
}

// Put makes f, a complete private copy of size bytes, the cached version key
// of name, and returns it held for the caller. f is moved into the cache and
// must not be used by the caller any more.
func (c *Cache) Put(name, key string, f *os.File, size int64) (*Version, error) {
	id := versionID(name, key)
	var evicted []*Version
	c.mu.Lock()
	if old, ok := c.lru.Peek(id); ok {
		// Only if the same version was opened meanwhile: drop that copy.
		c.lru.Remove(id)
		if old.refs == 0 && old.isDone() {
			evicted = append(evicted, old)
		}
	}
	c.mu.Unlock()
	closeAll(evicted)
	if err := os.Rename(f.Name(), filepath.Join(c.dir, "versions", id)); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	done := make(chan struct{})
	close(done)
	v := &Version{c: c, id: id, f: f, refs: 1, written: size, size: size, done: true, progress: done}
	c.mu.Lock()
	c.lru.Add(id, v)
	c.used += size
	evicted = c.evictLocked()
	c.mu.Unlock()
	closeAll(evicted)
	return v, nil
}

// NewFile returns an empty private file for a copy being changed. Give it
// back with Put, Keep or Discard.
func (c *Cache) NewFile() (*os.File, error) {
	c.mu.Lock()
	c.seq++
	n := c.seq
	c.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(c.dir, "dirty", fmt.Sprintf("%d-%d", os.Getpid(), n)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return f, nil
}

// Keep moves the private file f, a changed copy of object name, into the
// recovery directory, closes it and returns its new path.
func (c *Cache) Keep(f *os.File, name string) (string, error) {
	c.mu.Lock()
	c.seq++
	n := c.seq
	c.mu.Unlock()
	base := strings.NewReplacer("/", "%2F", "%", "%25").Replace(name)
	if len(base) > 180 {
		base = base[:180]
	}
	dst := filepath.Join(c.RecoveryDir(), fmt.Sprintf("%s.%s.%d", base, time.Now().UTC().Format("20060102T150405Z"), n))
	err := os.Rename(f.Name(), dst)
	f.Close()
	if err != nil {
		return "", fmt.Errorf("cache: keep %q: %w", name, err)
	}
	return dst, nil
}

// Discard closes and deletes the private file f.
func (c *Cache) Discard(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}

// release drops one hold on v.
func (c *Cache) release(v *Version) {
	c.mu.Lock()
	v.refs--
	var evicted []*Version
	if v.refs == 0 {
		if !v.isDone() {
			// Nobody needs the rest of this download.
			v.cancel()
			c.removeLocked(v)
		}
		if v.dropped && v.isDone() {
			evicted = append(evicted, v)
		}
		evicted = append(evicted, c.evictLocked()...)
	}
	c.mu.Unlock()
	closeAll(evicted)
}

// evictLocked removes the least recently used versions nobody holds until
// the budget is met, and returns them so their files are closed outside the
// lock.
func (c *Cache) evictLocked() []*Version {
	var out []*Version
	for _, id := range c.lru.Keys() {
		if c.used <= c.max {
			break
		}
		v, _ := c.lru.Peek(id)
		if v.refs > 0 || !v.isDone() {
			continue
		}
		c.lru.Remove(id) // calls dropLocked
		out = append(out, v)
	}
	return out
}

// removeLocked takes v out of the cache if it is there.
func (c *Cache) removeLocked(v *Version) {
	if cur, ok := c.lru.Peek(v.id); ok && cur == v {
		c.lru.Remove(v.id)
	}
}

// dropLocked is the eviction callback: it forgets v's bytes and deletes its
// file name, leaving the open file to any holder.
func (c *Cache) dropLocked(v *Version) {
	if v.isDone() && v.err == nil {
		c.used -= v.size
	}
	if v.f != nil {
		os.Remove(filepath.Join(c.dir, "versions", v.id))
	}
	v.dropped = true
}

func closeAll(vs []*Version) {
	for _, v := range vs {
		if v.f != nil {
			v.f.Close()
		}
	}
}

func versionID(name, key string) string {
	h := sha256.Sum256([]byte(name + "\x00" + key))
	return hex.EncodeToString(h[:])
}

func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
	}
	return errors.Join(errs...)
}
