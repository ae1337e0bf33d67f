package fs

import (
	"strings"

	"github.com/b2cfs/b2cfs/core"
)

// tree is the directory structure derived from one view of the index.
// Immutable once built.
type tree struct {
	src   map[string]string          // the index it was built from
	attrs map[string]core.Entry      // the same index with attributes (nil in tests)
	files map[string]string          // user file path -> key
	dirs  map[string]string          // directory path -> key of its marker ("" when it has none)
	kids  map[string]map[string]bool // directory path -> child name -> is a directory
}

func buildTree(entries map[string]string) *tree {
	t := &tree{
		src:   entries,
		files: map[string]string{},
		dirs:  map[string]string{"": ""},
		kids:  map[string]map[string]bool{},
	}
	for name, key := range entries {
		switch {
		case strings.HasPrefix(name, dirMarkers):
			t.addDir(name[len(dirMarkers):], key)
		case core.Reserved(name):
		default:
			t.files[name] = key
			parent, base := split(name)
			t.addKid(parent, base, false)
			t.addDir(parent, "")
		}
	}
	return t
}

func (t *tree) addDir(path, marker string) {
	if path == "" {
		return
	}
	if _, ok := t.dirs[path]; !ok || marker != "" {
		t.dirs[path] = marker
	}
	for path != "" {
		parent, base := split(path)
		t.addKid(parent, base, true)
		if _, ok := t.dirs[parent]; !ok {
			t.dirs[parent] = ""
		}
		path = parent
	}
}

func (t *tree) addKid(dir, name string, isDir bool) {
	m := t.kids[dir]
	if m == nil {
		m = map[string]bool{}
		t.kids[dir] = m
	}
	if _, ok := m[name]; !ok || !isDir {
		m[name] = isDir // a file wins over a directory of the same name
	}
}

// isDir reports whether path is a directory and not also a file.
func (t *tree) isDir(path string) bool {
	_, file := t.files[path]
	_, dir := t.dirs[path]
	return dir && !file
}
