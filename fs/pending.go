package fs

import (
	"context"
	"strings"

	"github.com/b2cfs/b2cfs/namespace"
)

// New files are committed once. Create makes a file node that only this
// host knows, holding an empty local copy, and the first close (or fsync)
// of any of its descriptors commits it, creating the object with what it
// holds then: a file created, written and closed is one commit, not an
// empty one at create and another at close. Until then the node is
// pending: lookups, listings, unlink and rename on this host see it (FS
// keeps it beside the index's tree), other hosts do not, and a crash
// before the first close loses the empty file as it loses the unsaved
// bytes. Unlinking a pending file costs nothing; renaming one to a free
// name moves it here only, so that a temporary file renamed before its
// first close is committed once, under its final name. If another host
// created the name meanwhile, the commit fails with EBUSY and the bytes are
// kept, except for a file that was never written: it opens theirs, as
// O_CREAT opens an existing file.

// pendingNode returns the pending file at p, or nil.
func (f *FS) pendingNode(p string) *file {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pending[p]
}

// settled takes n out of the pending files: its commit created the
// object, or failed and left nothing to create.
func (f *FS) settled(n *file) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := n.rel; f.pending[p] == n {
		delete(f.pending, p)
	}
}

// isPending reports whether n is a pending file.
func (n *file) isPending() bool {
	f := n.fs
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pending[n.rel] == n
}

// pendingIn returns the names of the pending files directly in dir.
func (f *FS) pendingIn(dir string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for p := range f.pending {
		if d, name := namespace.Split(p); d == dir {
			out = append(out, name)
		}
	}
	return out
}

// pendingUnder returns the pending files at p or below it.
func (f *FS) pendingUnder(p string) []*file {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*file
	for q, n := range f.pending {
		if q == p || p == "" || strings.HasPrefix(q, p+"/") {
			out = append(out, n)
		}
	}
	return out
}

// commitPending commits the pending files at p or below it, for an
// operation that needs them in B2 (a rename over an existing object, or
// of a directory).
func (f *FS) commitPending(ctx context.Context, p string) error {
	for _, n := range f.pendingUnder(p) {
		if err := n.commit(ctx); err != nil {
			return err
		}
	}
	return nil
}

// renamePending renames what is pending in a rename of from to to. A
// pending file moving to a name free in the index moves here alone (done:
// no B2 call). Otherwise the pending files the rename needs in B2 (from,
// or what is under it) are committed first: the rename then goes on as
// for committed files (and replaces a pending target as any other).
func (d *dir) renamePending(ctx context.Context, from, to string) (done bool, err error) {
	f := d.fs
	t, err := f.tree(ctx)
	if err != nil {
		return false, err
	}
	n := f.pendingNode(from)
	_, taken := t.File(to)
	if n != nil && !taken && !t.IsDir(to) {
		f.moved(from, to) // a pending target goes, as any replaced one
		return true, nil
	}
	return false, f.commitPending(ctx, from)
}
