package core_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/memstore"
	"github.com/b2cfs/b2cfs/core/storetest"
	"github.com/jonboulle/clockwork"
)

// testCtx bounds a test against hangs only. In a bubble (sim) the bound
// is simulated time: a test that waits for something that never comes
// fails at once instead of hanging, and load cannot make it run out.
// Outside one (TestScale10k, over HTTP) it is real time, generous enough
// for a 10,000-file group on a loaded 2-core machine.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// sim runs f in a bubble of simulated time (testing/synctest): the time
// package's clock moves only when every goroutine of the test waits, and
// then straight to the next timer. Leases, grace periods, index TTLs,
// polling and backoff thus take no real time, and a loaded machine cannot
// make a wait run out: a goroutine that has work to do holds time still.
// The groups of newGroup read that clock through Options.Clock
// (clockwork.NewRealClock). f must not call t.Run or t.Parallel.
func sim(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		// Run last: background work that ends on a bound of its own (a
		// reload cut short by LoadTimeout, a clean-up of a minute at most)
		// ends before the bubble does. Whatever still waits then is a
		// leak, and synctest panics with the goroutines that wait.
		t.Cleanup(func() { time.Sleep(drain) })
		f(t)
	})
}

// drain is how long sim lets background work finish after a test.
const drain = 10 * time.Minute

// bothFormats runs f on groups of each on-bucket format, each in a bubble
// of simulated time (sim), the two beside each other: each has a store of
// its own, and its time is CPU.
func bothFormats(t *testing.T, f func(t *testing.T, format string)) {
	for _, format := range []string{core.FormatBlazer, core.FormatB2cfs} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			sim(t, func(t *testing.T) { f(t, format) })
		})
	}
}

// bothFormatsEach is bothFormats for a test with cases of its own: one
// subtest per format and case, each in a bubble.
func bothFormatsEach(t *testing.T, cases []string, f func(t *testing.T, format, c string)) {
	for _, format := range []string{core.FormatBlazer, core.FormatB2cfs} {
		t.Run(format, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c, func(t *testing.T) {
					t.Parallel()
					sim(t, func(t *testing.T) { f(t, format, c) })
				})
			}
		})
	}
}

