package core_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/memstore"
	"github.com/b2cfs/b2cfs/core/storetest"
)

func TestFormatsSideBySide(t *testing.T) {
	ctx := testCtx(t)
	s := memstore.New()
	bl, err := core.NewGroup(s, "old", core.Options{Format: core.FormatBlazer})
	if err != nil {
		t.Fatal(err)
	}
	nw, err := core.NewGroup(s, "new", core.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []*core.Group{bl, nw} {
		if _, err := g.Commit(ctx, "f", "", strings.NewReader(g.Name()), int64(len(g.Name()))); err != nil {
			t.Fatal(err)
		}
	}
	bi, _ := s.BucketInfo(ctx)
	if _, ok := bi.Info["blazer-meta-key-no-touchie-old"]; !ok {
		t.Fatalf("blazer-format group not under blazer's key: %v", bi.Info)
	}
	if _, ok := bi.Info["b2cfs-new"]; !ok {
		t.Fatalf("b2cfs-format group not under its own key: %v", bi.Info)
	}
	// Fresh groups find each format by itself, whatever the default.
	for _, name := range []string{"old", "new"} {
		g, _ := core.NewGroup(s, name, core.Options{Format: core.FormatBlazer})
		if got := read(t, g, "f"); got != name {
			t.Fatalf("group %s reads %q", name, got)
		}
		want := map[string]string{"old": core.FormatBlazer, "new": core.FormatB2cfs}[name]
		if g.Format() != want {
			t.Fatalf("group %s format %s, want %s", name, g.Format(), want)
		}
	}
	if _, err := core.NewGroup(s, "x", core.Options{Format: "zip"}); err == nil {
		t.Fatal("unknown format accepted")
	}
}

func TestCorruptManifest(t *testing.T) {
	ctx := testCtx(t)
	s := memstore.New()
	g := newGroup(t, s, core.FormatB2cfs, core.Options{Grace: -1})
	if _, err := g.Commit(ctx, "f", "", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	bi, _ := s.BucketInfo(ctx)
	ptr := bi.Info["b2cfs-test"]
	raw, _ := base64.StdEncoding.DecodeString(ptr)
	var base string
	fmt.Sscanf(string(raw[strings.Index(string(raw), `"base":"`)+8:]), "%40s", &base)
	manifest := ".b2cfs/manifest/test/" + base
	fi, err := s.Stat(ctx, manifest)
	if err != nil {
		t.Fatalf("manifest %s: %v", manifest, err)
	}
	for _, tc := range []struct {
		name, content string
		want          string
	}{
		{"garbage", "not gzip", "manifest"},
		{"missing", "", "missing"},
		{"bad-key", gzipped(t, `{"b2cfs":1,"entries":{"f":{"k":"not-a-key"}}}`), "bad key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s2 := memstore.New()
			s2.SetInfo("b2cfs-test", ptr)
			if tc.name != "missing" {
				s2.Upload(ctx, manifest, strings.NewReader(tc.content), int64(len(tc.content)), "test")
			}
			g2 := newGroup(t, s2, core.FormatB2cfs, core.Options{})
			_, err := g2.List(ctx)
			if !errors.Is(err, core.ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("list: %v, want ErrCorrupt about %s", err, tc.want)
			}
			if _, err := g2.Commit(ctx, "g", "", strings.NewReader("y"), 1); !errors.Is(err, core.ErrCorrupt) {
				t.Fatalf("commit over a corrupt manifest: %v", err)
			}
			after, _ := s2.BucketInfo(ctx)
			if after.Info["b2cfs-test"] != ptr {
				t.Fatal("pointer overwritten")
			}
		})
	}
	_ = fi
	// A pointer from a newer format version is refused with a clear message.
	s3 := memstore.New()
	s3.SetInfo("b2cfs-test", base64.StdEncoding.EncodeToString([]byte(`{"b2cfs":7,"serial":3}`)))
	_, err = newGroup(t, s3, core.FormatB2cfs, core.Options{}).List(ctx)
	if !errors.Is(err, core.ErrCorrupt) || !strings.Contains(err.Error(), "newer b2cfs") {
		t.Fatalf("newer pointer: %v", err)
	}
}

// gzipped returns s compressed as manifests are.
func gzipped(t *testing.T, s string) string {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestRenameDirWithoutCopy(t *testing.T) {
	ctx := testCtx(t)
	s := memstore.New()
	g := newGroup(t, s, core.FormatB2cfs, core.Options{})
	if err := core.BulkCreate(ctx, g, "src/", 1000, 10); err != nil {
		t.Fatal(err)
	}
	entries, err := storetest.Entries(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	var moves []core.Move
	for n, e := range entries {
		moves = append(moves, core.Move{From: n, To: "dst" + strings.TrimPrefix(n, "src"), Key: e.Key})
	}
	before := s.Calls()
	if err := g.Rename(ctx, moves); err != nil {
		t.Fatal(err)
	}
	after := s.Calls()
	if d := after["UpdateBucketInfo"] - before["UpdateBucketInfo"]; d != 1 {
		t.Errorf("rename of 1000 files made %d commits, want 1", d)
	}
	if d := after["Copy"] - before["Copy"]; d != 0 {
		t.Errorf("rename copied %d files, want none", d)
	}
	if d := after["Upload"] - before["Upload"]; d != 1 {
		t.Errorf("rename uploaded %d files, want 1 (the index)", d)
	}
	if got := read(t, g, "dst/f7"); got != "xxxxxxxxxx" {
		t.Fatalf("dst/f7 = %q", got)
	}
	if _, err := storetest.Key(ctx, g, "src/f7"); !errors.Is(err, core.ErrNotExist) {
		t.Fatalf("src/f7 after rename: %v", err)
	}
}

func TestAttrsKept(t *testing.T) {
	ctx := testCtx(t)
	s := memstore.New()
	g := newGroup(t, s, core.FormatB2cfs, core.Options{InlineMax: -1}) // a data file, with its id
	mt := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	k, err := g.Commit(ctx, "f", "", strings.NewReader("abc"), 3, core.WithMode(0o640), core.WithMTime(mt))
	if err != nil {
		t.Fatal(err)
	}
	g2 := newGroup(t, s, core.FormatB2cfs, core.Options{})
	snap, err := storetest.Entries(ctx, g2)
	if err != nil {
		t.Fatal(err)
	}
	e := snap["f"]
	if m, ok := e.FileMode(); e.Key != k || e.Size != 3 || !ok || m != 0o640 || e.MTime != mt.UnixNano() || e.ID == "" {
		t.Fatalf("entry %+v", e)
	}
	if err := g2.SetAttrs(ctx, []core.AttrChange{{Name: "f", Opts: []core.CommitOption{core.WithMode(0o600)}}}); err != nil {
		t.Fatal(err)
	}
	fi, err := newGroup(t, s, core.FormatB2cfs, core.Options{}).Stat(ctx, "f", k)
	if err != nil || fi.Size != 3 || !fi.Modified.Equal(mt) {
		t.Fatalf("stat %+v %v", fi, err)
	}
	if s.Calls()["Stat"] != 0 {
		t.Fatalf("stat looked files up in B2: %v", s.Calls())
	}
	snap, _ = storetest.Entries(ctx, newGroup(t, s, core.FormatB2cfs, core.Options{}))
	if m, _ := snap["f"].FileMode(); m != 0o600 || snap["f"].Key != k {
		t.Fatalf("after chmod: %+v (key must not change)", snap["f"])
	}

	// Mode 0000 is a mode, and a new time shows on the group that set it,
	// though the version is the same.
	mt2 := mt.Add(time.Hour)
	if err := g.SetAttrs(ctx, []core.AttrChange{{Name: "f", Opts: []core.CommitOption{core.WithMode(0), core.WithMTime(mt2)}}}); err != nil {
		t.Fatal(err)
	}
	if fi, err := g.Stat(ctx, "f", k); err != nil || !fi.Modified.Equal(mt2) {
		t.Fatalf("stat after utimes on the same group: %+v %v, want %v", fi, err, mt2)
	}
	snap, _ = storetest.Entries(ctx, newGroup(t, s, core.FormatB2cfs, core.Options{}))
	if m, ok := snap["f"].FileMode(); !ok || m != 0 || snap["f"].CTime == 0 {
		t.Fatalf("after chmod 000: %+v", snap["f"])
	}
}

func TestSymlink(t *testing.T) {
	ctx := testCtx(t)
	s := memstore.New()
	g := newGroup(t, s, core.FormatB2cfs, core.Options{})
	k, err := g.Symlink(ctx, "dir/link", "../target")
	if err != nil {
		t.Fatal(err)
	}
	if files, err := s.List(ctx, ".b2cfs/data/"); err != nil || len(files) != 0 {
		t.Fatalf("a link stored data files: %v %v", files, err)
	}
	if _, err := g.Symlink(ctx, "dir/link", "other"); !errors.Is(err, core.ErrConflict) {
		t.Fatalf("second link over the first: %v", err)
	}
	if _, err := g.Commit(ctx, "dir/link", k, strings.NewReader("x"), 1); !errors.Is(err, core.ErrConflict) {
		t.Fatalf("commit over a link: %v", err)
	}
	snap, err := storetest.Entries(ctx, newGroup(t, s, core.FormatB2cfs, core.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	e := snap["dir/link"]
	if m, _ := e.FileMode(); !e.IsLink() || e.Link != "../target" || m != os.ModeSymlink|0o777 || e.Key != k {
		t.Fatalf("link entry %+v", e)
	}
	// A b2cfs that knows no links must refuse the group while it has one.
	if v := pointerVersion(t, s); v != 2 {
		t.Errorf("format version %d with a link, want 2", v)
	}
	if err := g.Rename(ctx, []core.Move{{From: "dir/link", To: "link2", Key: k}}); err != nil {
		t.Fatal(err)
	}
	if err := g.Remove(ctx, "link2", k); err != nil {
		t.Fatal(err)
	}
	if v := pointerVersion(t, s); v != 1 {
		t.Errorf("format version %d without links, want 1", v)
	}
	if r, err := core.Fsck(ctx, s, "test", core.FsckOptions{}); err != nil || len(r.Problems) != 0 {
		t.Fatalf("fsck: %+v %v", r, err)
	}

	b := newGroup(t, memstore.New(), core.FormatBlazer, core.Options{})
	if _, err := b.Symlink(ctx, "link", "target"); !errors.Is(err, core.ErrNotSupported) {
		t.Fatalf("symlink in the blazer format: %v", err)
	}
}

var _ = context.Background

// TestLongNames: the b2cfs format keeps names longer than a B2 file name
// (they live only in the index); the blazer format refuses them.
func TestLongNames(t *testing.T) {
	ctx := testCtx(t)
	s := memstore.New()
	long := strings.Repeat(strings.Repeat("d", 250)+"/", 40) + "f" // 10 KB
	g := newGroup(t, s, core.FormatB2cfs, core.Options{})
	k, err := g.Commit(ctx, long, "", strings.NewReader("x"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Commit(ctx, "short", "", strings.NewReader("y"), 1); err != nil {
		t.Fatal(err)
	}
	snap, err := storetest.Entries(ctx, newGroup(t, s, core.FormatB2cfs, core.Options{}))
	if err != nil || snap[long].Key != k || len(snap) != 2 {
		t.Fatalf("a 10 KB name read back: %v %v", snap[long], err)
	}
	if _, err := g.Commit(ctx, strings.Repeat("x", core.MaxPathBytes+1), "", strings.NewReader("x"), 1); !errors.Is(err, core.ErrBadName) {
		t.Errorf("a name over MaxPathBytes: %v", err)
	}
	b := newGroup(t, memstore.New(), core.FormatBlazer, core.Options{})
	if _, err := b.Commit(ctx, strings.Repeat("x", core.MaxNameBytes+1), "", strings.NewReader("x"), 1); !errors.Is(err, core.ErrBadName) {
		t.Errorf("a name over a B2 file name in the blazer format: %v", err)
	}
	if b.MaxName() != core.MaxNameBytes || g.MaxName() != core.MaxPathBytes {
		t.Errorf("MaxName: blazer %d, b2cfs %d", b.MaxName(), g.MaxName())
	}
}

// pointerVersion returns the format version of group "test"'s pointer.
func pointerVersion(t *testing.T, s core.Store) int {
	t.Helper()
	bi, err := s.BucketInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(bi.Info[core.InfoKey(core.FormatB2cfs, "test")])
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Version int `json:"b2cfs"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	return p.Version
}

// TestOwnCommitsAsOthersDecode: the index a Group installs after each of
// its own commits, without decoding what it wrote, is the one another
// host decodes from the bucket: through changes kept in the pointer,
// delta manifests and folds into a new base, with removals of names that
// live in each of them.
func TestOwnCommitsAsOthersDecode(t *testing.T) { bothFormats(t, testOwnCommitsAsOthersDecode) }

func testOwnCommitsAsOthersDecode(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	w := newGroup(t, s, format, core.Options{IndexTTL: time.Hour})
	r := newGroup(t, s, format, core.Options{IndexTTL: -1}) // reads the bucket at every view
	rnd := rand.New(rand.NewPCG(1, 2))
	names := 50
	if format == core.FormatBlazer {
		names = 12 // the whole index fits in one bucket-info value
	}
	uploads := 0
	for i := range 400 {
		name := fmt.Sprintf("f%d", rnd.IntN(names))
		key, err := storetest.Key(ctx, w, name)
		if err != nil && !errors.Is(err, core.ErrNotExist) {
			t.Fatal(err)
		}
		before := s.Calls()["Upload"]
		if key != "" && rnd.IntN(3) == 0 {
			err = w.Remove(ctx, name, key)
		} else {
			data := strings.Repeat("x", rnd.IntN(600))
			_, err = w.Commit(ctx, name, key, strings.NewReader(data), int64(len(data)))
		}
		if err != nil {
			t.Fatalf("op %d on %s: %v", i, name, err)
		}
		uploads += s.Calls()["Upload"] - before
		mine, err := storetest.Entries(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := storetest.Entries(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(mine, theirs) {
			t.Fatalf("after op %d on %s the committing host shows %d entries, another host decodes %d:\nmine   %v\ntheirs %v", i, name, len(mine), len(theirs), mine, theirs)
		}
	}
	t.Logf("%d uploads of data and manifests", uploads)
}

// overtaken is a store whose next bucket update is applied, then another
// host's change (then) lands on top, then the update's reply is lost.
type overtaken struct {
	*memstore.Store
	then func()
}

func (s *overtaken) UpdateBucketInfo(ctx context.Context, rev int64, info map[string]string) (core.BucketInfo, error) {
	bi, err := s.Store.UpdateBucketInfo(ctx, rev, info)
	if err != nil || s.then == nil {
		return bi, err
	}
	then := s.then
	s.then = nil
	then()
	return core.BucketInfo{}, fmt.Errorf("%w (%w): reply lost", core.ErrUnknownOutcome, core.ErrUnavailable)
}

// TestOwnCommitOvertaken: a commit whose reply was lost, found landed by
// reading the bucket back after another host committed on top, leaves its
// Group showing the state read back, the other host's commit included, not
// only the index it encoded itself.
func TestOwnCommitOvertaken(t *testing.T) { bothFormats(t, testOwnCommitOvertaken) }

func testOwnCommitOvertaken(t *testing.T, format string) {
	ctx := testCtx(t)
	s := &overtaken{Store: memstore.New()}
	a := newGroup(t, s, format, core.Options{IndexTTL: time.Hour})
	b := newGroup(t, s.Store, format, core.Options{})
	s.then = func() {
		if _, err := b.Commit(ctx, "b", "", strings.NewReader("B"), 1); err != nil {
			t.Errorf("host B's commit: %v", err)
		}
	}
	if _, err := a.Commit(ctx, "a", "", strings.NewReader("A"), 1); err != nil {
		t.Fatalf("commit whose reply was lost: %v", err)
	}
	if s.then != nil {
		t.Fatal("no update was overtaken")
	}
	keys, err := storetest.Keys(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := keys["b"]; !ok || keys["a"] == "" {
		t.Errorf("host A shows %v after its commit was read back, want a and host B's b", keys)
	}
}

// TestOwnCommitOvertakenByOtherFormat: when the state read back after a
// lost reply also holds the group in the other format (a client of that
// format wrote it meanwhile), the committing Group shows what decoding it
// shows, a group in two formats (ErrCorrupt), not the index it encoded.
func TestOwnCommitOvertakenByOtherFormat(t *testing.T) {
	bothFormats(t, testOwnCommitOvertakenByOtherFormat)
}

func testOwnCommitOvertakenByOtherFormat(t *testing.T, format string) {
	ctx := testCtx(t)
	s := &overtaken{Store: memstore.New()}
	a := newGroup(t, s, format, core.Options{IndexTTL: time.Hour})
	other := map[string]string{core.FormatB2cfs: "blazer-meta-key-no-touchie-test", core.FormatBlazer: "b2cfs-test"}[format]
	s.then = func() { s.Store.SetInfo(other, "written by the other format") }
	if _, err := a.Commit(ctx, "a", "", strings.NewReader("A"), 1); err != nil {
		t.Fatalf("commit whose reply was lost: %v", err)
	}
	if _, err := a.View(ctx); !errors.Is(err, core.ErrCorrupt) {
		t.Errorf("view after the read-back found the group in two formats: %v, want ErrCorrupt", err)
	}
}
