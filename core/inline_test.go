package core_test

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/memstore"
	"github.com/b2cfs/b2cfs/core/storetest"
)

// A small file is one b2_update_bucket, no upload, and another host reads
// it from the index, without downloading it.
func TestInlineSmallFile(t *testing.T) {
	ctx := testCtx(t)
	s := memstore.New()
	g := newGroup(t, s, core.FormatB2cfs, core.Options{})
	if _, err := g.Commit(ctx, "seed", "", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	before := s.Calls()
	content := strings.Repeat("small file\n", 30)
	k, err := g.Commit(ctx, "f", "", strings.NewReader(content), int64(len(content)))
	if err != nil {
		t.Fatal(err)
	}
	after := s.Calls()
	for op, want := range map[string]int{"UpdateBucketInfo": 1, "Upload": 0, "BucketInfo": 0, "Download": 0} {
		if d := after[op] - before[op]; d != want {
			t.Errorf("commit of a %d-byte file made %d %s calls, want %d", len(content), d, op, want)
		}
	}
	if v := pointerVersion(t, s); v != 3 {
		t.Errorf("pointer of a group with inline versions says format %d, want 3 (older b2cfs must refuse it)", v)
	}
	for _, f := range s.Files() {
		if strings.HasPrefix(f, ".b2cfs/data/") {
			t.Errorf("inline versions left a data file: %s", f)
		}
	}

	other := newGroup(t, s, core.FormatB2cfs, core.Options{})
	if _, err := storetest.Entries(ctx, other); err != nil { // load the index
		t.Fatal(err)
	}
	before = s.Calls()
	if got := read(t, other, "f"); got != content {
		t.Fatalf("other host read %q, want %q", got, content)
	}
	r := other.OpenVersion(ctx, "f", k)
	buf := make([]byte, 10)
	if n, err := r.ReadAt(buf, 11); n != 10 || string(buf) != "small file" || err != nil {
		t.Errorf("ReadAt = %d %q %v", n, buf, err)
	}
	if n, err := r.ReadAt(buf, int64(len(content))-5); n != 5 || err != io.EOF {
		t.Errorf("ReadAt across the end = %d %v, want 5 and EOF", n, err)
	}
	if d := s.Calls()["Download"] - before["Download"]; d != 0 {
		t.Errorf("reading an inline version made %d downloads, want 0", d)
	}
}

// A reader of an inline version reads it to its end after another host
// replaced and removed it and this host's view moved on.
func TestInlineVersionOutlivesItsEntry(t *testing.T) {
	ctx := testCtx(t)
	s := memstore.New()
	a := newGroup(t, s, core.FormatB2cfs, core.Options{IndexTTL: -1})
	b := newGroup(t, s, core.FormatB2cfs, core.Options{IndexTTL: -1})
	k, err := a.Commit(ctx, "f", "", strings.NewReader("first"), 5)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := storetest.Keys(ctx, b)
	if err != nil || keys["f"] != k {
		t.Fatalf("b sees %v, %v", keys, err)
	}
	old := b.OpenVersion(ctx, "f", k)
	k2, err := a.Commit(ctx, "f", k, strings.NewReader("second"), 6)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Remove(ctx, "f", k2); err != nil {
		t.Fatal(err)
	}
	if _, err := b.List(ctx); err != nil { // b's view moves past both
		t.Fatal(err)
	}
	got, err := io.ReadAll(old)
	if err != nil || string(got) != "first" {
		t.Fatalf("reader of the replaced version: %q, %v; want \"first\"", got, err)
	}
	if fi, err := b.Stat(ctx, "f", k); err != nil || fi.Size != 5 {
		t.Errorf("stat of the replaced version: %+v, %v; want size 5", fi, err)
	}
	if n := s.Calls()["Delete"]; n != 0 {
		t.Errorf("inline versions made %d deletions; they have no file", n)
	}
}

// Inline versions stop once the group's take InlineTotal bytes: commits
// then upload their data as before.
func TestInlineTotalBounded(t *testing.T) {
	ctx := testCtx(t)
	s := memstore.New()
	g := newGroup(t, s, core.FormatB2cfs, core.Options{})
	data := strings.Repeat("y", core.InlineDefault)
	n := core.InlineTotal / core.InlineDefault
	for i := range n {
		if _, err := g.Commit(ctx, fmt.Sprintf("f%d", i), "", strings.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	dataFiles := func() int {
		c := 0
		for _, f := range s.Files() {
			if strings.HasPrefix(f, ".b2cfs/data/") {
				c++
			}
		}
		return c
	}
	if c := dataFiles(); c != 0 {
		t.Fatalf("%d files within InlineTotal made %d data files, want 0", n, c)
	}
	if _, err := g.Commit(ctx, "over", "", strings.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if c := dataFiles(); c != 1 {
		t.Fatalf("a file past InlineTotal made %d data files, want 1", c)
	}
	if got := read(t, newGroup(t, s, core.FormatB2cfs, core.Options{}), "f7"); got != data {
		t.Fatalf("f7 read back %d bytes, want %d", len(got), len(data))
	}
}
