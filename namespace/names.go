package namespace

import (
	"fmt"
	"strings"

	"github.com/b2cfs/b2cfs/core"
)

// The reserved names this package gives a meaning to.
const (
	// MarkerPrefix starts the marker objects of directories: directory D
	// has MarkerPrefix+D.
	MarkerPrefix = core.ReservedPrefix + "dirs/"
	// RootMarker holds the mode and times of the root directory.
	RootMarker = core.ReservedPrefix + "root"
	// LockPrefix starts the names of lock objects: the lock of path P is
	// LockPrefix+P.
	LockPrefix = core.ReservedPrefix + "locks/"
)

// Reserved reports whether name is b2cfs's own rather than a user path:
// core.ReservedPrefix without its slash, or under it.
func Reserved(name string) bool {
	return name+"/" == core.ReservedPrefix || strings.HasPrefix(name, core.ReservedPrefix)
}

// CheckPath reports whether p can name a user object: a valid object name
// (core.CheckName) that is not reserved.
func CheckPath(p string) error {
	if err := core.CheckName(p); err != nil {
		return err
	}
	if Reserved(p) {
		return fmt.Errorf("%w: names under %s are reserved for b2cfs", core.ErrBadName, core.ReservedPrefix)
	}
	return nil
}

// Marker names the marker object of directory dir ("" is the root).
func Marker(dir string) string {
	if dir == "" {
		return RootMarker
	}
	return MarkerPrefix + dir
}

// LockName names the lock object of path p.
func LockName(p string) string { return LockPrefix + p }

// LockedPath returns the path whose lock object name is, false when name
// is not a lock object.
func LockedPath(name string) (string, bool) { return strings.CutPrefix(name, LockPrefix) }

// Kind is what an index name stands for in the tree.
type Kind int

const (
	File     Kind = iota // a user object: a file or a symbolic link
	Dir                  // a directory's marker
	Root                 // the root directory's marker
	Internal             // any other reserved name: lock objects and the like
)

// Classify says what index name stands for, with the path it stands for
// (the directory of a marker; name itself for a file; "" otherwise).
func Classify(name string) (path string, k Kind) {
	switch {
	case name == RootMarker:
		return "", Root
	case strings.HasPrefix(name, MarkerPrefix):
		return name[len(MarkerPrefix):], Dir
	case Reserved(name):
		return "", Internal
	}
	return name, File
}

// Join returns path name in directory dir ("" is the root).
func Join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// Split splits path into its directory ("" for the root) and last name.
func Split(path string) (dir, name string) {
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		return "", path
	}
	return path[:i], path[i+1:]
}
