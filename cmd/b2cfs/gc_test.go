package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/storetest"
)

func diff(before, after []string) (gone []string) {
	keep := map[string]bool{}
	for _, n := range after {
		keep[n] = true
	}
	for _, n := range before {
		if !keep[n] {
			gone = append(gone, n)
		}
	}
	return gone
}

func TestGC(t *testing.T) {
	// g1 and g2 are in different formats, both ways round.
	for _, formats := range [][2]string{{core.FormatBlazer, core.FormatB2cfs}, {core.FormatB2cfs, core.FormatBlazer}} {
		t.Run(formats[0]+"+"+formats[1], func(t *testing.T) { testGC(t, formats[0], formats[1]) })
	}
}

func testGC(t *testing.T, f1, f2 string) {
	e := newTestEnv(t)
	s := e.store()
	ctx := context.Background()
	f := storetest.NewGCFixture(t, s, e.groupFiles("g1", f1), e.groupFiles("g2", f2))

	// A long grace keeps everything.
	out := e.must("gc", "", "--grace", "1000h", e.bucket)
	if got := storetest.Names(t, s); len(got) != len(f.All) || !strings.Contains(out, "deleted 0 files") {
		t.Errorf("gc --grace 1000h deleted %q:\n%s", diff(f.All, got), out)
	}

	// Dry run: reports, deletes nothing.
	out = e.must("gc", "", "--dry-run", "--grace", "0s", e.bucket)
	if got := storetest.Names(t, s); len(got) != len(f.All) {
		t.Errorf("dry run deleted %q", diff(f.All, got))
	}
	for _, name := range f.Garbage() {
		if !strings.Contains(out, "would delete "+name+" ") {
			t.Errorf("dry run does not report %s:\n%s", name, out)
		}
	}
	// Superseded index manifests of b2cfs-format groups are garbage too;
	// they are checked apart.
	if n := strings.Count(out, "would delete ") - strings.Count(out, "would delete .b2cfs/manifest/g"); n != len(f.Garbage())+1 { // +1: the summary
		t.Errorf("dry run reports %d lines, want %d:\n%s", n, len(f.Garbage())+1, out)
	}
	if !strings.Contains(out, "2 groups") || !strings.Contains(out, fmt.Sprintf("%d not group files", len(f.Foreign))) ||
		!strings.Contains(out, fmt.Sprintf("%d unmarked", len(f.Unmarked))) {
		t.Errorf("dry run summary:\n%s", out)
	}

	// At T1 + grace: only what is older than T1 and unreferenced goes; the
	// young garbage stays.
	res, err := core.CollectGarbage(ctx, s, core.GCOptions{Grace: time.Hour, Now: func() time.Time { return f.T1.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	after := storetest.Names(t, s)
	gone := f.WithoutManifests(diff(f.All, after))
	if want := sorted(f.Old); !slices.Equal(sorted(gone), want) {
		t.Errorf("gc at t1+grace deleted %q, want %q", gone, want)
	}
	lost := slices.ContainsFunc(f.Young, func(name string) bool { return !slices.Contains(after, name) })
	if lost || res.Young < len(f.Young) {
		t.Errorf("young files %q not kept: young=%d, files %q", f.Young, res.Young, after)
	}
	f.CheckLive(t)

	// Grace 0 through the command: the rest of the garbage goes; live
	// versions and foreign files stay.
	out = e.must("gc", "", "--grace=0s", e.bucket)
	final := storetest.Names(t, s)
	gone = f.WithoutManifests(diff(after, final))
	if want := sorted(f.Young); !slices.Equal(sorted(gone), want) {
		t.Errorf("gc --grace 0s deleted %q, want %q:\n%s", gone, want, out)
	}
	for _, name := range slices.Concat(f.Foreign, f.Unmarked) {
		if !slices.Contains(final, name) {
			t.Errorf("file %q, not b2cfs's, deleted", name)
		}
	}
	f.CheckLive(t)
	// Only the manifests the groups need are left.
	need := f.Needed(t)
	for _, name := range final {
		if strings.HasPrefix(name, ".b2cfs/manifest/") && !slices.Contains(need, name) {
			t.Errorf("superseded manifest %s not collected", name)
		}
	}
	// Nothing more to collect.
	if out := e.must("gc", "", "--grace=0s", e.bucket); !strings.Contains(out, "deleted 0 files") {
		t.Errorf("second gc:\n%s", out)
	}
}

func TestGCDeletesOnlyMarkedFiles(t *testing.T) {
	// A file of the version shape that b2cfs did not write (blazer's
	// x/consistent marks nothing) is kept however old; b2cfs's own garbage
	// goes.
	e := newTestEnv(t)
	s := e.store()
	storetest.Commit(t, e.groupFormat("g", core.FormatBlazer), "live", "data")
	foreign, garbage := "report.csv/"+storetest.VersionKey(), "report.csv/"+storetest.VersionKey()
	storetest.Upload(t, s, foreign, "blazer's", "")
	storetest.Upload(t, s, garbage, "b2cfs's", "g")
	out := e.must("gc", "", "--grace", "0s", e.bucket)
	final := storetest.Names(t, s)
	if !slices.Contains(final, foreign) {
		t.Errorf("unmarked %s deleted:\n%s", foreign, out)
	}
	if slices.Contains(final, garbage) || !strings.Contains(out, "deleted "+garbage+" ") {
		t.Errorf("marked garbage %s kept:\n%s", garbage, out)
	}
	if !strings.Contains(out, "1 unmarked") || !strings.Contains(out, "deleted 1 files") {
		t.Errorf("summary:\n%s", out)
	}
}

func TestGCRefusesUnknownLayout(t *testing.T) {
	// A b2cfs-format group whose data is not where gc expects it: gc must
	// not take the group's files for garbage.
	e := newTestEnv(t)
	s := e.store()
	g := e.groupFiles("solo", core.FormatB2cfs)
	key := storetest.Commit(t, g, "only", "data")
	file := storetest.DataFile(g, "only", key)
	fi, err := s.Stat(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	// Move the data elsewhere, as a format gc does not know would.
	moved := "elsewhere/" + key
	storetest.Upload(t, s, moved, "data", "solo")
	if err := s.Delete(context.Background(), file, fi.ID); err != nil {
		t.Fatal(err)
	}
	before := storetest.Names(t, s)
	_, _, err = e.run("gc", "", "--grace", "0s", e.bucket)
	if err == nil || !strings.Contains(err.Error(), "refusing") || !strings.Contains(err.Error(), `"solo"`) ||
		!strings.Contains(err.Error(), "b2cfs fsck "+e.bucket+"/solo") {
		t.Errorf("gc: %v, want a refusal that points to fsck", err)
	}
	if after := storetest.Names(t, s); len(after) != len(before) {
		t.Errorf("gc deleted %q", diff(before, after))
	}
}

func sorted(names []string) []string {
	names = slices.Clone(names)
	slices.Sort(names)
	return names
}

func readObject(g *core.Group, name string) (string, error) {
	r, err := g.NewReader(context.Background(), name)
	if err != nil {
		return "", err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	return string(b), err
}

func TestGCRefusesUnreadableIndex(t *testing.T) {
	for name, pair := range map[string][2]string{
		"corrupt":         {core.InfoKey(core.FormatBlazer, "broken"), "not base64!"},
		"not-json":        {core.InfoKey(core.FormatBlazer, "broken"), "bm90IGpzb24="},
		"version-2":       {core.InfoKey(core.FormatBlazer, "broken"), "eyJWZXJzaW9uIjoyLCJTZXJpYWwiOjEsIkxvY2F0aW9ucyI6e319"},
		"pointer-corrupt": {core.InfoKey(core.FormatB2cfs, "broken"), "not base64!"},
		"pointer-newer":   {core.InfoKey(core.FormatB2cfs, "broken"), "eyJiMmNmcyI6OTl9"}, // {"b2cfs":99}
	} {
		t.Run(name, func(t *testing.T) {
			e := newTestEnv(t)
			s := e.store()
			ctx := context.Background()
			storetest.Commit(t, e.group("good"), "a", "live")
			orphan := "crashed/" + storetest.VersionKey()
			storetest.Upload(t, s, orphan, "orphan", "good")
			info, err := s.BucketInfo(ctx)
			if err != nil {
				t.Fatal(err)
			}
			m := map[string]string{pair[0]: pair[1]}
			for k, v := range info.Info {
				m[k] = v
			}
			if _, err := s.UpdateBucketInfo(ctx, info.Revision, m); err != nil {
				t.Fatal(err)
			}
			before := storetest.Names(t, s)
			_, _, err = e.run("gc", "", "--grace", "0s", e.bucket)
			if err == nil || !strings.Contains(err.Error(), "refusing") || !strings.Contains(err.Error(), `"broken"`) {
				t.Errorf("gc over an unreadable index: %v", err)
			}
			if after := storetest.Names(t, s); len(after) != len(before) {
				t.Errorf("gc deleted %q", diff(before, after))
			}
		})
	}
}

func TestGCArguments(t *testing.T) {
	e := newTestEnv(t)
	for _, args := range [][]string{
		{e.bucket + "/g"},
		{"--grace", "-1h", e.bucket},
		{"--grace", "soon", e.bucket},
		{"x"},
		{},
	} {
		if _, _, err := e.run("gc", "", args...); err == nil {
			t.Errorf("gc %q accepted", args)
		}
	}
}
