package core

import (
	"context"
	"fmt"
)

// Move renames object From, at version Key, to To.
type Move struct {
	From, To, Key string
}

// Rename applies moves atomically: each version is copied on the server to
// its new name, then one compare-and-swap removes every From and sets every
// To, replacing existing targets as POSIX rename does. If any From no longer
// has its Key the whole rename fails with ErrConflict (ErrNotExist when it
// is gone) and nothing stored changes.
func (g *Group) Rename(ctx context.Context, moves []Move) error {
	type copied struct {
		Move
		newKey string
		id     string
	}
	var done []copied
	undo := func() {
		for _, c := range done {
			g.discard(fileName(c.To, c.newKey), c.id)
		}
	}
	for _, m := range moves {
		if err := CheckName(m.To); err != nil {
			undo()
			return &OpError{Op: "rename", Group: g.name, Name: m.From, Err: err}
		}
		src := fileName(m.From, m.Key)
		id, ok := g.ids.Get(src)
		if !ok {
			fi, err := g.store.Stat(ctx, src)
			if err != nil {
				undo()
				return &OpError{Op: "rename", Group: g.name, Name: m.From, Err: err}
			}
			id = fi.ID
		}
		nk := newKey()
		fi, err := g.store.Copy(ctx, src, id, fileName(m.To, nk))
		if err != nil {
			undo()
			return &OpError{Op: "rename", Group: g.name, Name: m.From, Err: err}
		}
		g.remember(fileName(m.To, nk), fi)
		done = append(done, copied{Move: m, newKey: nk, id: fi.ID})
	}
	var replaced []Move
	_, _, err := g.apply(ctx, func(idx *index) error {
		replaced = replaced[:0]
		for _, c := range done {
			cur, ok := idx.Entries[c.From]
			if !ok {
				return fmt.Errorf("%w: %q", ErrNotExist, c.From)
			}
			if cur != c.Key {
				return ErrConflict
			}
			delete(idx.Entries, c.From)
		}
		for _, c := range done {
			if old, ok := idx.Entries[c.To]; ok {
				replaced = append(replaced, Move{From: c.To, Key: old})
			}
			idx.Entries[c.To] = c.newKey
		}
		return nil
	})
	if err != nil {
		undo()
		return &OpError{Op: "rename", Group: g.name, Name: moves[0].From, Err: err}
	}
	for _, c := range done {
		g.supersede(c.From, c.Key)
	}
	for _, r := range replaced {
		g.supersede(r.From, r.Key)
	}
	return nil
}
