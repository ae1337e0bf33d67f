package namespace

import (
	"iter"
	"sort"
	"strings"

	"github.com/b2cfs/b2cfs/core"
)

// Index is what a Tree is built from: one state of a group's index, as a
// *core.View is.
type Index interface {
	All() iter.Seq2[string, core.Entry]
	Entry(name string) (core.Entry, bool)
}

// Tree is the directory structure of one state of an index: its user
// objects, and the directories their names imply or markers keep. It never
// changes and is safe for concurrent use.
type Tree struct {
	src   Index
	files map[string]string          // user object path -> key
	dirs  map[string]string          // directory path -> key of its marker ("" when it has none); "" is the root
	kids  map[string]map[string]bool // directory path -> child name -> is a directory
}

// New builds the tree of ix.
func New(ix Index) *Tree {
	t := &Tree{
		src:   ix,
		files: map[string]string{},
		dirs:  map[string]string{"": ""},
		kids:  map[string]map[string]bool{},
	}
	for name, e := range ix.All() {
		switch p, k := Classify(name); k {
		case Dir:
			t.addDir(p, e.Key)
		case File:
			t.files[p] = e.Key
			parent, base := Split(p)
			t.addKid(parent, base, false)
			t.addDir(parent, "")
		}
	}
	return t
}

func (t *Tree) addDir(path, marker string) {
	if path == "" {
		return
	}
	if _, ok := t.dirs[path]; !ok || marker != "" {
		t.dirs[path] = marker
	}
	for path != "" {
		parent, base := Split(path)
		t.addKid(parent, base, true)
		if _, ok := t.dirs[parent]; !ok {
			t.dirs[parent] = ""
		}
		path = parent
	}
}

func (t *Tree) addKid(dir, name string, isDir bool) {
	m := t.kids[dir]
	if m == nil {
		m = map[string]bool{}
		t.kids[dir] = m
	}
	if _, ok := m[name]; !ok || !isDir {
		m[name] = isDir // a file wins over a directory of the same name
	}
}

// Entry returns the index entry of name (any name, reserved ones too).
func (t *Tree) Entry(name string) (core.Entry, bool) { return t.src.Entry(name) }

// File returns the key of the user object at path p, false when there is
// none.
func (t *Tree) File(p string) (key string, ok bool) {
	key, ok = t.files[p]
	return key, ok
}

// Dir returns the key of directory p's marker ("" when it has none),
// false when p is no directory. A path can be both a file and a directory
// (an object "a" beside "a/b"); see IsDir.
func (t *Tree) Dir(p string) (marker string, ok bool) {
	marker, ok = t.dirs[p]
	return marker, ok
}

// HasFile reports whether p is a user object, whether or not also a
// directory.
func (t *Tree) HasFile(p string) bool {
	_, ok := t.files[p]
	return ok
}

// HasDir reports whether p is a directory, whether or not also a file.
func (t *Tree) HasDir(p string) bool {
	_, ok := t.dirs[p]
	return ok
}

// IsDir reports whether p is a directory and not also a file: what a
// mount shows as a directory.
func (t *Tree) IsDir(p string) bool {
	_, file := t.files[p]
	_, dir := t.dirs[p]
	return dir && !file
}

// Kids yields the names directly in directory dir, each with whether it is
// a directory (false for a name that is both), in no order.
func (t *Tree) Kids(dir string) iter.Seq2[string, bool] {
	return func(yield func(string, bool) bool) {
		for name, isDir := range t.kids[dir] {
			if !yield(name, isDir) {
				return
			}
		}
	}
}

// Empty reports whether directory dir holds nothing.
func (t *Tree) Empty(dir string) bool { return len(t.kids[dir]) == 0 }

// Children returns the files and the directories directly in dir as full
// paths, each list sorted. A name that is both is in both.
func (t *Tree) Children(dir string) (files, dirs []string) {
	for name := range t.kids[dir] {
		p := Join(dir, name)
		if _, ok := t.files[p]; ok {
			files = append(files, p)
		}
		if _, ok := t.dirs[p]; ok {
			dirs = append(dirs, p)
		}
	}
	sort.Strings(files)
	sort.Strings(dirs)
	return files, dirs
}

// Files yields every user object with its key, in no order.
func (t *Tree) Files() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for p, key := range t.files {
			if !yield(p, key) {
				return
			}
		}
	}
}

// Dirs yields every directory but the root, in no order.
func (t *Tree) Dirs() iter.Seq[string] {
	return func(yield func(string) bool) {
		for p := range t.dirs {
			if p != "" && !yield(p) {
				return
			}
		}
	}
}

// NumFiles and NumDirs count the user objects and the directories (the
// root not included).
func (t *Tree) NumFiles() int { return len(t.files) }
func (t *Tree) NumDirs() int  { return len(t.dirs) - 1 }

// Under reports whether path p is dir or inside it.
func Under(p, dir string) bool {
	return dir == "" || p == dir || strings.HasPrefix(p, dir+"/")
}

// Locks returns the lock objects of ix (see LockName), sorted.
func Locks(ix Index) []string {
	var out []string
	for name := range ix.All() {
		if strings.HasPrefix(name, LockPrefix) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
