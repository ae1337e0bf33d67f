package core

// Fencing: changes made under a lock carry the lock record as a
// precondition of their own compare-and-swap (see Mutex.Fence).

import (
	"context"
	"errors"
	"slices"
)

// fenceKey is the context key of the mutexes that fence a commit.
type fenceKey struct{}

// Fence returns a context derived from ctx under which every change of
// m's group (Commit, Remove, SetAttrs, Move, a Writer's Close, Operate) is
// fenced by m: it lands only if, at the bucket revision it replaces, m's
// lock record is still the one m last wrote and m still trusts its lease
// (see the lease rules above). Otherwise it changes nothing and fails with
// an error matching ErrLockLost, and the lock is lost (Lost is closed). The
// check is part of the change's own compare-and-swap: it costs no B2 call.
// Fences of several mutexes add up; a mutex of another group is ignored.
// A renewal that lands while a fenced change is under way is no obstacle:
// the fence then reads the record the renewal wrote, which names m (one
// download, cached by key).
func (m *Mutex) Fence(ctx context.Context) context.Context {
	fs, _ := ctx.Value(fenceKey{}).([]*Mutex)
	return context.WithValue(ctx, fenceKey{}, append(fs[:len(fs):len(fs)], m))
}

// fences returns the mutexes of g that fence changes made with ctx, each
// once.
func (g *Group) fences(ctx context.Context) []*Mutex {
	fs, _ := ctx.Value(fenceKey{}).([]*Mutex)
	var out []*Mutex
	for _, m := range fs {
		if m.g == g && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// unfenced strips the fences from ctx: a lock's own record changes are
// not fenced by it.
func unfenced(ctx context.Context) context.Context {
	if ctx.Value(fenceKey{}) == nil {
		return ctx
	}
	return context.WithValue(ctx, fenceKey{}, []*Mutex(nil))
}

// fenceError is the refusal of a fenced change: m no longer holds its
// lock, for the reason why.
type fenceError struct {
	m      *Mutex
	why    string
	lapsed bool // the record may still show m: drop it
}

func (e *fenceError) Error() string {
	return "lock " + e.m.name + " lost (" + e.why + "): a change made under it is refused"
}

func (e *fenceError) Is(target error) bool { return target == ErrLockLost }

// fenced wraps mut with the checks of the fences (see Fence).
func fenced(fs []*Mutex, mut mutation) mutation {
	if len(fs) == 0 {
		return mut
	}
	return func(idx *index) error {
		for _, m := range fs {
			if err := m.check(idx); err != nil {
				return err
			}
		}
		return mut(idx)
	}
}

// loseFenced marks as lost the lock whose fence refused err's change.
func loseFenced(err error) {
	var fe *fenceError
	if errors.As(err, &fe) {
		fe.m.lose("a change made under the lock found it "+fe.why, fe.lapsed)
	}
}

// fenceUnknown asks for the record of version key of m's lock, which a
// fence must read to decide (another host wrote it).
type fenceUnknown struct {
	m   *Mutex
	key string
}

func (e *fenceUnknown) Error() string {
	return "lock record " + e.key + " of " + e.m.name + " not read yet"
}
