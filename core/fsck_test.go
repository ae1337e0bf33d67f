package core_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/memstore"
)

// fsckGroup is a group of group "test" with objects of known contents,
// and what the test knows of its manifests.
type fsckGroup struct {
	t      *testing.T
	s      *memstore.Store
	g      *core.Group
	format string
	want   map[string]string // name -> content
	keys   map[string]string // name -> key

	// b2cfs format: names changed since the last manifest was written, and
	// the names whose current version only the current base records (the
	// changes it folded in that no later manifest or pointer repeats).
	pending, onlyInBase map[string]bool
}

type fsckPointer struct {
	Serial int64                     `json:"serial"`
	Base   string                    `json:"base"`
	Delta  string                    `json:"delta"`
	Set    map[string]map[string]any `json:"set"`
	Del    []string                  `json:"del"`
}

func newFsckGroup(t *testing.T, format string) *fsckGroup {
	fg := &fsckGroup{t: t, s: memstore.New(), format: format, want: map[string]string{}, keys: map[string]string{},
		pending: map[string]bool{}, onlyInBase: map[string]bool{}}
	fg.g = newGroup(t, fg.s, format, core.Options{Grace: -1, IndexTTL: -1, InlineMax: -1}) // data files, to damage
	return fg
}

// pointer decodes the b2cfs-format pointer as the README documents it.
func (fg *fsckGroup) pointer() fsckPointer {
	fg.t.Helper()
	bi, err := fg.s.BucketInfo(context.Background())
	if err != nil {
		fg.t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(bi.Info["b2cfs-test"])
	if err != nil {
		fg.t.Fatal(err)
	}
	var p fsckPointer
	if err := json.Unmarshal(raw, &p); err != nil {
		fg.t.Fatal(err)
	}
	return p
}

// put commits content as name, following which manifests the commit wrote.
func (fg *fsckGroup) put(name, content string) {
	fg.t.Helper()
	var before fsckPointer
	if fg.format == core.FormatB2cfs && len(fg.keys) > 0 {
		before = fg.pointer()
	}
	// A rebuild tells versions apart by upload time, which the memstore
	// takes from the time package: in a bubble it stands still unless
	// something waits.
	time.Sleep(time.Millisecond)
	k, err := fg.g.Commit(testCtx(fg.t), name, fg.keys[name], strings.NewReader(content), int64(len(content)))
	if err != nil {
		fg.t.Fatalf("commit %q: %v", name, err)
	}
	fg.keys[name], fg.want[name] = k, content
	if fg.format != core.FormatB2cfs {
		return
	}
	after := fg.pointer()
	fg.pending[name] = true
	delete(fg.onlyInBase, name)
	switch {
	case after.Base != before.Base:
		fg.onlyInBase, fg.pending = fg.pending, map[string]bool{}
	case after.Delta != before.Delta:
		fg.pending = map[string]bool{}
	}
}

// fill makes objects of several versions, several bases and deltas in the
// b2cfs format, and leaves the group so that a repair can restore every
// object whatever single manifest or pointer is lost: no object's version
// is known only to the current base, nor only to the pointer.
func (fg *fsckGroup) fill() {
	fg.t.Helper()
	for i := range 12 {
		fg.put(fmt.Sprintf("dir%d/o%d", i%3, i), fmt.Sprintf("object %d, version 1, %s", i, strings.Repeat("x", i)))
	}
	for _, i := range []int{2, 5, 8} {
		fg.put(fmt.Sprintf("dir%d/o%d", i%3, i), fmt.Sprintf("object %d, version 2", i))
	}
	fg.put("top", "top-level object")
	fg.put(".b2cfs/dirs/empty", "") // a directory marker: reserved names are objects too
	if fg.format != core.FormatB2cfs {
		return
	}
	for n := 0; len(fg.onlyInBase) > 0 || len(fg.pointer().Set)+len(fg.pointer().Del) > 0; n++ {
		if n > 100 {
			fg.t.Fatalf("setup: no stable state after 100 commits: only in base %v, pointer %+v", fg.onlyInBase, fg.pointer())
		}
		name := fmt.Sprintf("extra%d", n)
		for m := range fg.onlyInBase {
			name = m
			break
		}
		fg.put(name, fmt.Sprintf("%s, again (%d)", name, n))
	}
	if p := fg.pointer(); p.Base == "" {
		fg.t.Fatalf("setup: no base manifest: %+v", p)
	}
}

func (fg *fsckGroup) dataFile(name string) string {
	if fg.format == core.FormatB2cfs {
		return ".b2cfs/data/test/" + fg.keys[name]
	}
	return name + "/" + fg.keys[name]
}

// remove deletes the newest version of a stored file.
func (fg *fsckGroup) remove(file string) {
	fg.t.Helper()
	ctx := testCtx(fg.t)
	fi, err := fg.s.Stat(ctx, file)
	if err != nil {
		fg.t.Fatalf("stat %s: %v", file, err)
	}
	if err := fg.s.Delete(ctx, file, fi.ID); err != nil {
		fg.t.Fatal(err)
	}
}

// fsck runs the check (or repair) and fails the test on an error.
func (fg *fsckGroup) fsck(repair bool) *core.FsckReport {
	fg.t.Helper()
	r, err := core.Fsck(testCtx(fg.t), fg.s, "test", core.FsckOptions{Repair: repair})
	if err != nil {
		fg.t.Fatalf("fsck (repair %v): %v", repair, err)
	}
	return r
}

// hasProblem reports whether r lists a problem of kind about name (any
// name when "") whose text contains text.
func hasProblem(r *core.FsckReport, kind, name, text string) bool {
	for _, p := range r.Problems {
		if p.Kind == kind && (name == "" || p.Name == name) && strings.Contains(p.Text, text) {
			return true
		}
	}
	return false
}

func dumpReport(r *core.FsckReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "format %s serial %d objects %d intact %d missing %q manifests %q cannot %q\n", r.Format, r.Serial, r.Objects, r.Intact, r.Missing, r.Manifests, r.CannotRepair)
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "problem [%s]: %s\n", p.Kind, p)
	}
	for _, p := range r.Plan {
		fmt.Fprintf(&b, "plan: %s\n", p)
	}
	return b.String()
}

