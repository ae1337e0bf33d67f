package fs

import (
	"context"
	"errors"
	"time"

	"bazil.org/fuse"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/namespace"
)

// Cross-host freshness. The kernel keeps entries and attributes for the
// mount's TTL (the group's IndexTTL); when this mount's view of the index
// changes, viewChanged tells the kernel what other hosts changed, so that
// ls, stat and new opens see it at once instead of after the kernel's
// copy expires. While any file is open, keepFresh reloads the view every
// TTL, so that a process that polls a name it has open (tail -F) follows
// another host's commits within TTL; a mount with nothing open makes no
// B2 calls of its own.

// viewChanged invalidates, in the kernel, the entries and attributes that
// differ between the trees of two views (stale).
func (f *FS) viewChanged(old, cur *tree) {
	f.mu.Lock()
	srv := f.srv
	f.mu.Unlock()
	if srv == nil {
		return
	}
	var entries, attrs []string // paths whose directory entry, or attributes, to drop
	for name, e := range cur.view.All() {
		if oe, ok := old.view.Entry(name); !ok || oe != e {
			entry, a := f.stale(name, &e, ok && oe.Key == e.Key)
			entries, attrs = append(entries, entry...), append(attrs, a...)
		}
	}
	for name := range old.view.All() {
		if _, ok := cur.view.Entry(name); !ok {
			entry, a := f.stale(name, nil, false)
			entries, attrs = append(entries, entry...), append(attrs, a...)
		}
	}
	for _, p := range entries {
		parent, base := namespace.Split(p)
		f.mu.Lock()
		d, _ := f.nodes[parent].(*dir)
		f.mu.Unlock()
		if d != nil {
			quiet(f, srv.InvalidateEntry(d, base))
		}
	}
	for _, p := range attrs {
		f.mu.Lock()
		n := f.nodes[p]
		f.mu.Unlock()
		if n != nil {
			quiet(f, srv.InvalidateNodeAttr(n))
		}
	}
}

// stale returns what the kernel may hold wrongly once index entry name
// changed to e (nil: removed): the path whose directory entry to drop, so
// that the next lookup finds the new version (a new node), and the paths
// whose attributes to drop (the parent's, whose times and entries changed;
// the path's own when only its attributes changed, sameKey). Nothing for
// a version this host made or showed (the kernel has it), for one that
// only appended to what the path's node shows (the node reads on,
// extendTo), for a file this host has open (its entry expires within
// TTL), or for lock records and other reserved names.
func (f *FS) stale(name string, e *core.Entry, sameKey bool) (entry, attrs []string) {
	p, kind := namespace.Classify(name)
	switch kind {
	case namespace.Root:
		return nil, []string{""}
	case namespace.Internal:
		return nil, nil
	}
	isDir := kind == namespace.Dir
	parent, _ := namespace.Split(p)
	attrs = []string{parent}
	switch {
	case sameKey:
		return nil, append(attrs, p)
	case isDir || e == nil:
	case f.lastSeen(p, "") == e.Key:
		return nil, attrs
	default:
		f.mu.Lock()
		n, _ := f.nodes[p].(*file)
		f.mu.Unlock()
		if n != nil && (n.extendTo(*e) || n.activeHandles()) {
			// Read on; or keep the name's node while this host has it
			// open: the processes that open it meanwhile share its state
			// (and a lock taken on it moves it to B2's version), until the
			// kernel's entry expires within TTL.
			return nil, attrs
		}
	}
	return []string{p}, attrs
}

// quiet logs an invalidation's failure at debug level: the kernel not
// caching the node is the common case.
func quiet(f *FS, err error) {
	if err != nil && !errors.Is(err, fuse.ErrNotCached) {
		f.log.Debug("invalidate", "err", err)
	}
}

// keepFresh reloads the view every TTL (at least every second) while
// any file is open, until the file system shuts down.
func (f *FS) keepFresh() {
	every := max(f.cfg.TTL, time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-f.life.Done():
			return
		case <-t.C:
		}
		f.mu.Lock()
		open := len(f.open) > 0
		f.mu.Unlock()
		if !open {
			continue
		}
		ctx, cancel := context.WithTimeout(f.life, every+30*time.Second)
		if _, err := f.tree(ctx); err != nil {
			f.log.Debug("view not refreshed", "err", err)
		}
		cancel()
	}
}
