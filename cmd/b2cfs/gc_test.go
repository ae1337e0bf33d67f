package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/core"
)

func hexKey() string {
	var b [20]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// fileNames lists every file of the bucket.
func fileNames(t *testing.T, s core.Store) []string {
	t.Helper()
	fs, err := s.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range fs {
		out = append(out, f.Name)
	}
	sort.Strings(out)
	return out
}

// upload stores data as name, marked as written by group ("": unmarked,
// as blazer's x/consistent writes).
func upload(t *testing.T, s core.Store, name, data, group string) {
	t.Helper()
	if _, err := s.Upload(context.Background(), name, strings.NewReader(data), int64(len(data)), group); err != nil {
		t.Fatal(err)
	}
}

// commit stores data as name in g and returns the new key.
func commit(t *testing.T, g *core.Group, name, data string) string {
	t.Helper()
	ctx := context.Background()
	v, err := g.View(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := v.Key(name)
	nk, err := g.Commit(ctx, name, key, strings.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return nk
}

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

// dataFile is where a version lives, written out independently of
// core's naming.
func dataFile(format, group, name, key string) string {
	if format == core.FormatB2cfs {
		return ".b2cfs/data/" + group + "/" + key
	}
	return name + "/" + key
}

func testGC(t *testing.T, f1, f2 string) {
	e := newTestEnv(t)
	s := e.store()
	ctx := context.Background()
	g1, g2 := e.groupFiles("g1", f1), e.groupFiles("g2", f2)

	// Before t1: live versions, a superseded version, orphans of crashed
	// writers, and files that are not group files at all.
	commit(t, g1, "a", "live a")
	bV1 := dataFile(f1, "g1", "b", commit(t, g1, "b", "b v1"))
	commit(t, g1, "b", "b v2") // superseded b v1 stays (Grace -1)
	commit(t, g1, "dir/c", "live c")
	commit(t, g1, ".b2cfs/locks/a", "{}")
	dV1 := dataFile(f2, "g2", "d", commit(t, g2, "d", "d v1"))
	orphan, orphanOfLive := "crashed/"+hexKey(), "a/"+hexKey()
	upload(t, s, orphan, "orphan", "g1")
	upload(t, s, orphanOfLive, "old version of a", "g2")
	// Under .b2cfs/ b2cfs's names are garbage even without the mark.
	orphanManifest := ".b2cfs/manifest/old/" + hexKey() // index of a group that is gone
	upload(t, s, orphanManifest, "old index", "")
	// Versions written without the mark (by blazer's x/consistent) are
	// never deleted, even beside a live version of the same object.
	unmarked := []string{"crashed/" + hexKey(), "a/" + hexKey()}
	for _, f := range unmarked {
		upload(t, s, f, "not b2cfs's", "")
	}
	foreign := []string{
		"photos/cat.jpg",
		"x/0123",
		"x/" + strings.ToUpper(hexKey()),
		"photos/" + hexKey() + ".jpg",
		hexKey(),
		"backup//" + hexKey(),
	}
	for _, f := range foreign {
		upload(t, s, f, "not ours", "g1") // the mark does not make them group files
	}
	time.Sleep(50 * time.Millisecond)
	t1 := time.Now()
	time.Sleep(50 * time.Millisecond)
	// After t1: a young orphan, and d replaced (its old version was
	// uploaded before t1 but superseded only now).
	young := "young/" + hexKey()
	upload(t, s, young, "young orphan", "g1")
	commit(t, g2, "d", "d v2")
	garbage := []string{orphan, orphanOfLive, orphanManifest, bV1, young, dV1}

	all := fileNames(t, s)
	for _, f := range append(append(garbage, foreign...), unmarked...) {
		if !contains(all, f) {
			t.Fatalf("setup: no file %q in %q", f, all)
		}
	}

	// A long grace keeps everything.
	out := e.must("gc", "", "--grace", "1000h", e.bucket)
	if got := fileNames(t, s); len(got) != len(all) || !strings.Contains(out, "deleted 0 files") {
		t.Errorf("gc --grace 1000h deleted %q:\n%s", diff(all, got), out)
	}

	// Dry run: reports, deletes nothing.
	out = e.must("gc", "", "--dry-run", "--grace", "0s", e.bucket)
	if got := fileNames(t, s); len(got) != len(all) {
		t.Errorf("dry run deleted %q", diff(all, got))
	}
	for _, f := range garbage {
		if !strings.Contains(out, "would delete "+f+" ") {
			t.Errorf("dry run does not report %s:\n%s", f, out)
		}
	}
	// Superseded index manifests of b2cfs-format groups are garbage too;
	// they are checked apart.
	if n := strings.Count(out, "would delete ") - strings.Count(out, "would delete .b2cfs/manifest/g"); n != len(garbage)+1 { // +1: the summary
		t.Errorf("dry run reports %d lines, want %d:\n%s", n, len(garbage)+1, out)
	}
	if !strings.Contains(out, "2 groups") || !strings.Contains(out, "6 not group files") || !strings.Contains(out, "2 unmarked") {
		t.Errorf("dry run summary:\n%s", out)
	}

	// At t1 + grace: only what is older than t1 and unreferenced goes; the
	// young orphan stays, and so does d v1, whose successor is young.
	res, err := core.CollectGarbage(ctx, s, core.GCOptions{Grace: time.Hour, Now: func() time.Time { return t1.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	after := fileNames(t, s)
	gone := withoutManifests(diff(all, after))
	sort.Strings(gone)
	want := []string{orphan, orphanOfLive, orphanManifest, bV1}
	sort.Strings(want)
	if strings.Join(gone, " ") != strings.Join(want, " ") {
		t.Errorf("gc at t1+grace deleted %q, want %q", gone, want)
	}
	if !contains(after, young) || !contains(after, dV1) || res.Young < 2 {
		t.Errorf("young files not kept: young=%d, files %q", res.Young, after)
	}
	if got, err := readObject(g1, "b"); err != nil || got != "b v2" {
		t.Errorf("live b: %q %v", got, err)
	}

	// Grace 0 through the command: the rest of the garbage goes; live
	// versions and foreign files stay.
	out = e.must("gc", "", "--grace=0s", e.bucket)
	final := fileNames(t, s)
	gone = withoutManifests(diff(after, final))
	sort.Strings(gone)
	want = []string{young, dV1}
	sort.Strings(want)
	if strings.Join(gone, " ") != strings.Join(want, " ") {
		t.Errorf("gc --grace 0s deleted %q, want %q:\n%s", gone, want, out)
	}
	for _, f := range append(foreign, unmarked...) {
		if !contains(final, f) {
			t.Errorf("file %q, not b2cfs's, deleted", f)
		}
	}
	for g, objects := range map[*core.Group]map[string]string{
		g1: {"a": "live a", "b": "b v2", "dir/c": "live c", ".b2cfs/locks/a": "{}"},
		g2: {"d": "d v2"},
	} {
		for n, content := range objects {
			if got, err := readObject(g, n); err != nil || got != content {
				t.Errorf("live %s: %q %v", n, got, err)
			}
		}
	}
	// Only the manifests the groups need are left.
	var need []string
	for _, g := range []*core.Group{g1, g2} {
		files, err := g.Files(ctx)
		if err != nil {
			t.Fatal(err)
		}
		need = append(need, files...)
	}
	for _, f := range final {
		if strings.HasPrefix(f, ".b2cfs/manifest/") && !contains(need, f) {
			t.Errorf("superseded manifest %s not collected", f)
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
	commit(t, e.groupFormat("g", core.FormatBlazer), "live", "data")
	foreign, garbage := "report.csv/"+hexKey(), "report.csv/"+hexKey()
	upload(t, s, foreign, "blazer's", "")
	upload(t, s, garbage, "b2cfs's", "g")
	out := e.must("gc", "", "--grace", "0s", e.bucket)
	final := fileNames(t, s)
	if !contains(final, foreign) {
		t.Errorf("unmarked %s deleted:\n%s", foreign, out)
	}
	if contains(final, garbage) || !strings.Contains(out, "deleted "+garbage+" ") {
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
	key := commit(t, g, "only", "data")
	file := dataFile(core.FormatB2cfs, "solo", "only", key)
	fi, err := s.Stat(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	// Move the data elsewhere, as a format gc does not know would.
	moved := "elsewhere/" + key
	upload(t, s, moved, "data", "solo")
	if err := s.Delete(context.Background(), file, fi.ID); err != nil {
		t.Fatal(err)
	}
	before := fileNames(t, s)
	_, _, err = e.run("gc", "", "--grace", "0s", e.bucket)
	if err == nil || !strings.Contains(err.Error(), "refusing") || !strings.Contains(err.Error(), `"solo"`) ||
		!strings.Contains(err.Error(), "b2cfs fsck "+e.bucket+"/solo") {
		t.Errorf("gc: %v, want a refusal that points to fsck", err)
	}
	if after := fileNames(t, s); len(after) != len(before) {
		t.Errorf("gc deleted %q", diff(before, after))
	}
}

// withoutManifests drops the index manifests of live b2cfs-format groups.
func withoutManifests(files []string) []string {
	var out []string
	for _, f := range files {
		if !strings.HasPrefix(f, ".b2cfs/manifest/g") {
			out = append(out, f)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
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
			commit(t, e.group("good"), "a", "live")
			orphan := "crashed/" + hexKey()
			upload(t, s, orphan, "orphan", "good")
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
			before := fileNames(t, s)
			_, _, err = e.run("gc", "", "--grace", "0s", e.bucket)
			if err == nil || !strings.Contains(err.Error(), "refusing") || !strings.Contains(err.Error(), `"broken"`) {
				t.Errorf("gc over an unreadable index: %v", err)
			}
			if after := fileNames(t, s); len(after) != len(before) {
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
