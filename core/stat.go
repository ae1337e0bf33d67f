package core

import (
	"context"
	"strings"
	"time"
)

// Stat returns the size and modification time of version key of name.
// In FormatB2cfs they come from the newest view that has that version,
// since utimes changes a version's time (SetAttrs): the view as it is,
// then a reload when the key is not in it. Elsewhere, and for versions no
// view has any more, the answer is B2's upload time, cached for good; a
// miss costs one look-up (Class B), or none after Prefetch.
func (g *Group) Stat(ctx context.Context, name, key string) (FileInfo, error) {
	fn := g.file(name, key)
	if g.format().hasAttrs() {
		for i, load := range []func() (*view, error){
			func() (*view, error) { return g.current(ctx, -1) },
			func() (*view, error) { return g.reload(ctx) },
		} {
			if _, ok := g.attrs.Get(fn); ok && i > 0 {
				break // a version no longer current: its last known attributes
			}
			v, err := load()
			if err != nil {
				return FileInfo{}, &OpError{Op: "stat", Group: g.name, Name: name, Err: err}
			}
			if v.idx == nil {
				break
			}
			if e, ok := v.idx.Entries[name]; ok && e.Key == key {
				fi := FileInfo{Name: fn, ID: e.ID, Size: e.Size, Modified: time.Unix(0, e.MTime)}
				g.attrs.Add(fn, fi)
				return fi, nil
			}
		}
	}
	if fi, ok := g.attrs.Get(fn); ok {
		return fi, nil
	}
	if b, ok := g.inline.Get(fn); ok {
		return FileInfo{Name: fn, Size: int64(len(b))}, nil // an inline version has no file to stat
	}
	fi, err := g.store.Stat(ctx, fn)
	if err != nil {
		return FileInfo{}, &OpError{Op: "stat", Group: g.name, Name: name, Err: err}
	}
	g.remember(fn, fi)
	return fi, nil
}

// Prefetch caches the attributes of every version whose object name starts
// with prefix, with one listing pass (one Class C call per 1,000 files), so
// that Stat of those versions costs nothing.
func (g *Group) Prefetch(ctx context.Context, prefix string) error {
	if g.format().hasAttrs() {
		return nil // the index has them
	}
	files, err := g.store.List(ctx, prefix)
	if err != nil {
		return &OpError{Op: "stat", Group: g.name, Name: prefix, Err: err}
	}
	for _, fi := range files {
		i := strings.LastIndexByte(fi.Name, '/')
		if i < 0 || !validKey(fi.Name[i+1:]) {
			continue
		}
		g.remember(fi.Name, fi)
	}
	return nil
}

// Cached reports whether the attributes of version key of name are cached.
func (g *Group) Cached(name, key string) bool {
	return g.attrs.Contains(g.file(name, key))
}

func (g *Group) remember(file string, fi FileInfo) {
	g.attrs.Add(file, fi)
	if fi.ID != "" {
		g.ids.Add(file, fi.ID)
	}
}
