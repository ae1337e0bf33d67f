package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// CommitOption sets an attribute of a committed version. Formats without
// attributes (FormatBlazer) ignore them.
type CommitOption func(*Entry)

// WithMode records the type (os.ModeDir, os.ModeSymlink, else a regular
// file) and permission bits of the version; 0000 is kept as such.
func WithMode(mode os.FileMode) CommitOption {
	return func(e *Entry) { e.Mode = stMode(mode) }
}

// WithMTime records the modification time of the version (default: the
// commit time).
func WithMTime(t time.Time) CommitOption {
	return func(e *Entry) { e.MTime = t.UnixNano() }
}

// WithAppended records that the version begins with every byte of the
// version it replaces: it only appended. Its entry's Prev then names the
// first version of the run of appends it belongs to, so that a host reading
// any version of that run can go on reading the new one where its own
// ends (as a local file grows under a reader) instead of opening it anew.
func WithAppended() CommitOption {
	return func(e *Entry) { e.Prev = appendedMark }
}

// appendedMark in a new entry's Prev stands for WithAppended until the
// commit knows the version it replaces; it is never stored.
const appendedMark = "+"

// lineage returns the Prev of ne, which replaces cur (ok: it exists).
func lineage(ne, cur Entry, ok bool) string {
	switch {
	case ne.Prev != appendedMark:
		return ne.Prev
	case !ok:
		return ""
	case cur.Prev != "":
		return cur.Prev
	}
	return cur.Key
}