// checkDamaged checks that the damage is real: a fresh reader of the group
// cannot list it, or cannot read some object.
func (fg *fsckGroup) checkDamaged() {
	fg.t.Helper()
	ctx := testCtx(fg.t)
	g := newGroup(fg.t, fg.s, "", core.Options{IndexTTL: -1, InlineMax: -1})
	if _, err := g.List(ctx); err != nil {
		return
	}
	for name := range fg.want {
		r, err := g.NewReader(ctx, name)
		if err != nil {
			return
		}
		_, err = r.Read(make([]byte, 1))
		r.Close()
		if err != nil {
			return
		}
	}
	fg.t.Fatal("setup: the damage does not show: every object reads")
}

// checkReadable checks that a fresh reader of the group lists exactly the
// names of want and reads each with its content.
func (fg *fsckGroup) checkReadable(want map[string]string) {
	fg.t.Helper()
	ctx := testCtx(fg.t)
	g := newGroup(fg.t, fg.s, "", core.Options{IndexTTL: -1, InlineMax: -1})
	names, err := g.List(ctx)
	if err != nil {
		fg.t.Fatalf("after repair: %v", err)
	}
	wantNames := slices.Sorted(maps.Keys(want))
	if !slices.Equal(names, wantNames) {
		fg.t.Fatalf("after repair the group lists\n%q\nwant\n%q", names, wantNames)
	}
	for name, content := range want {
		if got := read(fg.t, g, name); got != content {
			fg.t.Errorf("after repair %q = %q, want %q", name, got, content)
		}
	}
	if g.Format() != fg.format {
		fg.t.Errorf("after repair the group is in format %s, want %s", g.Format(), fg.format)
	}
}

// checkUnchanged checks that a check without repair changed nothing.
func (fg *fsckGroup) checkUnchanged(f func() *core.FsckReport) *core.FsckReport {
	fg.t.Helper()
	ctx := testCtx(fg.t)
	before, _ := fg.s.BucketInfo(ctx)
	files := fg.s.Files()
	sort.Strings(files)
	r := f()
	after, _ := fg.s.BucketInfo(ctx)
	now := fg.s.Files()
	sort.Strings(now)
	if after.Revision != before.Revision || !maps.Equal(after.Info, before.Info) || !slices.Equal(files, now) {
		fg.t.Fatalf("a check without --repair changed the bucket")
	}
	return r
}

