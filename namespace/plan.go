package namespace

import (
	"fmt"
	"sort"
	"strings"
	"syscall"

	"github.com/b2cfs/b2cfs/core"
)

// Moves plans renaming path from to path to in t, as rename(2) does: a
// file replaces a target file; a directory moves with everything in it
// (markers of empty subdirectories included) and replaces an empty target
// directory. Each move replaces its target only at the version t shows
// (Move.ToKey), so that one changed meanwhile makes the rename fail. No
// moves for from == to.
//
// Refusals wrap ENOENT (no from), EISDIR (a file over a directory),
// ENOTDIR (a directory over a file), ENOTEMPTY (over a directory that
// holds something) and EINVAL (a directory into itself).
func Moves(t *Tree, from, to string) ([]core.Move, error) {
	if from == to {
		return nil, nil
	}
	if key, ok := t.files[from]; ok {
		if t.IsDir(to) {
			return nil, refuse(syscall.EISDIR, "target %q is a directory", to)
		}
		return []core.Move{{From: from, To: to, Key: key, ToKey: t.files[to]}}, nil
	}
	if _, ok := t.dirs[from]; !ok {
		return nil, refuse(syscall.ENOENT, "%q does not exist", from)
	}
	if _, ok := t.files[to]; ok {
		return nil, refuse(syscall.ENOTDIR, "target %q is not a directory", to)
	}
	if _, ok := t.dirs[to]; ok && !t.Empty(to) {
		return nil, refuse(syscall.ENOTEMPTY, "target directory %q is not empty", to)
	}
	if strings.HasPrefix(to, from+"/") {
		return nil, refuse(syscall.EINVAL, "cannot move directory %q into itself (%q)", from, to)
	}
	var moves []core.Move
	add := func(name, key, toName string) {
		toKey, _ := t.src.Entry(toName)
		moves = append(moves, core.Move{From: name, To: toName, Key: key, ToKey: toKey.Key})
	}
	fromMarker := MarkerPrefix + from
	for name, e := range t.src.All() {
		switch {
		case strings.HasPrefix(name, from+"/"):
			add(name, e.Key, to+name[len(from):])
		case name == fromMarker || strings.HasPrefix(name, fromMarker+"/"):
			add(name, e.Key, MarkerPrefix+to+name[len(fromMarker):])
		}
	}
	sort.Slice(moves, func(i, j int) bool { return moves[i].From < moves[j].From })
	return moves, nil
}

// Remove plans removing path p from t: the index name to remove and the
// key t shows for it. A file (dir false) is its own object; a directory
// (dir true) is its marker, and must be empty.
//
// Refusals wrap ENOENT (nothing at p), EISDIR (dir false on a directory),
// ENOTDIR (dir true on a file) and ENOTEMPTY.
func Remove(t *Tree, p string, dir bool) (name, key string, err error) {
	if !dir {
		key, ok := t.files[p]
		switch {
		case ok:
			return p, key, nil
		case t.IsDir(p):
			return "", "", refuse(syscall.EISDIR, "%q is a directory", p)
		}
		return "", "", refuse(syscall.ENOENT, "%q does not exist", p)
	}
	if _, ok := t.files[p]; ok {
		return "", "", refuse(syscall.ENOTDIR, "%q is not a directory", p)
	}
	marker, ok := t.dirs[p]
	switch {
	case !ok:
		return "", "", refuse(syscall.ENOENT, "%q does not exist", p)
	case !t.Empty(p):
		return "", "", refuse(syscall.ENOTEMPTY, "directory %q is not empty", p)
	}
	return Marker(p), marker, nil
}

// refusal is a change the tree refuses: what to tell a person, and the
// errno a POSIX tool expects (errors.Is and errors.As find it).
type refusal struct {
	msg   string
	errno syscall.Errno
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.errno }

func refuse(errno syscall.Errno, format string, args ...any) error {
	return &refusal{msg: fmt.Sprintf(format, args...), errno: errno}
}
