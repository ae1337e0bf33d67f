package core

import (
	"context"
	"errors"
	"fmt"
)

// Move renames object From, at version Key, to To, which must be at version
// ToKey (empty: To must not exist): the version of the target the caller
// last saw, so that a rename never replaces a change it did not see.
// Rename sets NewKey to the key To has afterwards (Key itself in
// FormatB2cfs, where data does not move).
type Move struct {
	From, To, Key string
	ToKey         string
	NewKey        string
}

// Rename applies moves atomically: one compare-and-swap removes every From
// and sets every To, replacing existing targets as POSIX rename does. If any
// From no longer has its Key, or any To no longer has its ToKey, the whole
// rename fails with ErrConflict (ErrNotExist when a From is gone) and
// nothing stored changes. In FormatB2cfs
// data names do not depend on object names, so a rename is that one commit;
// in FormatBlazer each version is first copied on the server to its new
// name.
func (g *Group) Rename(ctx context.Context, moves []Move) error {
	for _, m := range moves {
		if err := g.checkName(m.To); err != nil {
			return &OpError{Op: "rename", Group: g.name, Name: m.From, Err: err}
		}
	}
	copies := map[string]Entry{} // From -> the copy's entry (FormatBlazer)
	undo := func() {
		for _, m := range moves {
			if c, ok := copies[m.From]; ok {
				g.discard(g.file(m.To, c.Key), c.ID)
			}
		}
	}
	if !g.format().hasAttrs() {
		for _, m := range moves {
			c, err := g.copyVersion(ctx, m)
			if err != nil {
				undo()
				return &OpError{Op: "rename", Group: g.name, Name: m.From, Err: err}
			}
			copies[m.From] = c
		}
	}
	var moved, replaced []Move
	var olds []Entry
	now := g.opts.Now().UnixNano()
	err := g.apply(ctx, func(idx *index) error {
		moved, replaced, olds = moved[:0], replaced[:0], olds[:0]
		news := map[string]Entry{}
		for _, m := range moves {
			if cur, ok := idx.Entries[m.To]; ok != (m.ToKey != "") || cur.Key != m.ToKey {
				return fmt.Errorf("%w: target %q changed since it was seen", ErrConflict, m.To)
			}
		}
		for _, m := range moves {
			cur, ok := idx.Entries[m.From]
			if !ok {
				return fmt.Errorf("%w: %q", ErrNotExist, m.From)
			}
			if cur.Key != m.Key {
				return ErrConflict
			}
			delete(idx.Entries, m.From)
			if c, ok := copies[m.From]; ok {
				olds = append(olds, cur)
				moved = append(moved, m)
				c.Mode, c.MTime = cur.Mode, cur.MTime
				cur = c
			}
			cur.CTime = now // as Linux's rename does
			news[m.To] = cur
		}
		for to, e := range news {
			if old, ok := idx.Entries[to]; ok {
				replaced = append(replaced, Move{From: to, Key: old.Key})
				olds = append(olds, old)
			}
			idx.Entries[to] = e
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, ErrUnknownOutcome) {
			undo() // the copies are not referenced: the rename did not land
		}
		return &OpError{Op: "rename", Group: g.name, Name: moves[0].From, Err: err}
	}
	for i, m := range append(moved, replaced...) {
		g.supersede(m.From, olds[i])
	}
	for i, m := range moves {
		moves[i].NewKey = m.Key
		if c, ok := copies[m.From]; ok {
			moves[i].NewKey = c.Key
		}
	}
	return nil
}

// copyVersion copies version m.Key of m.From to a new version of m.To.
func (g *Group) copyVersion(ctx context.Context, m Move) (Entry, error) {
	src := g.file(m.From, m.Key)
	id, ok := g.ids.Get(src)
	if !ok {
		fi, err := g.store.Stat(ctx, src)
		if err != nil {
			return Entry{}, err
		}
		id = fi.ID
	}
	nk := newKey()
	fi, err := g.store.Copy(ctx, src, id, g.file(m.To, nk))
	if err != nil {
		return Entry{}, err
	}
	g.remember(fi.Name, fi)
	return Entry{Key: nk, Size: fi.Size, ID: fi.ID}, nil
}