// newGroup returns a group of s in format, closed when the test ends. Its
// Clock is the time package's unless opts sets one: inside a bubble, the
// bubble's simulated time.
func newGroup(t *testing.T, s core.Store, format string, opts core.Options) *core.Group {
	t.Helper()
	opts.Format = format
	if opts.Clock == nil {
		opts.Clock = clockwork.NewRealClock()
	}
	g, err := core.NewGroup(s, "test", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func read(t *testing.T, g *core.Group, name string) string {
	t.Helper()
	r, err := g.NewReader(testCtx(t), name)
	if err != nil {
		t.Fatalf("read %q: %v", name, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %q: %v", name, err)
	}
	return string(b)
}

func TestIncrementsOneGroup(t *testing.T) { bothFormats(t, testIncrementsOneGroup) }

func testIncrementsOneGroup(t *testing.T, format string) {
	s := memstore.New()
	g := newGroup(t, s, format, core.Options{IndexTTL: -1})
	storetest.Increments(t, []*core.Group{g}, newGroup(t, s, format, core.Options{}), 10, 10)
}

func TestIncrementsTwoHosts(t *testing.T) { bothFormats(t, testIncrementsTwoHosts) }

func testIncrementsTwoHosts(t *testing.T, format string) {
	s := memstore.New()
	a := newGroup(t, s, format, core.Options{})
	b := newGroup(t, s, format, core.Options{})
	storetest.Increments(t, []*core.Group{a, b}, newGroup(t, s, format, core.Options{}), 10, 10)
}

func TestConflictKeepsStore(t *testing.T) { bothFormats(t, testConflictKeepsStore) }

func testConflictKeepsStore(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	a := newGroup(t, s, format, core.Options{Grace: -1})
	b := newGroup(t, s, format, core.Options{Grace: -1})
	k1, err := a.Commit(ctx, "f", "", strings.NewReader("one"), 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Commit(ctx, "f", k1, strings.NewReader("two"), 3); err != nil {
		t.Fatal(err)
	}
	files := len(s.Files())
	// a still has k1: its commit must be refused, and leave nothing behind.
	_, err = a.Commit(ctx, "f", k1, strings.NewReader("three"), 5)
	if !errors.Is(err, core.ErrConflict) {
		t.Fatalf("stale commit: %v, want ErrConflict", err)
	}
	if got := read(t, a, "f"); got != "two" {
		t.Fatalf("after refused commit f = %q, want two", got)
	}
	if n := len(s.Files()); n != files {
		t.Fatalf("refused commit left %d files, had %d", n, files)
	}
	// Creating an existing object is a conflict too.
	if _, err := a.Commit(ctx, "f", "", strings.NewReader("x"), 1); !errors.Is(err, core.ErrConflict) {
		t.Fatalf("create over existing: %v, want ErrConflict", err)
	}
}

func TestOtherObjectIsNoConflict(t *testing.T) { bothFormats(t, testOtherObjectIsNoConflict) }

func testOtherObjectIsNoConflict(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	a := newGroup(t, s, format, core.Options{IndexTTL: time.Hour})
	b := newGroup(t, s, format, core.Options{})
	ka, err := a.Commit(ctx, "a", "", strings.NewReader("1"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Commit(ctx, "b", "", strings.NewReader("1"), 1); err != nil {
		t.Fatal(err)
	}
	// a's view is stale (b changed the bucket): its CAS fails, is retried
	// on a reloaded view, and the caller sees success.
	before := s.Calls()
	if _, err := a.Commit(ctx, "a", ka, strings.NewReader("2"), 1); err != nil {
		t.Fatalf("commit beside another object's change: %v", err)
	}
	after := s.Calls()
	if d := after["UpdateBucketInfo"] - before["UpdateBucketInfo"]; d != 2 {
		t.Fatalf("%d updates, want 2 (one failed CAS, one retry)", d)
	}
	if d := after["BucketInfo"] - before["BucketInfo"]; d != 1 {
		t.Fatalf("%d reloads, want 1", d)
	}
}

func TestCommitCost(t *testing.T) { bothFormats(t, testCommitCost) }

func testCommitCost(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	g := newGroup(t, s, format, core.Options{})
	k, err := g.Commit(ctx, "f", "", strings.NewReader("1"), 1)
	if err != nil {
		t.Fatal(err)
	}
	before := s.Calls()
	for i := 0; i < 5; i++ {
		if k, err = g.Commit(ctx, "f", k, strings.NewReader("2"), 1); err != nil {
			t.Fatal(err)
		}
	}
	after := s.Calls()
	// One upload per commit in blazer's format; none in the b2cfs format,
	// which keeps small versions and the changes inline in its pointer.
	uploads := 5
	if format == core.FormatB2cfs {
		uploads = 0
	}
	for op, want := range map[string]int{"Upload": uploads, "UpdateBucketInfo": 5, "BucketInfo": 0, "Stat": 0, "Download": 0} {
		if d := after[op] - before[op]; d != want {
			t.Errorf("5 commits made %d %s calls, want %d", d, op, want)
		}
	}
}

func TestReloadsCoalesce(t *testing.T) { bothFormats(t, testReloadsCoalesce) }

func testReloadsCoalesce(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	gate := make(chan struct{})
	var once sync.Once
	s.SetFault(func(op string) error {
		if op == "BucketInfo" {
			<-gate
		}
		return nil
	})
	g := newGroup(t, s, format, core.Options{IndexTTL: -1})
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := g.List(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	once.Do(func() { close(gate) })
	wg.Wait()
	if n := s.Calls()["BucketInfo"]; n > 2 {
		t.Fatalf("20 concurrent lists made %d index reads, want them coalesced (<= 2)", n)
	}
}

func TestGroupFull(t *testing.T) { bothFormats(t, testGroupFull) }

func testGroupFull(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	g := newGroup(t, s, format, core.Options{Grace: -1})
	var full error
	n := 0
	for ; n < 200; n++ {
		_, err := g.Commit(ctx, "file-"+strconv.Itoa(n), "", strings.NewReader("x"), 1)
		if err != nil {
			full = err
			break
		}
	}
	if format == core.FormatB2cfs {
		if full != nil {
			t.Fatalf("a b2cfs-format group refused file %d: %v", n, full)
		}
		return
	}
	if !errors.Is(full, core.ErrGroupFull) {
		t.Fatalf("after %d files: %v, want ErrGroupFull", n, full)
	}
	bi, _ := s.BucketInfo(ctx)
	names, err := g.List(ctx)
	if err != nil || len(names) != n {
		t.Fatalf("group lists %d names (%v), want the %d committed", len(names), err, n)
	}
	if len(s.Files()) != n {
		t.Fatalf("%d files stored for %d names: the refused write left data", len(s.Files()), n)
	}
	// Replacing an existing object still works when full.
	k, _ := storetest.Key(ctx, g, "file-0")
	if _, err := g.Commit(ctx, "file-0", k, strings.NewReader("y"), 1); err != nil {
		t.Fatalf("rewrite in a full group: %v", err)
	}
	_ = bi
}

func TestCorruptIndexNeverOverwritten(t *testing.T) { bothFormats(t, testCorruptIndexNeverOverwritten) }

func testCorruptIndexNeverOverwritten(t *testing.T, format string) {
	ctx := testCtx(t)
	infoKey := "blazer-meta-key-no-touchie-test"
	if format == core.FormatB2cfs {
		infoKey = "b2cfs-test"
	}
	for _, bad := range []string{"not base64!", "bm90IGpzb24=" /* "not json" */, "eyJWZXJzaW9uIjoyfQ==" /* {"Version":2} */, "eyJiMmNmcyI6NH0=" /* {"b2cfs":4}: newer than this code */} {
		s := memstore.New()
		s.SetInfo(infoKey, bad)
		g := newGroup(t, s, format, core.Options{})
		if _, err := g.List(ctx); !errors.Is(err, core.ErrCorrupt) {
			t.Fatalf("%q: list = %v, want ErrCorrupt", bad, err)
		}
		if _, err := g.Commit(ctx, "f", "", strings.NewReader("x"), 1); !errors.Is(err, core.ErrCorrupt) {
			t.Fatalf("%q: commit = %v, want ErrCorrupt", bad, err)
		}
		bi, _ := s.BucketInfo(ctx)
		if bi.Info[infoKey] != bad {
			t.Fatalf("%q: index overwritten with %q", bad, bi.Info[infoKey])
		}
		if len(s.Files()) != 0 {
			t.Fatalf("%q: %d files uploaded", bad, len(s.Files()))
		}
	}
}

func TestNames(t *testing.T) { bothFormats(t, testNames) }

func testNames(t *testing.T, format string) {
	for _, tc := range []struct {
		group string
		ok    bool
	}{
		{"g", true}, {"deploy-state_1.x", true}, {"", false}, {"has space", false},
		{"slash/no", false}, {strings.Repeat("a", 23), true}, {strings.Repeat("a", 24), false},
	} {
		_, err := core.NewGroup(memstore.New(), tc.group, core.Options{})
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, core.ErrBadName)) {
			t.Errorf("NewGroup(%q) = %v, want ok=%v", tc.group, err, tc.ok)
		}
	}
	ctx := testCtx(t)
	g := newGroup(t, memstore.New(), format, core.Options{})
	for _, name := range []string{"", "a\nb", "a\x7fb", "/abs", "dir/", "a//b", strings.Repeat("n", g.MaxName()+1)} {
		if _, err := g.Commit(ctx, name, "", strings.NewReader(""), 0); !errors.Is(err, core.ErrBadName) {
			t.Errorf("Commit(%q) = %v, want ErrBadName", name, err)
		}
	}
	if _, err := g.Commit(ctx, strings.Repeat("n", g.MaxName()), "", strings.NewReader(""), 0); err != nil {
		t.Errorf("longest name refused: %v", err)
	}
}

func TestSupersededDeletedAfterGrace(t *testing.T) { bothFormats(t, testSupersededDeletedAfterGrace) }

func testSupersededDeletedAfterGrace(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	g := newGroup(t, s, format, core.Options{Grace: 200 * time.Millisecond, InlineMax: -1})
	k, err := g.Commit(ctx, "f", "", strings.NewReader("1"), 1)
	if err != nil {
		t.Fatal(err)
	}
	old := g.OpenVersion(ctx, "f", k)
	if _, err := g.Commit(ctx, "f", k, strings.NewReader("2"), 1); err != nil {
		t.Fatal(err)
	}
	// Within the grace period the old version is still readable.
	if b, err := io.ReadAll(old); err != nil || string(b) != "1" {
		t.Fatalf("old version within grace: %q, %v", b, err)
	}
	want := 1 // the live version
	if format == core.FormatB2cfs {
		want = 2 // and the index's base
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(s.Files()) != want {
		if time.Now().After(deadline) {
			t.Fatalf("superseded version not deleted: files %v", s.Files())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := s.Calls()["Stat"]; n != 0 {
		t.Fatalf("deletion looked the file up %d times; its id was known", n)
	}
}

func TestOperateJSON(t *testing.T) { bothFormats(t, testOperateJSON) }

func testOperateJSON(t *testing.T, format string) {
	ctx := testCtx(t)
	g := newGroup(t, memstore.New(), format, core.Options{})
	type doc struct{ N int }
	proto := &doc{N: 42}
	for i := 0; i < 3; i++ {
		err := g.OperateJSON(ctx, "doc.json", proto, func(v any) (any, error) {
			d := v.(*doc)
			d.N++
			return d, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if proto.N != 42 {
		t.Fatalf("OperateJSON altered t: %+v", proto)
	}
	if got := strings.TrimSpace(read(t, g, "doc.json")); got != `{"N":3}` {
		t.Fatalf("doc = %s, want {\"N\":3}", got)
	}
	// f's error stops Operate and stores nothing.
	boom := errors.New("boom")
	if err := g.Operate(ctx, "other", func([]byte) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("Operate returned %v, want f's error", err)
	}
	if _, err := storetest.Key(ctx, g, "other"); !errors.Is(err, core.ErrNotExist) {
		t.Fatalf("failed Operate created the object: %v", err)
	}
}

func TestWriterLarge(t *testing.T) { bothFormats(t, testWriterLarge) }

func testWriterLarge(t *testing.T, format string) {
	ctx := testCtx(t)
	g := newGroup(t, memstore.New(), format, core.Options{})
	w, err := g.NewWriter(ctx, "big", "")
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("abcdefgh"), 3<<20) // 24 MiB: spills to disk
	if _, err := io.Copy(w, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Key() == "" {
		t.Fatal("no key after Close")
	}
	if got := read(t, g, "big"); got != string(data) {
		t.Fatalf("read back %d bytes, want %d", len(got), len(data))
	}
}

func TestStoreErrorsSurface(t *testing.T) { bothFormats(t, testStoreErrorsSurface) }

func testStoreErrorsSurface(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	g := newGroup(t, s, format, core.Options{IndexTTL: -1})
	down := errors.New("b2 down")
	s.SetFault(func(string) error { return down })
	if _, err := g.List(ctx); !errors.Is(err, down) {
		t.Fatalf("list with store down: %v", err)
	}
	if _, err := g.Commit(ctx, "f", "", strings.NewReader("x"), 1); !errors.Is(err, down) {
		t.Fatalf("commit with store down: %v", err)
	}
	s.SetFault(nil)
	if _, err := g.Commit(ctx, "f", "", strings.NewReader("x"), 1); err != nil {
		t.Fatalf("commit after recovery: %v", err)
	}
}
