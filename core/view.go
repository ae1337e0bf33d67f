package core

import (
	"context"
	"iter"
)

// View is the group's index at one moment: what one read of the bucket, or
// one commit of this host, left. It never changes (a later commit makes a
// new View) and is safe for concurrent use. Entries it yields share their
// Data with the View and must not be modified.
type View struct{ v *view }

// View returns the group's index from a view no older than IndexTTL.
func (g *Group) View(ctx context.Context) (*View, error) {
	v, err := g.fresh(ctx)
	if err != nil {
		return nil, err
	}
	if v.err != nil {
		return nil, &OpError{Op: "list", Group: g.name, Err: v.err}
	}
	return &View{v: v}, nil
}

// Entry returns the entry of name, false when the view has none.
func (v *View) Entry(name string) (Entry, bool) {
	e, ok := v.v.idx.Entries[name]
	return e, ok
}

// Key returns the key of name's current version, false when the view has
// no such name.
func (v *View) Key(name string) (string, bool) {
	e, ok := v.v.idx.Entries[name]
	return e.Key, ok
}

// Len returns the number of names in the view.
func (v *View) Len() int { return len(v.v.idx.Entries) }

// Names returns the view's names in byte order, in a new slice.
func (v *View) Names() []string { return v.v.idx.names() }

// All yields every name of the view with its entry, in no order.
func (v *View) All() iter.Seq2[string, Entry] {
	return func(yield func(string, Entry) bool) {
		for n, e := range v.v.idx.Entries {
			if !yield(n, e) {
				return
			}
		}
	}
}

// Same reports whether v and o are the same state of the index (one read
// or commit), so that what was derived from one can be kept for the other.
func (v *View) Same(o *View) bool { return o != nil && v.v == o.v }

// key returns the current key of name from a view no older than IndexTTL,
// or ErrNotExist.
func (g *Group) key(ctx context.Context, name string) (string, error) {
	v, err := g.View(ctx)
	if err != nil {
		return "", err
	}
	k, ok := v.Key(name)
	if !ok {
		return "", &OpError{Op: "read", Group: g.name, Name: name, Err: ErrNotExist}
	}
	return k, nil
}
