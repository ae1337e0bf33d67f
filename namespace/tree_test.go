package namespace_test

import (
	"errors"
	"iter"
	"maps"
	"slices"
	"syscall"
	"testing"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/namespace"
)

// index is an Index of name -> key.
type index map[string]string

func (x index) All() iter.Seq2[string, core.Entry] {
	return func(yield func(string, core.Entry) bool) {
		for n, k := range x {
			if !yield(n, core.Entry{Key: k}) {
				return
			}
		}
	}
}

func (x index) Entry(name string) (core.Entry, bool) {
	k, ok := x[name]
	return core.Entry{Key: k}, ok
}

var testIndex = index{
	"top":                                 "k1",
	"a/b/c":                               "k2",
	"a/d":                                 "k3",
	namespace.Marker("a/empty"):           "k4",
	namespace.Marker("e"):                 "k5",
	core.ReservedPrefix + "x":             "k6",
	namespace.LockName("top"):             "k7",
	"both":                                "k8",
	"both/inside":                         "k9",
	namespace.MarkerPrefix + "e/x/deeper": "k10",
}

func TestTree(t *testing.T) {
	tr := namespace.New(testIndex)
	for _, c := range []struct {
		path        string
		isDir, file bool
		kids        []string
	}{
		{"", true, false, []string{"a", "both", "e", "top"}},
		{"a", true, false, []string{"b", "d", "empty"}},
		{"a/b", true, false, []string{"c"}},
		{"a/empty", true, false, nil},
		{"e", true, false, []string{"x"}},
		{"e/x", true, false, []string{"deeper"}},
		{"top", false, true, nil},
		{"both", false, true, []string{"inside"}},
		{".b2cfs", false, false, nil},
		{".b2cfs/locks", false, false, nil},
	} {
		t.Run(c.path, func(t *testing.T) {
			_, file := tr.File(c.path)
			if tr.HasFile(c.path) != c.file {
				t.Fatalf("HasFile = %v, want %v", tr.HasFile(c.path), c.file)
			}
			if tr.IsDir(c.path) != c.isDir || file != c.file {
				t.Fatalf("dir %v file %v", tr.IsDir(c.path), file)
			}
			kids := slices.Sorted(maps.Keys(maps.Collect(tr.Kids(c.path))))
			if !slices.Equal(kids, c.kids) {
				t.Fatalf("kids %v, want %v", kids, c.kids)
			}
			if tr.Empty(c.path) != (len(c.kids) == 0) {
				t.Fatalf("Empty = %v with kids %v", tr.Empty(c.path), kids)
			}
		})
	}
	if m, _ := tr.Dir("a/empty"); m != "k4" {
		t.Errorf("marker of a/empty: %q, want k4", m)
	}
	if m, ok := tr.Dir("a"); m != "" || !ok {
		t.Errorf("a is implied: got marker %q, %v", m, ok)
	}
	files, dirs := tr.Children("")
	if want := []string{"both", "top"}; !slices.Equal(files, want) {
		t.Errorf("files of the root: %v, want %v", files, want)
	}
	if want := []string{"a", "both", "e"}; !slices.Equal(dirs, want) {
		t.Errorf("directories of the root: %v, want %v", dirs, want)
	}
	if tr.NumFiles() != 5 || tr.NumDirs() != 7 {
		t.Errorf("%d files, %d directories; want 5, 7", tr.NumFiles(), tr.NumDirs())
	}
}

