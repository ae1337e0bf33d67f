package core_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/memstore"
	"github.com/b2cfs/b2cfs/core/storetest"
	"github.com/jonboulle/clockwork"
)

func gcKey() string {
	var b [20]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// gcUpload stores data as name, marked as written by group ("": unmarked,
// as blazer's x/consistent writes).
func gcUpload(t *testing.T, s core.Store, name, data, group string) core.FileInfo {
	t.Helper()
	fi, err := s.Upload(context.Background(), name, strings.NewReader(data), int64(len(data)), group)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// gcGroup opens group name, created in format, that keeps superseded
// versions, gives every version a data file and reloads on every read. It
// reads the time package (in a bubble, the bubble's time).
func gcGroup(t *testing.T, s core.Store, name, format string) *core.Group {
	t.Helper()
	g, err := core.NewGroup(s, name, core.Options{Format: format, Grace: -1, IndexTTL: -1, InlineMax: -1, Clock: clockwork.NewRealClock()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// gcCommit stores data as name in g and returns the B2 file of the new
// version.
func gcCommit(t *testing.T, g *core.Group, name, data string) string {
	t.Helper()
	ctx := context.Background()
	key, err := g.Key(ctx, name)
	if errors.Is(err, core.ErrNotExist) {
		key = ""
	} else if err != nil {
		t.Fatal(err)
	}
	nk, err := g.Commit(ctx, name, key, strings.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return gcDataFile(g, name, nk)
}

// gcDataFile is where a version lives, written out here independently of
// the formats' code.
func gcDataFile(g *core.Group, name, key string) string {
	if g.Format() == core.FormatB2cfs {
		return ".b2cfs/data/" + g.Name() + "/" + key
	}
	return name + "/" + key
}

// gcNames lists every file of the bucket.
func gcNames(t *testing.T, s core.Store) []string {
	t.Helper()
	fs, err := s.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range fs {
		out = append(out, f.Name)
	}
	return out
}

// gcRun collects garbage with grace at now, and checks that the report
// counts every listed file once.
func gcRun(t *testing.T, s core.Store, grace time.Duration, now time.Time, dryRun bool) *core.GCReport {
	t.Helper()
	r, err := core.CollectGarbage(context.Background(), s, core.GCOptions{Grace: grace, DryRun: dryRun, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if sum := r.Referenced + r.Foreign + r.Unmarked + r.Young + len(r.Garbage); sum != r.Files {
		t.Errorf("report counts %d files, listed %d: %+v", sum, r.Files, r)
	}
	var bytes int64
	for _, f := range r.Garbage {
		bytes += f.Size
	}
	if bytes != r.GarbageBytes || !r.Now.Equal(now) || r.Failed != nil {
		t.Errorf("report: %d bytes (want %d), now %v (want %v), failed %v", r.GarbageBytes, bytes, r.Now, now, r.Failed)
	}
	return r
}

// gcGarbage returns the names of r.Garbage without the manifests of
// groups named "g…", which the groups' commits supersede as they go.
func gcGarbage(r *core.GCReport) []string {
	var out []string
	for _, f := range r.Garbage {
		if !strings.HasPrefix(f.Name, ".b2cfs/manifest/g") {
			out = append(out, f.Name)
		}
	}
	return out
}

func gcSorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// gcTick makes the next upload strictly later than the time it returns.
func gcTick() time.Time {
	time.Sleep(time.Millisecond)
	t := time.Now()
	time.Sleep(time.Millisecond)
	return t
}

func TestGCVersionShape(t *testing.T) {
	// Only names of a version's shape are ever garbage, however old and
	// whoever marked them.
	k := gcKey()
	s := memstore.New()
	cases := []struct {
		file string
		ok   bool
	}{
		{"a/" + k, true},
		{"dir/sub/a.txt/" + k, true},
		{".b2cfs/locks/x/" + k, true},
		{k, false},                         // no name
		{"/" + k, false},                   // empty name
		{"a/" + strings.ToUpper(k), false}, // not lower case
		{"a/" + k[:39], false},             // 39 digits
		{"a/" + k + "0", false},            // 41 digits
		{"a/" + k[:39] + "g", false},       // not hex
		{"photos/" + k + ".jpg", false},    // suffix
		{"x/0123", false},                  // short
		{"a//" + k, false},                 // not an object name
		{"photos/cat.jpg", false},          // ordinary file
		{"a\x01b/" + k, false},             // control character
		{strings.Repeat("n", core.MaxNameBytes) + "/" + k, true}, // longest name
	}
	foreign := 0
	for _, tc := range cases {
		gcUpload(t, s, tc.file, "x", "g")
		if !tc.ok {
			foreign++
		}
	}
	r := gcRun(t, s, 0, time.Now().Add(time.Hour), true)
	garbage := map[string]bool{}
	for _, f := range r.Garbage {
		garbage[f.Name] = true
	}
	for _, tc := range cases {
		if garbage[tc.file] != tc.ok {
			t.Errorf("%q: garbage = %v, want %v", tc.file, garbage[tc.file], tc.ok)
		}
	}
	if r.Foreign != foreign || r.Groups != 0 {
		t.Errorf("%d foreign in %d groups, want %d in none", r.Foreign, r.Groups, foreign)
	}
}

func TestGC(t *testing.T) {
	// g1 and g2 are in different formats, both ways round.
	for _, formats := range [][2]string{{core.FormatBlazer, core.FormatB2cfs}, {core.FormatB2cfs, core.FormatBlazer}} {
		t.Run(formats[0]+"+"+formats[1], func(t *testing.T) { testGC(t, formats[0], formats[1]) })
	}
}

func testGC(t *testing.T, f1, f2 string) {
	ctx := context.Background()
	s := memstore.New()
	g1, g2 := gcGroup(t, s, "g1", f1), gcGroup(t, s, "g2", f2)

	// Before t1: live versions, a superseded version, orphans of crashed
	// writers, and files that are not group files at all.
	gcCommit(t, g1, "a", "live a")
	bV1 := gcCommit(t, g1, "b", "b v1")
	gcCommit(t, g1, "b", "b v2") // superseded b v1 stays (Grace -1)
	gcCommit(t, g1, "dir/c", "live c")
	gcCommit(t, g1, ".b2cfs/locks/a", "{}")
	dV1 := gcCommit(t, g2, "d", "d v1")
	orphan, orphanOfLive := "crashed/"+gcKey(), "a/"+gcKey()
	gcUpload(t, s, orphan, "orphan", "g1")
	gcUpload(t, s, orphanOfLive, "old version of a", "g2")
	// Under .b2cfs/ b2cfs's names are garbage even without the mark.
	orphanManifest := ".b2cfs/manifest/old/" + gcKey() // index of a group that is gone
	gcUpload(t, s, orphanManifest, "old index", "")
	// Versions written without the mark (by blazer's x/consistent) are
	// never deleted, even beside a live version of the same object.
	unmarked := []string{"crashed/" + gcKey(), "a/" + gcKey()}
	for _, f := range unmarked {
		gcUpload(t, s, f, "not b2cfs's", "")
	}
	foreign := []string{
		"photos/cat.jpg",
		"x/0123",
		"x/" + strings.ToUpper(gcKey()),
		"photos/" + gcKey() + ".jpg",
		gcKey(),
		"backup//" + gcKey(),
	}
	for _, f := range foreign {
		gcUpload(t, s, f, "not ours", "g1") // the mark does not make them group files
	}
	t1 := gcTick()
	// After t1: a young orphan, and d replaced (its old version was
	// uploaded before t1 but superseded only now).
	young := "young/" + gcKey()
	gcUpload(t, s, young, "young orphan", "g1")
	gcCommit(t, g2, "d", "d v2")
	now := gcTick()
	garbage := []string{orphan, orphanOfLive, orphanManifest, bV1, young, dV1}
	var need []string
	for _, g := range []*core.Group{g1, g2} {
		files, err := g.Files(ctx)
		if err != nil {
			t.Fatal(err)
		}
		need = append(need, files...)
	}

	all := gcNames(t, s)
	for _, f := range slices.Concat(garbage, foreign, unmarked, need) {
		if !slices.Contains(all, f) {
			t.Fatalf("setup: no file %q in %q", f, all)
		}
	}

	// A long grace keeps everything.
	r := gcRun(t, s, 1000*time.Hour, now, false)
	if got := gcNames(t, s); len(got) != len(all) || len(r.Garbage) != 0 {
		t.Errorf("grace 1000h: garbage %v, %d files left of %d", r.Garbage, len(got), len(all))
	}

	// Dry run: reports, deletes nothing.
	r = gcRun(t, s, 0, now, true)
	if got := gcNames(t, s); len(got) != len(all) {
		t.Errorf("dry run deleted files: %d left of %d", len(got), len(all))
	}
	if got, want := gcSorted(gcGarbage(r)), gcSorted(garbage); !slices.Equal(got, want) {
		t.Errorf("dry run garbage %q, want %q", got, want)
	}
	if r.Groups != 2 || r.Files != len(all) || r.Referenced != len(need) || r.Foreign != len(foreign) || r.Unmarked != len(unmarked) || r.Young != 0 {
		t.Errorf("dry run report %+v: want 2 groups, %d files, %d referenced, %d foreign, %d unmarked, none young",
			r, len(all), len(need), len(foreign), len(unmarked))
	}

	// At t1 + grace: only what is older than t1 and unreferenced goes; the
	// young orphan stays, and so does d v1, whose successor is young.
	r = gcRun(t, s, time.Hour, t1.Add(time.Hour), false)
	if got, want := gcSorted(gcGarbage(r)), gcSorted([]string{orphan, orphanOfLive, orphanManifest, bV1}); !slices.Equal(got, want) {
		t.Errorf("gc at t1+grace: garbage %q, want %q", got, want)
	}
	after := gcNames(t, s)
	for _, f := range r.Garbage {
		if slices.Contains(after, f.Name) {
			t.Errorf("garbage %s not deleted", f.Name)
		}
	}
	if !slices.Contains(after, young) || !slices.Contains(after, dV1) || r.Young < 2 {
		t.Errorf("young files not kept: young=%d, files %q", r.Young, after)
	}
	if got := read(t, g1, "b"); got != "b v2" {
		t.Errorf("live b: %q", got)
	}

	// Grace 0: the rest of the garbage goes; live versions, foreign and
	// unmarked files stay.
	r = gcRun(t, s, 0, time.Now(), false)
	if got, want := gcSorted(gcGarbage(r)), gcSorted([]string{young, dV1}); !slices.Equal(got, want) {
		t.Errorf("gc with grace 0: garbage %q, want %q", got, want)
	}
	final := gcNames(t, s)
	for _, f := range slices.Concat(foreign, unmarked, need) {
		if !slices.Contains(final, f) {
			t.Errorf("file %q deleted", f)
		}
	}
	for g, objects := range map[*core.Group]map[string]string{
		g1: {"a": "live a", "b": "b v2", "dir/c": "live c", ".b2cfs/locks/a": "{}"},
		g2: {"d": "d v2"},
	} {
		for n, content := range objects {
			if got := read(t, g, n); got != content {
				t.Errorf("live %s: %q", n, got)
			}
		}
	}
	// Only the files the groups need are left of theirs: no superseded
	// manifest either.
	if got, want := len(final), len(foreign)+len(unmarked)+len(need); got != want {
		t.Errorf("%d files left, want %d: %q", got, want, final)
	}
	// Nothing more to collect.
	if r := gcRun(t, s, 0, time.Now(), false); len(r.Garbage) != 0 {
		t.Errorf("second gc: garbage %v", r.Garbage)
	}
}

func TestGCDeletesOnlyMarkedFiles(t *testing.T) {
	// A file of the version shape that b2cfs did not write (blazer's
	// x/consistent marks nothing) is kept however old, unless it is under
	// .b2cfs/; b2cfs's own garbage goes.
	s := memstore.New()
	gcCommit(t, gcGroup(t, s, "g", core.FormatBlazer), "live", "data")
	foreign, garbage, reserved := "report.csv/"+gcKey(), "report.csv/"+gcKey(), ".b2cfs/data/gone/"+gcKey()
	gcUpload(t, s, foreign, "blazer's", "")
	gcUpload(t, s, garbage, "b2cfs's", "g")
	gcUpload(t, s, reserved, "b2cfs's, unmarked", "")
	r := gcRun(t, s, 0, time.Now().Add(time.Hour), false)
	final := gcNames(t, s)
	if !slices.Contains(final, foreign) || r.Unmarked != 1 {
		t.Errorf("unmarked %s: deleted = %v, %d counted unmarked", foreign, !slices.Contains(final, foreign), r.Unmarked)
	}
	if got, want := gcSorted(gcGarbage(r)), gcSorted([]string{garbage, reserved}); !slices.Equal(got, want) {
		t.Errorf("garbage %q, want %q", got, want)
	}
	if slices.Contains(final, garbage) || slices.Contains(final, reserved) {
		t.Errorf("garbage kept: %q", final)
	}
}

func TestGCNewerVersionWithinGrace(t *testing.T) {
	// An old unreferenced version is kept while a live version under the
	// same prefix (the object's name in blazer's format, the group's data
	// folder in b2cfs's) is younger than the grace period; one under
	// another prefix is not.
	const grace = time.Hour
	for _, format := range []string{core.FormatBlazer, core.FormatB2cfs} {
		t.Run(format, func(t *testing.T) {
			s := memstore.New()
			g := gcGroup(t, s, "g", format)
			other := gcGroup(t, s, "other", format)
			gcCommit(t, g, "a", "a v1")
			gcCommit(t, other, "x", "x") // makes "other" a group
			sibling := gcDataFile(g, "a", gcKey())
			stranger := gcDataFile(other, "b", gcKey())
			gcUpload(t, s, sibling, "old", "g")
			gcUpload(t, s, stranger, "old", "other")
			t1 := gcTick()
			live := gcCommit(t, g, "a", "a v2") // supersedes a v1 after t1
			end := gcTick()

			r := gcRun(t, s, grace, t1.Add(grace), true)
			if got := gcGarbage(r); !slices.Equal(got, []string{stranger}) || slices.Contains(got, sibling) {
				t.Errorf("within grace of %s: garbage %q, want only %q", live, got, stranger)
			}
			r = gcRun(t, s, grace, end.Add(grace), true)
			if got := gcGarbage(r); !slices.Contains(got, sibling) || !slices.Contains(got, stranger) {
				t.Errorf("past grace: garbage %q, want %q and %q", got, sibling, stranger)
			}
		})
	}
}

func TestGCRefusesUnknownLayout(t *testing.T) {
	// A b2cfs-format group whose data is not where gc expects it: gc must
	// not take the group's files for garbage.
	ctx := context.Background()
	s := memstore.New()
	file := gcCommit(t, gcGroup(t, s, "solo", core.FormatB2cfs), "only", "data")
	gcUpload(t, s, "crashed/"+gcKey(), "orphan", "solo")
	fi, err := s.Stat(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	// Move the data elsewhere, as a format gc does not know would.
	gcUpload(t, s, "elsewhere/"+file[strings.LastIndexByte(file, '/')+1:], "data", "solo")
	if err := s.Delete(ctx, file, fi.ID); err != nil {
		t.Fatal(err)
	}
	before := gcNames(t, s)
	r, err := core.CollectGarbage(ctx, s, core.GCOptions{Now: func() time.Time { return time.Now().Add(time.Hour) }})
	var refused *core.GCRefusedError
	if !errors.As(err, &refused) || refused.Group != "solo" || refused.File != file || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("gc: %v, want a refusal naming group solo and file %s", err, file)
	}
	if after := gcNames(t, s); !slices.Equal(after, before) || len(r.Garbage) != 0 {
		t.Errorf("gc deleted files: %q, then %q; garbage %v", before, after, r.Garbage)
	}
}

func TestGCRefusesUnreadableIndex(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	for _, tc := range []struct {
		name  string
		info  map[string]string
		group string
	}{
		{"corrupt", map[string]string{core.InfoKey(core.FormatBlazer, "broken"): "not base64!"}, "broken"},
		{"not-json", map[string]string{core.InfoKey(core.FormatBlazer, "broken"): b64([]byte("not json"))}, "broken"},
		{"version-2", map[string]string{core.InfoKey(core.FormatBlazer, "broken"): b64([]byte(`{"Version":2,"Serial":1,"Locations":{}}`))}, "broken"},
		{"bad-key", map[string]string{core.InfoKey(core.FormatBlazer, "broken"): b64([]byte(`{"Version":1,"Serial":1,"Locations":{"a":"nokey"}}`))}, "broken"},
		{"pointer-corrupt", map[string]string{core.InfoKey(core.FormatB2cfs, "broken"): "not base64!"}, "broken"},
		{"pointer-newer", map[string]string{core.InfoKey(core.FormatB2cfs, "broken"): b64([]byte(`{"b2cfs":99}`))}, "broken"},
		{"manifest-missing", map[string]string{core.InfoKey(core.FormatB2cfs, "broken"): b64([]byte(`{"b2cfs":1,"serial":2,"base":"` + gcKey() + `"}`))}, "broken"},
		{"both-formats", map[string]string{
			core.InfoKey(core.FormatBlazer, "broken"): b64([]byte(`{"Version":1,"Serial":1,"Locations":{}}`)),
			core.InfoKey(core.FormatB2cfs, "broken"):  b64([]byte(`{"b2cfs":1,"serial":1}`)),
		}, "broken"},
		{"bad-name", map[string]string{core.InfoKey(core.FormatB2cfs, "bro ken"): b64([]byte(`{"b2cfs":1,"serial":1}`))}, "bro ken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := memstore.New()
			gcCommit(t, gcGroup(t, s, "good", ""), "a", "live")
			gcUpload(t, s, "crashed/"+gcKey(), "orphan", "good")
			for k, v := range tc.info {
				s.SetInfo(k, v)
			}
			before := gcNames(t, s)
			r, err := core.CollectGarbage(ctx, s, core.GCOptions{Now: func() time.Time { return time.Now().Add(time.Hour) }})
			var refused *core.GCRefusedError
			if !errors.As(err, &refused) || refused.Group != tc.group || refused.File != "" || refused.Err == nil ||
				!strings.Contains(err.Error(), "refusing") {
				t.Errorf("gc over an unreadable index: %v", err)
			}
			if after := gcNames(t, s); !slices.Equal(after, before) || len(r.Garbage) != 0 {
				t.Errorf("gc deleted files: %q, then %q", before, after)
			}
		})
	}
}

func TestGCStoreErrors(t *testing.T) {
	// Errors of the bucket itself come back as they are, not as refusals,
	// and nothing is deleted.
	boom := errors.New("boom")
	for _, op := range []string{"BucketInfo", "List"} {
		t.Run(op, func(t *testing.T) {
			s := memstore.New()
			gcCommit(t, gcGroup(t, s, "g", ""), "a", "live")
			gcUpload(t, s, "crashed/"+gcKey(), "orphan", "g")
			before := gcNames(t, s)
			s.SetFault(func(o string) error {
				if o == op {
					return boom
				}
				return nil
			})
			_, err := core.CollectGarbage(context.Background(), s, core.GCOptions{Now: func() time.Time { return time.Now().Add(time.Hour) }})
			var refused *core.GCRefusedError
			if !errors.Is(err, boom) || errors.As(err, &refused) {
				t.Errorf("gc with %s failing: %v", op, err)
			}
			s.SetFault(nil)
			if after := gcNames(t, s); !slices.Equal(after, before) {
				t.Errorf("gc deleted files: %q, then %q", before, after)
			}
		})
	}
}

func TestGCDeleteFailures(t *testing.T) {
	// A failed deletion does not stop the others, and is reported; a file
	// already gone is no failure.
	s := memstore.New()
	var garbage []string
	for i := 0; i < 4; i++ {
		garbage = append(garbage, fmt.Sprintf("crashed-%d/%s", i, gcKey()))
		gcUpload(t, s, garbage[i], "orphan", "g")
	}
	boom := errors.New("boom")
	var mu sync.Mutex
	deletes := 0
	s.SetFault(func(op string) error {
		if op != "Delete" {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		deletes++
		switch deletes {
		case 2:
			return boom
		case 3:
			return fmt.Errorf("already gone: %w", core.ErrNotExist)
		}
		return nil
	})
	r, err := core.CollectGarbage(context.Background(), s, core.GCOptions{Now: func() time.Time { return time.Now().Add(time.Hour) }})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "1 of 4 deletions failed") {
		t.Errorf("gc: %v, want 1 of 4 deletions failed", err)
	}
	if got := gcGarbage(r); !slices.Equal(got, garbage) {
		t.Errorf("garbage %q, want %q", got, garbage)
	}
	if len(r.Failed) != 1 || !errors.Is(r.Failed[garbage[1]], boom) {
		t.Errorf("failed: %v, want only %s", r.Failed, garbage[1])
	}
	left := gcNames(t, s)
	if want := []string{garbage[1], garbage[2]}; !slices.Equal(left, want) { // the fault kept garbage[2]
		t.Errorf("files left %q, want %q", left, want)
	}
}

func TestGCNegativeGrace(t *testing.T) {
	s := memstore.New()
	gcUpload(t, s, "crashed/"+gcKey(), "orphan", "g")
	if _, err := core.CollectGarbage(context.Background(), s, core.GCOptions{Grace: -time.Second}); err == nil {
		t.Error("negative grace accepted")
	}
	if n := len(gcNames(t, s)); n != 1 || s.Calls()["BucketInfo"] != 0 {
		t.Errorf("gc with a negative grace ran: %d files left, calls %v", n, s.Calls())
	}
}

// TestGCAfterLostReplies: two groups of one bucket (one per on-bucket
// format) take increments from two hosts while 30 % of the replies of
// every call that changes the bucket are lost, which leaves duplicate
// uploads, uploads of commits that never landed and manifests nobody
// references. gc must then delete only unreferenced files: every object of
// both groups still reads, and the counters are exact.
func TestGCAfterLostReplies(t *testing.T) { sim(t, testGCAfterLostReplies) }

func testGCAfterLostReplies(t *testing.T) {
	s := memstore.New()
	var checks []*core.Group
	for _, format := range []string{core.FormatB2cfs, core.FormatBlazer} {
		name := "lost-" + format
		var hosts []*core.Group
		for i := 0; i < 2; i++ {
			g, err := core.NewGroup(s, name, core.Options{Format: format, Grace: -1, InlineMax: -1, Host: fmt.Sprintf("host-%d", i),
				Clock: clockwork.NewRealClock()}) // the bubble's time
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { g.Close() })
			hosts = append(hosts, g)
		}
		check := gcGroup(t, s, name, format)
		checks = append(checks, check)
		var mu sync.Mutex
		rnd := mrand.New(mrand.NewPCG(1, 2))
		lost := 0
		s.SetLostReply(func(op string) error {
			mu.Lock()
			defer mu.Unlock()
			if rnd.Float64() < 0.3 {
				lost++
				return errors.New("reply lost")
			}
			return nil
		})
		s.SetFault(func(op string) error {
			if op == "UpdateBucketInfo" {
				time.Sleep(updateLatency)
			}
			return nil
		})
		storetest.FaultyIncrements(t, hosts, check, 4, 10)
		s.SetLostReply(nil)
		s.SetFault(nil)
		if lost == 0 {
			t.Fatal("no reply was lost: the test proved nothing")
		}
	}
	before := gcNames(t, s)
	r := gcRun(t, s, 0, time.Now().Add(time.Hour), false)
	t.Logf("gc: %d files, %d referenced, %d deleted", len(before), r.Referenced, len(r.Garbage))
	if len(r.Garbage) == 0 {
		t.Fatal("gc found no garbage: superseded versions and orphans of lost replies should be there")
	}
	for _, g := range checks {
		entries, err := g.Entries(context.Background())
		if err != nil {
			t.Fatalf("group %s unreadable after gc: %v", g.Name(), err)
		}
		for name := range entries {
			read(t, g, name)
		}
		if v := read(t, g, "counter"); v != "40" {
			t.Fatalf("group %s: counter = %q after gc, want 40", g.Name(), v)
		}
	}
}
