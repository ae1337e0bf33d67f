package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// CommitOption sets an attribute of a committed version. Formats without
// attributes (FormatBlazer) ignore them.
type CommitOption func(*Entry)

// WithMode records the permission bits of the version.
func WithMode(mode os.FileMode) CommitOption {
	return func(e *Entry) { e.Mode = uint32(mode.Perm()) }
}

// WithMTime records the modification time of the version (default: the
// commit time).
func WithMTime(t time.Time) CommitOption {
	return func(e *Entry) { e.MTime = t.UnixNano() }
}

// Commit stores size bytes of data as the new version of name, if name
// still has key (an empty key: if name does not exist). It returns the new
// key. On ErrConflict, ErrGroupFull or any other failure nothing stored
// changes and the uploaded version is deleted again, except on an error
// matching ErrUnknownOutcome (B2 could not be read back to learn whether the
// commit landed): then the upload is kept, since the index may reference
// it, for the grace-period deleter and gc, which check references first.
// ctx bounds the commit until its update is sent; from then on it runs to
// its outcome (see apply). One upload and one b2_update_bucket when the
// view is current (FormatB2cfs adds, now and then, the upload of a delta of
// the index).
func (g *Group) Commit(ctx context.Context, name, key string, data io.ReaderAt, size int64, opts ...CommitOption) (string, error) {
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
	file := g.file(name, nk)
	fi, err := g.store.Upload(ctx, file, data, size, g.name)
	if err != nil {
		return "", &OpError{Op: "commit", Group: g.name, Name: name, Err: err}
	}
	g.remember(file, fi)
	ne := Entry{Key: nk, Size: size, MTime: g.opts.Now().UnixNano(), ID: fi.ID}
	for _, o := range opts {
		o(&ne)
	}
	var old Entry
	err = g.apply(ctx, func(idx *index) error {
		cur, ok := idx.Entries[name]
		if ok != (key != "") || cur.Key != key {
			return ErrConflict
		}
		if ne.Mode == 0 {
			ne.Mode = cur.Mode
		}
		old = cur
		idx.Entries[name] = ne
		return nil
	})
	if err != nil {
		if !errors.Is(err, ErrUnknownOutcome) {
			g.discard(file, fi.ID)
		}
		return "", &OpError{Op: "commit", Group: g.name, Name: name, Err: err}
	}
	if small != nil {
		g.small.Add(file, small)
	}
	if key != "" {
		g.supersede(name, old)
	}
	return nk, nil
}

// Remove takes name out of the group if it still has key. The data is
// deleted after the grace period.
func (g *Group) Remove(ctx context.Context, key, name string) error {
	var old Entry
	err := g.apply(ctx, func(idx *index) error {
		cur, ok := idx.Entries[name]
		if !ok {
			return ErrNotExist
		}
		if cur.Key != key {
			return ErrConflict
		}
		old = cur
		delete(idx.Entries, name)
		return nil
	})
	if err != nil {
		return &OpError{Op: "remove", Group: g.name, Name: name, Err: err}
	}
	g.supersede(name, old)
	return nil
}

// AttrChange sets attributes of object Name without changing its content
// or key.
type AttrChange struct {
	Name string
	Opts []CommitOption
}

// SetAttrs applies changes in one commit; names that no longer exist are
// skipped. Formats without attributes (FormatBlazer) make no call.
func (g *Group) SetAttrs(ctx context.Context, changes []AttrChange) error {
	if !g.format().hasAttrs() || len(changes) == 0 {
		return nil
	}
	err := g.apply(ctx, func(idx *index) error {
		for _, c := range changes {
			e, ok := idx.Entries[c.Name]
			if !ok {
				continue
			}
			for _, o := range c.Opts {
				o(&e)
			}
			idx.Entries[c.Name] = e
		}
		return nil
	})
	if err != nil {
		return &OpError{Op: "setattr", Group: g.name, Name: changes[0].Name, Err: err}
	}
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
	if _, ok := v.idx.Entries[name]; ok || v.format.hasAttrs() {
		return nil // replacing never grows the index; manifests have no limit
	}
	idx := v.idx.clone()
	idx.Entries[name] = Entry{Key: newKey()}
	idx.stamp(newCommitID())
	_, _, err = g.encode(ctx, v, idx)
	return err
}

// supersede schedules the deletion of the version e of name.
func (g *Group) supersede(name string, e Entry) {
	fn := g.file(name, e.Key)
	id, ok := g.ids.Get(fn)
	if !ok {
		id = e.ID
	}
	g.ids.Remove(fn)
	g.small.Remove(fn)
	g.del.later(fn, id)
}

// discard deletes an uploaded file that never became visible.
func (g *Group) discard(file, id string) {
	g.ids.Remove(file)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.store.Delete(ctx, file, id); err != nil {
		g.opts.Logger.Warn("uncommitted upload not deleted", "file", file, "err", fmt.Sprint(err))
	}
}