func TestMoves(t *testing.T) {
	tr := namespace.New(testIndex)
	for _, c := range []struct {
		from, to string
		want     []core.Move
		err      error
	}{
		{"top", "new", []core.Move{{From: "top", To: "new", Key: "k1"}}, nil},
		{"top", "a/d", []core.Move{{From: "top", To: "a/d", Key: "k1", ToKey: "k3"}}, nil},
		{"top", "top", nil, nil},
		{"a", "z", []core.Move{
			{From: namespace.Marker("a/empty"), To: namespace.Marker("z/empty"), Key: "k4"},
			{From: "a/b/c", To: "z/b/c", Key: "k2"},
			{From: "a/d", To: "z/d", Key: "k3"},
		}, nil},
		// Over an empty directory: its marker is replaced at its version.
		{"a", "a/empty", nil, syscall.EINVAL},
		{"a/b", "a/empty", []core.Move{
			{From: "a/b/c", To: "a/empty/c", Key: "k2"},
		}, nil},
		{"e/x/deeper", "a/empty", []core.Move{
			{From: namespace.Marker("e/x/deeper"), To: namespace.Marker("a/empty"), Key: "k10", ToKey: "k4"},
		}, nil},
		{"top", "e", nil, syscall.EISDIR},
		{"a", "top", nil, syscall.ENOTDIR},
		{"a/empty", "e", nil, syscall.ENOTEMPTY},
		{"a", "a/b/x", nil, syscall.EINVAL},
		{"nope", "x", nil, syscall.ENOENT},
	} {
		got, err := namespace.Moves(tr, c.from, c.to)
		if !errors.Is(err, c.err) || (c.err == nil) != (err == nil) || !slices.Equal(got, c.want) {
			t.Errorf("%s -> %s: %v %v, want %v %v", c.from, c.to, got, err, c.want, c.err)
		}
	}
}

func TestRemove(t *testing.T) {
	tr := namespace.New(testIndex)
	for _, c := range []struct {
		path      string
		dir       bool
		name, key string
		err       error
	}{
		{"top", false, "top", "k1", nil},
		{"a/empty", true, namespace.Marker("a/empty"), "k4", nil},
		{"a", false, "", "", syscall.EISDIR},
		{"a", true, "", "", syscall.ENOTEMPTY},
		{"top", true, "", "", syscall.ENOTDIR},
		{"nope", false, "", "", syscall.ENOENT},
		{"nope", true, "", "", syscall.ENOENT},
		{"both", false, "both", "k8", nil},
	} {
		name, key, err := namespace.Remove(tr, c.path, c.dir)
		if !errors.Is(err, c.err) || (c.err == nil) != (err == nil) || name != c.name || key != c.key {
			t.Errorf("Remove(%q, dir %v) = %q %q %v, want %q %q %v", c.path, c.dir, name, key, err, c.name, c.key, c.err)
		}
	}
}

func TestNames(t *testing.T) {
	for name, want := range map[string]bool{
		"a": false, ".b2cfs": true, ".b2cfs/x": true, ".b2cfsx": false, namespace.LockName("a/b"): true,
		namespace.Marker("d"): true, namespace.Marker(""): true, "x/.b2cfs": false,
	} {
		if got := namespace.Reserved(name); got != want {
			t.Errorf("Reserved(%q) = %v, want %v", name, got, want)
		}
	}
	if err := namespace.CheckPath(".b2cfs/locks/x"); !errors.Is(err, core.ErrBadName) {
		t.Errorf("CheckPath of a reserved name: %v, want ErrBadName", err)
	}
	if err := namespace.CheckPath("a//b"); !errors.Is(err, core.ErrBadName) {
		t.Errorf("CheckPath(a//b): %v, want ErrBadName", err)
	}
	if err := namespace.CheckPath("ok/name"); err != nil {
		t.Errorf("CheckPath(ok/name): %v", err)
	}
	if p, ok := namespace.LockedPath(namespace.LockName("x/y")); p != "x/y" || !ok {
		t.Errorf("LockedPath: %q %v", p, ok)
	}
	for name, want := range map[string]struct {
		p string
		k namespace.Kind
	}{
		"f": {"f", namespace.File}, namespace.Marker("d/e"): {"d/e", namespace.Dir},
		namespace.RootMarker: {"", namespace.Root}, namespace.LockName("f"): {"", namespace.Internal},
	} {
		if p, k := namespace.Classify(name); p != want.p || k != want.k {
			t.Errorf("Classify(%q) = %q %v, want %q %v", name, p, k, want.p, want.k)
		}
	}
}
