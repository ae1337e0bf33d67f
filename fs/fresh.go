package fs

import (
	"context"
	"errors"
	"strings"
	"time"

	"bazil.org/fuse"
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
// differ between the trees of two views: a name whose version changed to
// one this host did not make or show gets its directory entry dropped, so
// that the next lookup finds the new version (a new node), unless the new
// version only appended to the one its node shows (the node reads on,
// extendTo); a name whose attributes alone changed gets its attributes
// dropped. Lock records and
// other reserved names are not the kernel's business.
func (f *FS) viewChanged(old, cur *tree) {
	f.mu.Lock()
	srv := f.srv
	f.mu.Unlock()
	if srv == nil || old.attrs == nil || cur.attrs == nil {
		return
	}
	var entries []string // paths whose directory entry to drop
	var attrs []string   // paths whose attributes to drop
	note := func(name string, after, sameKey bool, key string) {
		p, isDir := name, false
		switch {
		case name == rootMarker:
			attrs = append(attrs, "")
			return
		case strings.HasPrefix(name, dirMarkers):
			p, isDir = name[len(dirMarkers):], true
		case reserved(name):
			return
		}
		parent, _ := split(p)
		attrs = append(attrs, parent) // its times and entries changed
		if sameKey {
			attrs = append(attrs, p)
			return
		}
		if !isDir && after && f.lastSeen(p, "") == key {
			return // this host made or showed that version: the kernel has it
		}
		f.mu.Lock()
		n, _ := f.nodes[p].(*file)
		f.mu.Unlock()
		if n != nil && after && n.extendTo(cur.attrs[name]) {
			return // the node reads on: its name stays
		}
		entries = append(entries, p)
	}
	for name, e := range cur.attrs {
		oe, ok := old.attrs[name]
		if !ok || oe != e {
			note(name, true, ok && oe.Key == e.Key, e.Key)
		}
	}
	for name := range old.attrs {
		if _, ok := cur.attrs[name]; !ok {
			note(name, false, false, "")
		}
	}
	for _, p := range entries {
		parent, base := split(p)
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