// repair repairs the group and checks that the repair re-checked clean.
func (fg *fsckGroup) repair() *core.FsckReport {
	fg.t.Helper()
	r := fg.fsck(true)
	if !r.Repaired || r.After == nil {
		fg.t.Fatalf("repair did not repair:\n%s", dumpReport(r))
	}
	if r.After.Damaged() {
		fg.t.Fatalf("still damaged after repair:\n%s", dumpReport(r.After))
	}
	return r
}

func TestFsckIntact(t *testing.T) { bothFormats(t, testFsckIntact) }

func testFsckIntact(t *testing.T, format string) {
	fg := newFsckGroup(t, format)
	fg.fill()
	r := fg.checkUnchanged(func() *core.FsckReport { return fg.fsck(true) })
	if r.Damaged() || r.Repaired || r.Objects != len(fg.want) || r.Intact != len(fg.want) || len(r.Missing) != 0 || r.Format != format {
		t.Fatalf("intact group:\n%s", dumpReport(r))
	}
	if format == core.FormatB2cfs && !strings.Contains(r.Manifests, "base ok") {
		t.Errorf("manifests %q, want base ok", r.Manifests)
	}
}

func TestFsckMissingBase(t *testing.T) {
	fg := newFsckGroup(t, core.FormatB2cfs)
	fg.fill()
	base := fg.pointer().Base
	fg.remove(".b2cfs/manifest/test/" + base)
	fg.checkDamaged()

	r := fg.checkUnchanged(func() *core.FsckReport { return fg.fsck(false) })
	if !hasProblem(r, core.FsckBase, "", base) || !strings.Contains(r.Problems[0].Text, "missing") {
		t.Fatalf("missing base not reported:\n%s", dumpReport(r))
	}
	if r.Objects != len(fg.want) || r.Intact != len(fg.want) || !strings.Contains(r.Manifests, "older base") {
		t.Fatalf("report:\n%s", dumpReport(r))
	}
	r = fg.repair()
	if r.After.Objects != len(fg.want) {
		t.Errorf("re-check: %d objects, want %d", r.After.Objects, len(fg.want))
	}
	fg.checkReadable(fg.want)
	// The group works on: a commit after the repair.
	fg.put("after", "written after the repair")
	fg.checkReadable(fg.want)
}

func TestFsckMissingBaseNoOther(t *testing.T) {
	// The only base is gone: what the pointer names survives, the rest
	// is reported lost.
	fg := newFsckGroup(t, core.FormatB2cfs)
	fg.put("a", "in the base")
	base := fg.pointer().Base
	fg.put("b", "in the pointer")
	if p := fg.pointer(); p.Base != base || len(p.Set) != 1 {
		t.Fatalf("setup: pointer %+v", p)
	}
	fg.remove(".b2cfs/manifest/test/" + base)
	r := fg.fsck(false)
	if !hasProblem(r, core.FsckBase, "", "missing") || r.Objects != 1 || !slices.ContainsFunc(r.Plan, func(s string) bool { return strings.Contains(s, "lost") }) {
		t.Fatalf("report:\n%s", dumpReport(r))
	}
	fg.repair()
	fg.checkReadable(map[string]string{"b": "in the pointer"})
}

func TestFsckMissingDelta(t *testing.T) {
	fg := newFsckGroup(t, core.FormatB2cfs)
	fg.fill()
	for n := 0; fg.pointer().Delta == ""; n++ {
		if n > 100 {
			t.Fatal("setup: no delta after 100 commits")
		}
		fg.put(fmt.Sprintf("dir0/o%d", n%12), fmt.Sprintf("delta round %d", n))
	}
	p := fg.pointer()
	fg.remove(".b2cfs/manifest/test/" + p.Delta)
	fg.checkDamaged()
	r := fg.fsck(false)
	if !hasProblem(r, core.FsckDelta, "", p.Delta) {
		t.Fatalf("missing delta not reported:\n%s", dumpReport(r))
	}
	fg.repair()
	// Names the lost delta alone knew are lost or back at older versions;
	// every name the group lists reads, and the ones the base or the
	// pointer show keep their versions.
	g := newGroup(t, fg.s, "", core.Options{IndexTTL: -1, InlineMax: -1})
	names, err := g.List(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		read(t, g, n)
	}
	for n := range p.Set {
		if got := read(t, g, n); got != fg.want[n] {
			t.Errorf("%q (in the pointer) = %q, want %q", n, got, fg.want[n])
		}
	}
}

