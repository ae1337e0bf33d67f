package core

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"
)

// Commit stores size bytes of data as the new version of name, if name
// still has key (an empty key: if name does not exist). It returns the new
// key. On ErrConflict, ErrGroupFull or any other failure nothing stored
// changes: the uploaded version is deleted again. One upload and one
// b2_update_bucket when the view is current.
func (g *Group) Commit(ctx context.Context, name, key string, data io.ReaderAt, size int64) (string, error) {
	if err := CheckName(name); err != nil {
		return "", &OpError{Op: "commit", Group: g.name, Name: name, Err: err}
	}
	if err := g.precheck(ctx, name); err != nil {
		return "", &OpError{Op: "commit", Group: g.name, Name: name, Err: err}
	}
	var small []byte
	if size <= smallMax {
		small = make([]byte, size)
		if _, err := io.ReadFull(io.NewSectionReader(data, 0, size), small); err != nil {
			return "", &OpError{Op: "commit", Group: g.name, Name: name, Err: err}
		}
		data = bytes.NewReader(small)
	}
	nk := newKey()
	fi, err := g.store.Upload(ctx, fileName(name, nk), data, size)
	if err != nil {
		return "", &OpError{Op: "commit", Group: g.name, Name: name, Err: err}
	}
	g.remember(fileName(name, nk), fi)
	_, _, err = g.apply(ctx, func(idx *index) error {
		cur, ok := idx.Entries[name]
		if ok != (key != "") || cur != key {
			return ErrConflict
		}
		idx.Entries[name] = nk
		return nil
	})
	if err != nil {
		g.discard(fileName(name, nk), fi.ID)
		return "", &OpError{Op: "commit", Group: g.name, Name: name, Err: err}
	}
	if small != nil {
		g.small.Add(fileName(name, nk), small)
	}
	if key != "" {
		g.supersede(name, key)
	}
	return nk, nil
}

// Remove takes name out of the group if it still has key. The data is
// deleted after the grace period.
func (g *Group) Remove(ctx context.Context, key, name string) error {
	_, _, err := g.apply(ctx, func(idx *index) error {
		cur, ok := idx.Entries[name]
		if !ok {
			return ErrNotExist
		}
		if cur != key {
			return ErrConflict
		}
		delete(idx.Entries, name)
		return nil
	})
	if err != nil {
		return &OpError{Op: "remove", Group: g.name, Name: name, Err: err}
	}
	g.supersede(name, key)
	return nil
}

// precheck fails early, before any upload, when adding name would overflow
// the index as the view shows it. The commit itself checks again.
func (g *Group) precheck(ctx context.Context, name string) error {
	v, err := g.current(ctx, -1)
	if err != nil {
		return err
	}
	if v.err != nil {
		return v.err
	}
	if _, ok := v.idx.Entries[name]; ok {
		return nil
	}
	idx := v.idx.clone()
	idx.Entries[name] = newKey()
	idx.Serial++
	_, err = g.format.encode(ctx, idx, v.info)
	return err
}

// supersede schedules the deletion of version key of name.
func (g *Group) supersede(name, key string) {
	fn := fileName(name, key)
	id, _ := g.ids.Get(fn)
	g.ids.Remove(fn)
	g.small.Remove(fn)
	g.del.later(fn, id)
}

// discard deletes an uploaded version that never became visible.
func (g *Group) discard(file, id string) {
	g.ids.Remove(file)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.store.Delete(ctx, file, id); err != nil {
		g.opts.Logger.Warn("uncommitted upload not deleted", "file", file, "err", fmt.Sprint(err))
	}
}
