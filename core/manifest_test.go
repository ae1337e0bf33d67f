package core_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
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