func TestFsckMissingData(t *testing.T) { bothFormats(t, testFsckMissingData) }

func testFsckMissingData(t *testing.T, format string) {
	fg := newFsckGroup(t, format)
	fg.fill()
	lost := "dir2/o5"
	fg.remove(fg.dataFile(lost))
	fg.checkDamaged()

	r := fg.checkUnchanged(func() *core.FsckReport { return fg.fsck(false) })
	if !hasProblem(r, core.FsckData, lost, fg.dataFile(lost)) || len(r.Problems) != 1 {
		t.Fatalf("missing data not reported:\n%s", dumpReport(r))
	}
	if r.Objects != len(fg.want) || r.Intact != len(fg.want)-1 || !slices.Equal(r.Missing, []string{lost}) {
		t.Fatalf("counts:\n%s", dumpReport(r))
	}
	r = fg.repair()
	if r.After.Objects != len(fg.want)-1 {
		t.Errorf("re-check: %d objects, want %d", r.After.Objects, len(fg.want)-1)
	}
	want := maps.Clone(fg.want)
	delete(want, lost)
	fg.checkReadable(want)
}

func TestFsckCorruptInfo(t *testing.T) { bothFormats(t, testFsckCorruptInfo) }

func testFsckCorruptInfo(t *testing.T, format string) {
	fg := newFsckGroup(t, format)
	fg.fill()
	ctx := testCtx(t)
	if format == core.FormatBlazer {
		// Files the rebuild must leave out: one blazer wrote (no mark),
		// one of another group; old versions of objects are there too.
		other, err := core.NewGroup(fg.s, "other", core.Options{Format: format, InlineMax: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		if _, err := other.Commit(ctx, "foreign", "", strings.NewReader("y"), 1); err != nil {
			t.Fatal(err)
		}
		if _, err := fg.s.Upload(ctx, "unmarked/"+strings.Repeat("ab", 20), strings.NewReader("blazer's"), 8, ""); err != nil {
			t.Fatal(err)
		}
	}
	key := core.InfoKey(format, "test")
	fg.s.SetInfo(key, "not base64 at all!")
	fg.checkDamaged()

	r := fg.checkUnchanged(func() *core.FsckReport { return fg.fsck(false) })
	if !hasProblem(r, core.FsckInfo, "", key) {
		t.Fatalf("corrupt info not reported:\n%s", dumpReport(r))
	}
	if r.Objects != len(fg.want) {
		t.Fatalf("rebuild would find %d objects, want %d:\n%s", r.Objects, len(fg.want), dumpReport(r))
	}
	if format == core.FormatBlazer && !slices.ContainsFunc(r.Plan, func(s string) bool { return strings.Contains(s, "cannot be attributed") }) {
		t.Errorf("unmarked files not mentioned:\n%s", dumpReport(r))
	}
	fg.repair()
	fg.checkReadable(fg.want)
	fg.put("after", "written after the repair")
	fg.checkReadable(fg.want)
}

func TestFsckCorruptPointerJSON(t *testing.T) {
	// A pointer that is base64 of something else: the same rebuild, and
	// the serial goes on from the one it still shows.
	fg := newFsckGroup(t, core.FormatB2cfs)
	fg.fill()
	serial := fg.pointer().Serial
	fg.s.SetInfo("b2cfs-test", base64.StdEncoding.EncodeToString(fmt.Appendf(nil, `{"serial":%d,"b2cfs":"one"}`, serial)))
	r := fg.fsck(false)
	if !hasProblem(r, core.FsckInfo, "", "not a JSON pointer") {
		t.Fatalf("report:\n%s", dumpReport(r))
	}
	fg.repair()
	fg.checkReadable(fg.want)
	if p := fg.pointer(); p.Serial != serial+1 {
		t.Errorf("serial %d after repair, want %d", p.Serial, serial+1)
	}
}

func TestFsckRepairRacesWriter(t *testing.T) { bothFormats(t, testFsckRepairRacesWriter) }

func testFsckRepairRacesWriter(t *testing.T, format string) {
	// Another program changes the bucket between the check and the swap:
	// the swap fails, and the repair is worked out again.
	fg := newFsckGroup(t, format)
	fg.fill()
	lost := "dir0/o3"
	fg.remove(fg.dataFile(lost))
	updates := 0
	fg.s.SetFault(func(op string) error {
		if op == "UpdateBucketInfo" {
			if updates++; updates == 1 {
				fg.s.SetInfo("other-program", "x")
			}
		}
		return nil
	})
	files := len(fg.s.Files())
	fg.repair()
	fg.s.SetFault(nil)
	if updates != 2 {
		t.Errorf("%d updates, want 2", updates)
	}
	bi, _ := fg.s.BucketInfo(testCtx(t))
	if bi.Info["other-program"] != "x" {
		t.Errorf("the repair lost the other program's bucket info: %v", bi.Info)
	}
	// The manifest uploaded for the failed swap was deleted again.
	if format == core.FormatB2cfs && len(fg.s.Files()) != files+1 {
		t.Errorf("%d files after repair, want %d (one new base)", len(fg.s.Files()), files+1)
	}
	want := maps.Clone(fg.want)
	delete(want, lost)
	fg.checkReadable(want)
}

// lostReply is a store whose next bucket update is applied and its reply
// lost.
type lostReply struct {
	*memstore.Store
	lose bool
}

func (s *lostReply) UpdateBucketInfo(ctx context.Context, rev int64, info map[string]string) (core.BucketInfo, error) {
	bi, err := s.Store.UpdateBucketInfo(ctx, rev, info)
	if err == nil && s.lose {
		s.lose = false
		return core.BucketInfo{}, fmt.Errorf("%w: reply lost", core.ErrUnavailable)
	}
	return bi, err
}

func TestFsckRepairReplyLost(t *testing.T) { bothFormats(t, testFsckRepairReplyLost) }

func testFsckRepairReplyLost(t *testing.T, format string) {
	fg := newFsckGroup(t, format)
	fg.fill()
	lost := "dir1/o4"
	fg.remove(fg.dataFile(lost))
	s := &lostReply{Store: fg.s, lose: true}
	r, err := core.Fsck(testCtx(t), s, "test", core.FsckOptions{Repair: true})
	if err != nil || !r.Repaired || r.After.Damaged() {
		t.Fatalf("repair whose reply was lost: %v\n%s", err, dumpReport(r))
	}
	want := maps.Clone(fg.want)
	delete(want, lost)
	fg.checkReadable(want)
}

func TestFsckRefuses(t *testing.T) {
	ctx := testCtx(t)
	t.Run("newer pointer", func(t *testing.T) {
		fg := newFsckGroup(t, core.FormatB2cfs)
		fg.put("a", "1")
		fg.s.SetInfo("b2cfs-test", base64.StdEncoding.EncodeToString([]byte(`{"b2cfs":4,"serial":3}`)))
		r := fg.checkUnchanged(func() *core.FsckReport { return fg.fsck(true) })
		if !hasProblem(r, core.FsckInfo, "", "newer") || r.CannotRepair == "" || r.Repaired {
			t.Fatalf("report:\n%s", dumpReport(r))
		}
	})
	t.Run("both formats", func(t *testing.T) {
		fg := newFsckGroup(t, core.FormatB2cfs)
		fg.put("a", "1")
		fg.s.SetInfo(core.InfoKey(core.FormatBlazer, "test"), "x")
		r := fg.checkUnchanged(func() *core.FsckReport { return fg.fsck(true) })
		if !hasProblem(r, core.FsckFormats, "", "both formats") || r.CannotRepair == "" {
			t.Fatalf("report:\n%s", dumpReport(r))
		}
	})
	t.Run("nothing to rebuild from", func(t *testing.T) {
		fg := newFsckGroup(t, core.FormatB2cfs)
		fg.put("a", "1")
		fg.remove(".b2cfs/manifest/test/" + fg.pointer().Base)
		fg.s.SetInfo("b2cfs-test", "garbage")
		r := fg.checkUnchanged(func() *core.FsckReport { return fg.fsck(true) })
		if !hasProblem(r, core.FsckManifest, "", "no readable manifest") || r.CannotRepair == "" {
			t.Fatalf("report:\n%s", dumpReport(r))
		}
	})
	t.Run("no group", func(t *testing.T) {
		if _, err := core.Fsck(ctx, memstore.New(), "test", core.FsckOptions{}); !errors.Is(err, core.ErrNotExist) {
			t.Fatalf("fsck of a missing group: %v, want ErrNotExist", err)
		}
	})
}
