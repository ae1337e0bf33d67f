package storetest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/core"
)

// GCFixture is a bucket laid out by NewGCFixture for tests of garbage
// collection: two groups with live, superseded and replaced versions,
// orphans of crashed writers, files b2cfs did not write, and files that
// are not group files at all, on both sides of a moment T1. Tests read its
// fields and must not change them.
type GCFixture struct {
	Groups [2]*core.Group
	// T1 is after the uploads of Old, Foreign and Unmarked, and before the
	// young orphan was uploaded and d v1 replaced; Now is after every
	// upload.
	T1, Now time.Time
	// Old is the garbage older than T1: orphans of a crashed writer, of a
	// live object and of a group's index that is gone, and a superseded
	// version.
	Old []string
	// Young is the garbage that is not older than T1: an orphan uploaded
	// after it, and a version uploaded before it but replaced after it.
	Young []string
	// Unmarked are versions that b2cfs did not write (they carry no group
	// mark), and Foreign files marked by a group but not of a version's
	// shape: neither is ever garbage.
	Unmarked, Foreign []string
	// Live holds the content of every object of each group.
	Live map[*core.Group]map[string]string
	// All lists every file of the bucket once laid out.
	All []string
}

// NewGCFixture lays out a GCFixture in s, through g1 and g2, two groups of
// s that are new, keep superseded versions (Options.Grace < 0) and give
// every version a data file (Options.InlineMax < 0), in any formats. It
// fails t if the layout cannot be made or listed.
func NewGCFixture(t testing.TB, s core.Store, g1, g2 *core.Group) *GCFixture {
	t.Helper()
	f := &GCFixture{Groups: [2]*core.Group{g1, g2}}

	// Before T1: live versions, a superseded version, orphans of crashed
	// writers, and files that are not group files at all.
	Commit(t, g1, "a", "live a")
	bV1 := DataFile(g1, "b", Commit(t, g1, "b", "b v1"))
	Commit(t, g1, "b", "b v2") // b v1 stays: superseded versions are kept
	Commit(t, g1, "dir/c", "live c")
	Commit(t, g1, ".b2cfs/locks/a", "{}")
	dV1 := DataFile(g2, "d", Commit(t, g2, "d", "d v1"))
	orphan, orphanOfLive := "crashed/"+VersionKey(), "a/"+VersionKey()
	Upload(t, s, orphan, "orphan", g1.Name())
	Upload(t, s, orphanOfLive, "old version of a", g2.Name())
	// Under .b2cfs/ b2cfs's names are garbage even without the mark.
	orphanManifest := ".b2cfs/manifest/old/" + VersionKey() // index of a group that is gone
	Upload(t, s, orphanManifest, "old index", "")
	// Versions written without the mark (by blazer's x/consistent) are
	// never deleted, even beside a live version of the same object.
	f.Unmarked = []string{"crashed/" + VersionKey(), "a/" + VersionKey()}
	for _, name := range f.Unmarked {
		Upload(t, s, name, "not b2cfs's", "")
	}
	f.Foreign = []string{
		"photos/cat.jpg",
		"x/0123",
		"x/" + strings.ToUpper(VersionKey()),
		"photos/" + VersionKey() + ".jpg",
		VersionKey(),
		"backup//" + VersionKey(),
	}
	for _, name := range f.Foreign {
		Upload(t, s, name, "not ours", g1.Name()) // the mark does not make them group files
	}
	f.T1 = Tick()
	// After T1: a young orphan, and d replaced (its old version was
	// uploaded before T1 but superseded only now).
	young := "young/" + VersionKey()
	Upload(t, s, young, "young orphan", g1.Name())
	Commit(t, g2, "d", "d v2")
	f.Now = Tick()

	f.Old = []string{orphan, orphanOfLive, orphanManifest, bV1}
	f.Young = []string{young, dV1}
	f.Live = map[*core.Group]map[string]string{
		g1: {"a": "live a", "b": "b v2", "dir/c": "live c", ".b2cfs/locks/a": "{}"},
		g2: {"d": "d v2"},
	}
	f.All = Names(t, s)
	for _, name := range slices.Concat(f.Garbage(), f.Foreign, f.Unmarked, f.Needed(t)) {
		if !slices.Contains(f.All, name) {
			t.Fatalf("GC fixture: no file %q in %q", name, f.All)
		}
	}
	return f
}

// Garbage is Old and Young: what gc collects without a grace period,
// besides the index manifests the groups' commits superseded (see
// WithoutManifests).
func (f *GCFixture) Garbage() []string { return slices.Concat(f.Old, f.Young) }

// Needed returns the files the groups need now (core.Group.Files); it
// fails t if it cannot read them.
func (f *GCFixture) Needed(t testing.TB) []string {
	t.Helper()
	var need []string
	for _, g := range f.Groups {
		files, err := g.Files(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		need = append(need, files...)
	}
	return need
}

// WithoutManifests returns names without the index manifests of the
// fixture's groups: their commits supersede them as they go, as many as
// the format makes, and gc collects those too.
func (f *GCFixture) WithoutManifests(names []string) []string {
	var out []string
	for _, name := range names {
		if !strings.HasPrefix(name, ".b2cfs/manifest/"+f.Groups[0].Name()+"/") &&
			!strings.HasPrefix(name, ".b2cfs/manifest/"+f.Groups[1].Name()+"/") {
			out = append(out, name)
		}
	}
	return out
}

// CheckLive reports to t every object of Live that does not read back
// with its content.
func (f *GCFixture) CheckLive(t testing.TB) {
	t.Helper()
	for g, objects := range f.Live {
		for name, want := range objects {
			if _, got, err := readObj(context.Background(), g, name); err != nil || got != want {
				t.Errorf("live %s of group %s: %q %v, want %q", name, g.Name(), got, err, want)
			}
		}
	}
}
