package fs

import (
	"slices"
	"syscall"
	"testing"

	"github.com/b2cfs/b2cfs/core"
)

var testIndex = map[string]string{
	"top":                     "k1",
	"a/b/c":                   "k2",
	"a/d":                     "k3",
	dirMarkers + "a/empty":    "k4",
	dirMarkers + "e":          "k5",
	core.ReservedPrefix + "x": "k6",
}

func TestTree(t *testing.T) {
	tr := buildTree(testIndex)
	for _, c := range []struct {
		path        string
		isDir, file bool
		kids        []string
	}{
		{"", true, false, []string{"a", "e", "top"}},
		{"a", true, false, []string{"b", "d", "empty"}},
		{"a/b", true, false, []string{"c"}},
		{"a/empty", true, false, nil},
		{"e", true, false, nil},
		{"top", false, true, nil},
		{".b2cfs", false, false, nil},
	} {
		t.Run(c.path, func(t *testing.T) {
			_, file := tr.files[c.path]
			if tr.isDir(c.path) != c.isDir || file != c.file {
				t.Fatalf("dir %v file %v", tr.isDir(c.path), file)
			}
			var kids []string
			for k := range tr.kids[c.path] {
				kids = append(kids, k)
			}
			slices.Sort(kids)
			if !slices.Equal(kids, c.kids) {
				t.Fatalf("kids %v, want %v", kids, c.kids)
			}
		})
	}
}

func TestRenameMoves(t *testing.T) {
	tr := buildTree(testIndex)
	for _, c := range []struct {
		from, to string
		want     []core.Move
		err      error
	}{
		{"top", "new", []core.Move{{From: "top", To: "new", Key: "k1"}}, nil},
		{"a", "z", []core.Move{
			{From: dirMarkers + "a/empty", To: dirMarkers + "z/empty", Key: "k4"},
			{From: "a/b/c", To: "z/b/c", Key: "k2"},
			{From: "a/d", To: "z/d", Key: "k3"},
		}, nil},
		{"a", "e", []core.Move{
			{From: dirMarkers + "a/empty", To: dirMarkers + "e/empty", Key: "k4"},
			{From: "a/b/c", To: "e/b/c", Key: "k2"},
			{From: "a/d", To: "e/d", Key: "k3"},
		}, nil},
		{"top", "e", nil, syscall.EISDIR},
		{"a", "top", nil, syscall.ENOTDIR},
		{"e", "a", nil, syscall.ENOTEMPTY},
		{"a", "a/b/x", nil, syscall.EINVAL},
		{"nope", "x", nil, syscall.ENOENT},
	} {
		got, err := renameMoves(tr, c.from, c.to)
		if err != c.err || !slices.Equal(got, c.want) {
			t.Errorf("%s -> %s: %v %v, want %v %v", c.from, c.to, got, err, c.want, c.err)
		}
	}
}
