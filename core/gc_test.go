package core_test

import (
	"context"
	"encoding/base64"
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
	return storetest.DataFile(g, name, storetest.Commit(t, g, name, data))
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

func TestGCVersionShape(t *testing.T) {
	// Only names of a version's shape are ever garbage, however old and
	// whoever marked them.
	k := storetest.VersionKey()
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
		storetest.Upload(t, s, tc.file, "x", "g")
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
	s := memstore.New()
	f := storetest.NewGCFixture(t, s, gcGroup(t, s, "g1", f1), gcGroup(t, s, "g2", f2))
	need := f.Needed(t)

	// A long grace keeps everything.
	r := gcRun(t, s, 1000*time.Hour, f.Now, false)
	if got := storetest.Names(t, s); len(got) != len(f.All) || len(r.Garbage) != 0 {
		t.Errorf("grace 1000h: garbage %v, %d files left of %d", r.Garbage, len(got), len(f.All))
	}

	// Dry run: reports, deletes nothing.
	r = gcRun(t, s, 0, f.Now, true)
	if got := storetest.Names(t, s); len(got) != len(f.All) {
		t.Errorf("dry run deleted files: %d left of %d", len(got), len(f.All))
	}
	if got, want := gcSorted(gcGarbage(r)), gcSorted(f.Garbage()); !slices.Equal(got, want) {
		t.Errorf("dry run garbage %q, want %q", got, want)
	}
	if r.Groups != 2 || r.Files != len(f.All) || r.Referenced != len(need) || r.Foreign != len(f.Foreign) || r.Unmarked != len(f.Unmarked) || r.Young != 0 {
		t.Errorf("dry run report %+v: want 2 groups, %d files, %d referenced, %d foreign, %d unmarked, none young",
			r, len(f.All), len(need), len(f.Foreign), len(f.Unmarked))
	}

	// At T1 + grace: only what is older than T1 and unreferenced goes; the
	// young garbage stays.
	r = gcRun(t, s, time.Hour, f.T1.Add(time.Hour), false)
	if got, want := gcSorted(gcGarbage(r)), gcSorted(f.Old); !slices.Equal(got, want) {
		t.Errorf("gc at t1+grace: garbage %q, want %q", got, want)
	}
	after := storetest.Names(t, s)
	for _, g := range r.Garbage {
		if slices.Contains(after, g.Name) {
			t.Errorf("garbage %s not deleted", g.Name)
		}
	}
	lost := slices.ContainsFunc(f.Young, func(name string) bool { return !slices.Contains(after, name) })
	if lost || r.Young < len(f.Young) {
		t.Errorf("young files %q not kept: young=%d, files %q", f.Young, r.Young, after)
	}
	f.CheckLive(t)

	// Grace 0: the rest of the garbage goes; live versions, foreign and
	// unmarked files stay.
	r = gcRun(t, s, 0, time.Now(), false)
	if got, want := gcSorted(gcGarbage(r)), gcSorted(f.Young); !slices.Equal(got, want) {
		t.Errorf("gc with grace 0: garbage %q, want %q", got, want)
	}
	final := storetest.Names(t, s)
	for _, name := range slices.Concat(f.Foreign, f.Unmarked, need) {
		if !slices.Contains(final, name) {
			t.Errorf("file %q deleted", name)
		}
	}
	f.CheckLive(t)
	// Only the files the groups need are left of theirs: no superseded
	// manifest either.
	if got, want := len(final), len(f.Foreign)+len(f.Unmarked)+len(need); got != want {
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
	foreign, garbage, reserved := "report.csv/"+storetest.VersionKey(), "report.csv/"+storetest.VersionKey(), ".b2cfs/data/gone/"+storetest.VersionKey()
	storetest.Upload(t, s, foreign, "blazer's", "")
	storetest.Upload(t, s, garbage, "b2cfs's", "g")
	storetest.Upload(t, s, reserved, "b2cfs's, unmarked", "")
	r := gcRun(t, s, 0, time.Now().Add(time.Hour), false)
	final := storetest.Names(t, s)
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
			sibling := storetest.DataFile(g, "a", storetest.VersionKey())
			stranger := storetest.DataFile(other, "b", storetest.VersionKey())
			storetest.Upload(t, s, sibling, "old", "g")
			storetest.Upload(t, s, stranger, "old", "other")
			t1 := storetest.Tick()
			live := gcCommit(t, g, "a", "a v2") // supersedes a v1 after t1
			end := storetest.Tick()

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
	storetest.Upload(t, s, "crashed/"+storetest.VersionKey(), "orphan", "solo")
	fi, err := s.Stat(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	// Move the data elsewhere, as a format gc does not know would.
	storetest.Upload(t, s, "elsewhere/"+file[strings.LastIndexByte(file, '/')+1:], "data", "solo")
	if err := s.Delete(ctx, file, fi.ID); err != nil {
		t.Fatal(err)
	}
	before := storetest.Names(t, s)
	r, err := core.CollectGarbage(ctx, s, core.GCOptions{Now: func() time.Time { return time.Now().Add(time.Hour) }})
	var refused *core.GCRefusedError
	if !errors.As(err, &refused) || refused.Group != "solo" || refused.File != file || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("gc: %v, want a refusal naming group solo and file %s", err, file)
	}
	if after := storetest.Names(t, s); !slices.Equal(after, before) || len(r.Garbage) != 0 {
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
		{"manifest-missing", map[string]string{core.InfoKey(core.FormatB2cfs, "broken"): b64([]byte(`{"b2cfs":1,"serial":2,"base":"` + storetest.VersionKey() + `"}`))}, "broken"},
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
			storetest.Upload(t, s, "crashed/"+storetest.VersionKey(), "orphan", "good")
			for k, v := range tc.info {
				s.SetInfo(k, v)
			}
			before := storetest.Names(t, s)
			r, err := core.CollectGarbage(ctx, s, core.GCOptions{Now: func() time.Time { return time.Now().Add(time.Hour) }})
			var refused *core.GCRefusedError
			if !errors.As(err, &refused) || refused.Group != tc.group || refused.File != "" || refused.Err == nil ||
				!strings.Contains(err.Error(), "refusing") {
				t.Errorf("gc over an unreadable index: %v", err)
			}
			if after := storetest.Names(t, s); !slices.Equal(after, before) || len(r.Garbage) != 0 {
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
			storetest.Upload(t, s, "crashed/"+storetest.VersionKey(), "orphan", "g")
			before := storetest.Names(t, s)
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
			if after := storetest.Names(t, s); !slices.Equal(after, before) {
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
		garbage = append(garbage, fmt.Sprintf("crashed-%d/%s", i, storetest.VersionKey()))
		storetest.Upload(t, s, garbage[i], "orphan", "g")
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
	left := storetest.Names(t, s)
	if want := []string{garbage[1], garbage[2]}; !slices.Equal(left, want) { // the fault kept garbage[2]
		t.Errorf("files left %q, want %q", left, want)
	}
}

func TestGCNegativeGrace(t *testing.T) {
	s := memstore.New()
	storetest.Upload(t, s, "crashed/"+storetest.VersionKey(), "orphan", "g")
	if _, err := core.CollectGarbage(context.Background(), s, core.GCOptions{Grace: -time.Second}); err == nil {
		t.Error("negative grace accepted")
	}
	if n := len(storetest.Names(t, s)); n != 1 || s.Calls()["BucketInfo"] != 0 {
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
	before := storetest.Names(t, s)
	r := gcRun(t, s, 0, time.Now().Add(time.Hour), false)
	t.Logf("gc: %d files, %d referenced, %d deleted", len(before), r.Referenced, len(r.Garbage))
	if len(r.Garbage) == 0 {
		t.Fatal("gc found no garbage: superseded versions and orphans of lost replies should be there")
	}
	for _, g := range checks {
		entries, err := storetest.Keys(context.Background(), g)
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