// WithATime records the access time of the version (default: its
// modification time). Reads never change it.
func WithATime(t time.Time) CommitOption {
	return func(e *Entry) { e.ATime = t.UnixNano() }
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
// the index). In FormatB2cfs a version of at most Options.InlineMax bytes
// goes into the index itself while the group's inline versions take less
// than InlineTotal bytes: no upload, and reading it costs no download.
func (g *Group) Commit(ctx context.Context, name, key string, data io.ReaderAt, size int64, opts ...CommitOption) (string, error) {
	if err := g.checkName(name); err != nil {
		return "", &OpError{Op: "commit", Group: g.name, Name: name, Err: err}
	}
	if err := g.precheck(ctx, name); err != nil {
		return "", &OpError{Op: "commit", Group: g.name, Name: name, Err: err}
	}
	ne, f, err := g.stage(ctx, Change{Name: name, Key: key, Data: data, Size: size, Opts: opts}, g.inlineBudget(ctx))
	if err != nil {
		return "", &OpError{Op: "commit", Group: g.name, Name: name, Err: err}
	}
	var old Entry
	err = g.apply(ctx, func(idx *index) (err error) {
		old, err = replace(idx, name, key, ne)
		return err
	})
	if err != nil {
		if f.id != "" && !errors.Is(err, ErrUnknownOutcome) {
			g.discard(f.name, f.id)
		}
		return "", &OpError{Op: "commit", Group: g.name, Name: name, Err: err}
	}
	if key != "" {
		g.supersede(name, old)
	}
	return ne.Key, nil
}

// replace makes e the entry of name in idx if name still has version key
// ("": if name does not exist), and returns the entry it replaces. A
// symbolic link is never replaced by a file (ErrConflict).
func replace(idx *index, name, key string, e Entry) (Entry, error) {
	cur, ok := idx.Entries[name]
	if ok != (key != "") || cur.Key != key {
		return Entry{}, fmt.Errorf("%w: %q changed", ErrConflict, name)
	}
	if cur.IsLink() {
		return Entry{}, fmt.Errorf("%w: %q is a symbolic link", ErrConflict, name)
	}
	if e.Mode == 0 {
		e.Mode = cur.Mode
	}
	e.Prev = lineage(e, cur, ok)
	idx.Entries[name] = e
	return cur, nil
}

// Remove takes name out of the group if it still has key. The data is
// deleted after the grace period.
func (g *Group) Remove(ctx context.Context, name, key string) error {
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
// or key, if Name still has version Key ("": whatever version it has).
type AttrChange struct {
	Name string
	Key  string
	Opts []CommitOption
}

// SetAttrs applies changes in one commit; a change whose object no longer
// exists, or has another version than its Key (the one it was made on was
// replaced), is skipped. Formats without attributes (FormatBlazer) make no
// call.
func (g *Group) SetAttrs(ctx context.Context, changes []AttrChange) error {
	if !g.format().hasAttrs() || len(changes) == 0 {
		return nil
	}
	now := g.opts.Now().UnixNano()
	err := g.apply(ctx, func(idx *index) error {
		for _, c := range changes {
			e, ok := idx.Entries[c.Name]
			if !ok || (c.Key != "" && e.Key != c.Key) {
				continue
			}
			for _, o := range c.Opts {
				o(&e)
			}
			if e.IsLink() != idx.Entries[c.Name].IsLink() {
				continue // a mode never changes a file's type
			}
			e.CTime = now
			idx.Entries[c.Name] = e
		}
		return nil
	})
	if err != nil {
		return &OpError{Op: "setattr", Group: g.name, Name: changes[0].Name, Err: err}
	}
	return nil
}

// Symlink makes name a symbolic link to target, if name does not exist
// (ErrConflict if it does): one b2_update_bucket, no data file, since the
// index entry holds the target. Formats without attributes (FormatBlazer)
// cannot record a link: ErrNotSupported.
func (g *Group) Symlink(ctx context.Context, name, target string, opts ...CommitOption) (string, error) {
	op := func(err error) error { return &OpError{Op: "symlink", Group: g.name, Name: name, Err: err} }
	if err := g.checkName(name); err != nil {
		return "", op(err)
	}
	if !g.format().hasAttrs() {
		return "", op(fmt.Errorf("%w: the %s format cannot record symbolic links", ErrNotSupported, FormatBlazer))
	}
	if target == "" || len(target) > MaxLinkBytes {
		return "", op(fmt.Errorf("%w: a link target is 1 to %d bytes", ErrBadName, MaxLinkBytes))
	}
	now := g.opts.Now().UnixNano()
	ne := Entry{Key: newKey(), Size: int64(len(target)), MTime: now, CTime: now, Link: target}
	for _, o := range opts {
		o(&ne)
	}
	ne.Mode = ModeLink | 0o777
	err := g.apply(ctx, func(idx *index) error {
		if _, ok := idx.Entries[name]; ok {
			return ErrConflict
		}
		idx.Entries[name] = ne
		return nil
	})
	if err != nil {
		return "", op(err)
	}
	return ne.Key, nil
}

// MaxLinkBytes is the longest symbolic link target, as Linux's PATH_MAX.
const MaxLinkBytes = 4095

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
	if !e.HasFile() {
		return // no data file; readers of an inline version keep g.inline
	}
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
	ctx, cancel := withTimeout(context.Background(), g.opts.Clock, 30*time.Second)
	defer cancel()
	if err := g.store.Delete(ctx, file, id); err != nil {
		g.opts.Logger.Warn("uncommitted upload not deleted", "file", file, "err", fmt.Sprint(err))
	}
}

// Inline versions (FormatB2cfs): a version of at most Options.InlineMax
// bytes (default InlineDefault) is kept in the index instead of a data
// file of its own, while the group's inline versions take at most
// InlineTotal bytes together. The index then
// holds small files' bytes: a commit of one is a single b2_update_bucket
// when the pointer has room for it (else one upload of a delta and the
// update, as for any file), and reading one costs no download. The total
// bounds what every base manifest carries, which the index rewrites now
// and then (see manifest.go), and what each view holds in memory.
const (
	InlineDefault = 4 << 10
	InlineTotal   = 1 << 20
)

// inlineBudget returns the bytes left for inline versions in the group
// as the view shows it, for stage, or nil when versions cannot go inline
// (FormatBlazer, or Options.InlineMax negative).
func (g *Group) inlineBudget(ctx context.Context) *atomic.Int64 {
	if g.opts.InlineMax < 0 {
		return nil
	}
	v, err := g.current(ctx, -1)
	if err != nil || v.idx == nil || !v.format.hasAttrs() {
		return nil
	}
	room := new(atomic.Int64)
	room.Store(InlineTotal - v.inlined())
	return room
}

// inlined returns the bytes the view's inline versions take.
func (v *view) inlined() int64 {
	v.inlineOnce.Do(func() {
		for _, e := range v.idx.Entries {
			if e.Inline {
				v.inlineBytes += e.Size
			}
		}
	})
	return v.inlineBytes
}

// inlineVersion returns the bytes of version key of name if it is
// inline: in the view, or remembered since this Group wrote it or saw it
// replaced. The view is looked at first: keepReplaced remembers a version
// before the view that drops it is installed, so one of the two has it.
func (g *Group) inlineVersion(ctx context.Context, name, key string) ([]byte, bool) {
	fn := g.file(name, key)
	if g.format().hasAttrs() {
		if v, err := g.current(ctx, -1); err == nil && v.idx != nil {
			if e, ok := v.idx.Entries[name]; ok && e.Key == key {
				if !e.Inline {
					return nil, false
				}
				if b, err := e.inlineBytes(); err == nil {
					return b, true
				}
			}
		}
	}
	return g.inline.Get(fn)
}
