package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Change is one object of a Publish: version Data (Size bytes) of Name,
// replacing version Key ("": Name must not exist).
type Change struct {
	Name string
	Key  string
	Data io.ReaderAt
	Size int64
	Opts []CommitOption
}

// publishUploads is how many uploads of a Publish run at once.
const publishUploads = 8

// Publish makes every change visible in one compare-and-swap, all or
// nothing: if one of them finds its object changed (ErrConflict) or the
// group full (ErrGroupFull), none lands. It uploads the data first, up
// to eight files at once (small versions go inline, as in Commit), and
// calls progress, if not nil, with the bytes of each finished upload (one
// call at a time). It
// returns the new keys in the order of changes. As for Commit, uploads of
// a failed Publish are deleted, except when the outcome is unknown
// (ErrUnknownOutcome); ctx bounds it until the update is sent. An
// interrupted Publish leaves nothing visible.
func (g *Group) Publish(ctx context.Context, changes []Change, progress func(n int64)) ([]string, error) {
	op := func(name string, err error) error {
		return &OpError{Op: "publish", Group: g.name, Name: name, Err: err}
	}
	seen := make(map[string]bool, len(changes))
	for _, c := range changes {
		if err := g.checkName(c.Name); err != nil {
			return nil, op(c.Name, err)
		}
		if seen[c.Name] {
			return nil, op(c.Name, fmt.Errorf("%w: named twice", ErrBadName))
		}
		seen[c.Name] = true
	}
	entries := make([]Entry, len(changes))
	files := make([]fileRef, len(changes))
	room := g.inlineBudget(ctx)
	var pmu sync.Mutex // one call of progress at a time
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(publishUploads)
	for i, c := range changes {
		eg.Go(func() error {
			e, f, err := g.stage(ectx, c, room)
			entries[i], files[i] = e, f
			if err == nil && progress != nil {
				pmu.Lock()
				progress(c.Size)
				pmu.Unlock()
			}
			return err
		})
	}
	discard := func() {
		for _, f := range files {
			if f.id != "" {
				g.discard(f.name, f.id)
			}
		}
	}
	if err := eg.Wait(); err != nil {
		discard()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, op("", err)
	}
	olds := make([]Entry, len(changes))
	err := g.apply(ctx, func(idx *index) error {
		for i, c := range changes {
			old, err := replace(idx, c.Name, c.Key, entries[i])
			if err != nil {
				return err // the index is a clone: the changes before go with it
			}
			olds[i] = old
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, ErrUnknownOutcome) {
			discard()
		}
		return nil, op("", err)
	}
	keys := make([]string, len(changes))
	for i, c := range changes {
		keys[i] = entries[i].Key
		if c.Key != "" {
			g.supersede(c.Name, olds[i])
		}
	}
	return keys, nil
}

// stage prepares the version c commits: its entry, and the file it
// uploaded (an empty id when it uploaded nothing). A version goes inline
// when it is small enough and room (bytes left for inline versions; nil:
// none) has its size; a version of at most smallMax bytes is kept in
// memory for readers either way.
func (g *Group) stage(ctx context.Context, c Change, room *atomic.Int64) (Entry, fileRef, error) {
	nk := newKey()
	file := g.file(c.Name, nk)
	now := g.opts.Now().UnixNano()
	e := Entry{Key: nk, Size: c.Size, MTime: now, CTime: now}
	for _, o := range c.Opts {
		o(&e)
	}
	data := c.Data
	var small []byte
	if c.Size <= smallMax {
		small = make([]byte, c.Size)
		if _, err := io.ReadFull(io.NewSectionReader(data, 0, c.Size), small); err != nil {
			return Entry{}, fileRef{}, err
		}
		data = bytes.NewReader(small)
	}
	if room != nil && c.Size <= int64(g.opts.InlineMax) {
		if room.Add(-c.Size) >= 0 {
			e.Inline, e.Data = true, encodeInline(small)
			g.inline.Add(file, small)
		} else {
			room.Add(c.Size)
		}
	}
	if !e.Inline {
		fi, err := g.store.Upload(ctx, file, data, c.Size, g.name)
		if err != nil {
			return Entry{}, fileRef{}, err
		}
		g.remember(file, fi)
		e.ID = fi.ID
		if small != nil {
			g.small.Add(file, small)
		}
	}
	if g.format().hasAttrs() {
		g.attrs.Add(file, FileInfo{Name: file, ID: e.ID, Size: c.Size, Modified: time.Unix(0, e.MTime)})
	}
	return e, fileRef{file, e.ID}, nil
}
