package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/b2emu"
	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/storetest"
)

// localFile is what a test expects of a file in a local tree.
type localFile struct {
	data  []byte
	mode  os.FileMode
	mtime time.Time
}

// makeTree writes files (relative slash paths) under a new directory and
// returns it.
func makeTree(t *testing.T, files map[string]localFile) string {
	t.Helper()
	dir := t.TempDir()
	for rel, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, f.mtime, f.mtime); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// testTree returns small (inline) and large (uploaded) files in nested
// directories, with assorted modes and modification times.
func testTree(small, large int) map[string]localFile {
	r := rand.New(rand.NewPCG(1, 2))
	modes := []os.FileMode{0o644, 0o600, 0o755, 0o640}
	base := time.Date(2021, 3, 4, 5, 6, 7, 891011121, time.UTC)
	files := map[string]localFile{}
	add := func(rel string, size int) {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		i := len(files)
		files[rel] = localFile{data: b, mode: modes[i%len(modes)], mtime: base.Add(time.Duration(i) * 7919 * time.Second)}
	}
	for i := range small {
		add(fmt.Sprintf("%s/small-%d.txt", []string{"a", "a/b", "c/d/e", "top"}[i%4], i), 1+i*97%2000)
	}
	for i := range large {
		add(fmt.Sprintf("%s/large-%d.bin", []string{"a", "big", "c/d"}[i%3], i), core.InlineDefault+1+i*3001)
	}
	return files
}

// readTree returns the regular files under dir by relative slash path, and
// fails on anything else but directories.
func readTree(t *testing.T, dir string) map[string]localFile {
	t.Helper()
	got := map[string]localFile{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			t.Errorf("%s: mode %v, want a regular file", p, fi.Mode())
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		got[filepath.ToSlash(rel)] = localFile{data: b, mode: fi.Mode(), mtime: fi.ModTime()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// sameTree reports how got differs from want: names, bytes, modes and
// modification times.
func sameTree(t *testing.T, got, want map[string]localFile) {
	t.Helper()
	var names []string
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w := want[n]
		g, ok := got[n]
		if !ok {
			t.Errorf("%s: missing", n)
			continue
		}
		if !bytes.Equal(g.data, w.data) {
			t.Errorf("%s: %d bytes differ from the %d put", n, len(g.data), len(w.data))
		}
		if g.mode != w.mode {
			t.Errorf("%s: mode %v, want %v", n, g.mode, w.mode)
		}
		if !g.mtime.Equal(w.mtime) {
			t.Errorf("%s: mtime %v, want %v", n, g.mtime, w.mtime)
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			t.Errorf("%s: not in the tree put", n)
		}
	}
}

// calls returns how many of each B2 call the emulator answered since
// before.
func (e *testEnv) callsSince(before b2emu.Stats, name string) int64 {
	return e.srv.Stats().Calls[name] - before.Calls[name]
}

// TestPutTreeGetTree: put -r stores a tree of 30 files (large ones
// uploaded, small ones inline) in one b2_update_bucket, skipping a
// symbolic link and an empty directory; get -r copies it back with the
// same bytes, modes and modification times.
func TestPutTreeGetTree(t *testing.T) {
	e := newTestEnv(t)
	want := testTree(20, 10)
	dir := makeTree(t, want)
	if err := os.Symlink("a/small-0.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "empty/deeper"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.must("put", "x", e.path("g/other")) // the group exists

	before := e.srv.Stats()
	out, stderr, err := e.run("put", "", "-r", dir, e.path("g/rel/v1"))
	if err != nil {
		t.Fatalf("put -r: %v (stderr %q)", err, stderr)
	}
	if n := e.callsSince(before, "b2_update_bucket"); n != 1 {
		t.Errorf("put -r made %d bucket updates, want 1", n)
	}
	if n := e.callsSince(before, "b2_upload_file") + e.callsSince(before, "b2_start_large_file"); n < 10 || n > 12 {
		t.Errorf("put -r made %d uploads, want 10 (the large files; small ones inline), and at most a delta of the index", n)
	}
	if !strings.Contains(out, "put "+e.path("g/rel/v1")+": 30 files (30 new, 0 replaced), ") || !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Errorf("summary %q", out)
	}
	if !strings.Contains(stderr, "skipping symbolic link "+filepath.Join(dir, "link")) {
		t.Errorf("stderr %q, want a warning about the symbolic link", stderr)
	}
	if got := e.must("ls", "", e.path("g/rel/v1")); got != "a/\nbig/\nc/\ntop/\n" {
		t.Errorf("ls after put -r = %q", got)
	}
	if got := e.must("cat", "", e.path("g/rel/v1/a/b/small-1.txt")); got != string(want["a/b/small-1.txt"].data) {
		t.Errorf("cat of a small file: %d bytes", len(got))
	}

	// Inline versions really are inline: the index holds them.
	snap, err := e.group("g").View(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	inline := 0
	for n, en := range snap.All() {
		if strings.HasPrefix(n, "rel/v1/") && en.Inline {
			inline++
		}
	}
	if inline != 20 {
		t.Errorf("%d inline versions, want the 20 small files", inline)
	}

	dst := filepath.Join(t.TempDir(), "copy", "v1")
	out = e.must("get", "", "-r", e.path("g/rel/v1"), dst)
	if !strings.HasPrefix(out, "get "+e.path("g/rel/v1")+": 30 files, ") {
		t.Errorf("get -r summary %q", out)
	}
	sameTree(t, readTree(t, dst), want)

	// One object, into a directory and to a file name.
	one := t.TempDir()
	e.must("get", "", e.path("g/rel/v1/big/large-1.bin"), one)
	e.must("get", "", e.path("g/rel/v1/big/large-1.bin"), filepath.Join(one, "renamed"))
	sameTree(t, readTree(t, one), map[string]localFile{
		"large-1.bin": want["big/large-1.bin"],
		"renamed":     want["big/large-1.bin"],
	})

	// The group's root, reserved names skipped.
	g := e.group("g")
	storetest.Commit(t, g, ".b2cfs/locks/x", "{}")
	root := filepath.Join(t.TempDir(), "root")
	e.must("get", "", "-r", e.path("g"), root)
	all := readTree(t, root)
	if len(all) != 31 || all["other"].data == nil {
		t.Errorf("get -r of the root: %d files, want 31 with other", len(all))
	}
	if _, err := os.Stat(filepath.Join(root, ".b2cfs")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("get -r wrote reserved names: %v", err)
	}

	for _, tc := range []struct {
		cmd  string
		args []string
		want string
	}{
		{"get", []string{"-r", e.path("g/rel/v1/top/small-3.txt"), t.TempDir()}, "not a directory"},
		{"get", []string{"-r", e.path("g/nope"), t.TempDir()}, "does not exist"},
		{"get", []string{e.path("g/rel/v1"), t.TempDir()}, "is a directory"},
		{"get", []string{e.path("g/.b2cfs/locks/x"), t.TempDir()}, "reserved"},
		{"get", []string{e.path("g/other")}, "wrong number of arguments"},
		{"put", []string{"-r", filepath.Join(dir, "a/small-0.txt"), e.path("g/x")}, "not a directory"},
		{"put", []string{"-r", filepath.Join(dir, "missing"), e.path("g/x")}, "no such file"},
		{"put", []string{"-r", dir, e.path("g/.b2cfs/x")}, "reserved"},
		{"put", []string{"-r", e.path("g/x")}, "want a local DIR"},
	} {
		_, _, err := e.run(tc.cmd, "", tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}

// TestPutTreeReplaces: put -r over a tree stored before replaces the
// objects it names and keeps the others; a tree that does not fit the
// group's directories stores nothing.
func TestPutTreeReplaces(t *testing.T) {
	e := newTestEnv(t)
	tree := testTree(4, 2)
	dir := makeTree(t, tree)
	e.must("put", "", "-r", dir, e.path("g/site"))
	e.must("put", "keep", e.path("g/site/only-remote"))

	changed := tree["a/small-0.txt"]
	changed.data = []byte("changed")
	changed.mtime = changed.mtime.Add(time.Hour)
	tree["a/small-0.txt"] = changed
	tree["new/file"] = localFile{data: bytes.Repeat([]byte("n"), 10000), mode: 0o640, mtime: time.Unix(1700000000, 0)}
	dir2 := makeTree(t, tree)
	before := e.srv.Stats()
	out := e.must("put", "", "-r", dir2, e.path("g/site"))
	if !strings.Contains(out, ": 7 files (1 new, 6 replaced), ") {
		t.Errorf("summary %q", out)
	}
	if n := e.callsSince(before, "b2_update_bucket"); n != 1 {
		t.Errorf("put -r made %d bucket updates, want 1", n)
	}
	if got := e.must("cat", "", e.path("g/site/a/small-0.txt"), e.path("g/site/only-remote")); got != "changedkeep" {
		t.Errorf("after put -r over the tree: %q", got)
	}
	dst := filepath.Join(t.TempDir(), "out")
	e.must("get", "", "-r", e.path("g/site"), dst)
	got := readTree(t, dst)
	delete(got, "only-remote")
	sameTree(t, got, tree)

	// A file where the group has a directory, and a directory where it
	// has an object: refused before any upload.
	e.must("put", "d", e.path("g/site2/x/inside"))
	e.must("put", "f", e.path("g/site3/y"))
	bad := makeTree(t, map[string]localFile{
		"x":        {data: bytes.Repeat([]byte("x"), 9000), mode: 0o644, mtime: time.Unix(1600000000, 0)},
		"y/nested": {data: []byte("y"), mode: 0o644, mtime: time.Unix(1600000000, 0)},
	})
	for _, tc := range []struct{ prefix, want string }{
		{"g/site2", `"site2/x" is a directory in the group`},
		{"g/site3", `"site3/y" is an object in the group, where the tree needs a directory`},
		{"g/site3/y", `"site3/y" is an object in the group, where the tree needs a directory`},
	} {
		before := e.srv.Stats()
		_, _, err := e.run("put", "", "-r", bad, e.path(tc.prefix))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nothing was stored") {
			t.Errorf("put -r to %s: %v, want %q", tc.prefix, err, tc.want)
		}
		for _, call := range []string{"b2_update_bucket", "b2_upload_file"} {
			if n := e.callsSince(before, call); n != 0 {
				t.Errorf("refused put -r to %s made %d %s", tc.prefix, n, call)
			}
		}
	}
	if got := e.must("ls", "", e.path("g/site2/x")); got != "inside\n" {
		t.Errorf("after refused put -r: ls site2/x = %q", got)
	}
}

// TestPutTreeConflict: when another host changes, or creates, one of the
// tree's objects after put -r took its snapshot, put -r fails with a
// conflict and none of the tree becomes visible.
func TestPutTreeConflict(t *testing.T) {
	e := newTestEnv(t)
	tree := testTree(6, 3)
	dir := makeTree(t, tree)
	e.must("put", "", "-r", dir, e.path("g/site"))
	other := e.group("g")
	ctx := context.Background()

	tree["added"] = localFile{data: []byte("added"), mode: 0o644, mtime: time.Unix(1600000000, 0)}
	dir2 := makeTree(t, tree)
	for _, name := range []string{"site/a/small-0.txt", "site/added"} {
		t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
			putTreeBeforePublish = func() {
				v, err := other.View(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				key, _ := v.Key(name)
				if _, err := other.Commit(ctx, name, key, strings.NewReader("other"), 5); err != nil {
					t.Error(err)
				}
			}
			defer func() { putTreeBeforePublish = nil }()
			before, err := other.View(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out, _, err := e.run("put", "", "-r", dir2, e.path("g/site"))
			if err == nil || !strings.Contains(err.Error(), "conflict") || !strings.Contains(err.Error(), "nothing was stored") || !errors.Is(err, core.ErrConflict) {
				t.Errorf("put -r over a concurrent commit: %v, want a conflict", err)
			}
			if out != "" {
				t.Errorf("failed put -r printed %q", out)
			}
			after, err := other.View(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for n, en := range after.All() {
				if n == name {
					continue
				}
				if b, ok := before.Entry(n); !ok || b.Key != en.Key {
					t.Errorf("%s changed by the failed put -r", n)
				}
			}
			if got := e.must("cat", "", e.path("g/"+name)); got != "other" {
				t.Errorf("%s = %q, want the other host's version", name, got)
			}
		})
	}
}

// TestPutTreeInterrupted: cancelling the context (Ctrl-C) while put -r
// uploads leaves nothing visible and sends no bucket update.
func TestPutTreeInterrupted(t *testing.T) {
	e := newTestEnv(t)
	dir := makeTree(t, testTree(0, 24))
	e.must("put", "x", e.path("g/other"))
	e.srv.SetFault("b2_upload_file", b2emu.Fault{Latency: 20 * time.Millisecond})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	uploaded := 0
	putTreeUploaded = func(n int) {
		uploaded = n
		if n == 3 {
			cancel()
		}
	}
	defer func() { putTreeUploaded = nil }()
	var out, errs bytes.Buffer
	c := cli{stdin: strings.NewReader(""), stdout: &out, stderr: &errs, getenv: mapEnv(e.env)}
	before := e.srv.Stats()
	err := execute(ctx, c, []string{"put", "-r", dir, e.path("g/tree")})
	if err == nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted; nothing was stored") {
		t.Errorf("interrupted put -r: %v, want an interruption", err)
	}
	if uploaded < 3 || uploaded >= 24 {
		t.Errorf("%d files were staged before the put failed, want 3 to 23", uploaded)
	}
	if n := e.callsSince(before, "b2_update_bucket"); n != 0 {
		t.Errorf("interrupted put -r made %d bucket updates, want 0", n)
	}
	if n := e.callsSince(before, "b2_delete_file_version"); n < int64(uploaded) {
		t.Errorf("interrupted put -r deleted %d files, want at least the %d it had uploaded", n, uploaded)
	}
	e.srv.SetFault("b2_upload_file", b2emu.Fault{})
	if got := e.must("ls", "", e.path("g")); got != "other\n" {
		t.Errorf("after an interrupted put -r: ls = %q", got)
	}
	if _, _, err := e.run("ls", "", e.path("g/tree")); !errors.Is(err, core.ErrNotExist) {
		t.Errorf("ls of the prefix after an interrupted put -r: %v, want ErrNotExist", err)
	}
	if out.Len() != 0 {
		t.Errorf("interrupted put -r printed %q", out.String())
	}
}

// TestGetTreeRefusesExisting: get -r does not replace an existing local
// file without --force and then writes nothing at all; with --force it
// replaces it.
func TestGetTreeRefusesExisting(t *testing.T) {
	e := newTestEnv(t)
	tree := testTree(5, 2)
	e.must("put", "", "-r", makeTree(t, tree), e.path("g/site"))

	dst := t.TempDir()
	mine := filepath.Join(dst, "top", "small-3.txt")
	if err := os.MkdirAll(filepath.Dir(mine), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mine, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := e.srv.Stats()
	_, _, err := e.run("get", "", "-r", e.path("g/site"), dst)
	if err == nil || !strings.Contains(err.Error(), "exists (use --force") {
		t.Errorf("get -r over an existing file: %v, want a refusal", err)
	}
	// Reading the index is one download (its manifest); the two large
	// files would be two more.
	if n := e.callsSince(before, "b2_download_file_by_name") + e.callsSince(before, "b2_download_file_by_id"); n > 1 {
		t.Errorf("refused get -r downloaded %d times, want the index only", n)
	}
	got := readTree(t, dst)
	if len(got) != 1 || string(got["top/small-3.txt"].data) != "mine" {
		t.Errorf("refused get -r changed the directory: %d files, top/small-3.txt = %q", len(got), got["top/small-3.txt"].data)
	}
	if _, _, err := e.run("get", "", e.path("g/site/top/small-3.txt"), mine); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("get of one object over an existing file: %v", err)
	}

	e.must("get", "", "-r", "--force", e.path("g/site"), dst)
	sameTree(t, readTree(t, dst), tree)
}

// TestGetTreeFailureLeavesNothing: a get -r one of whose downloads fails
// (its data file is gone) leaves no file, neither under a final name nor a
// temporary one, and removes the directories it created.
func TestGetTreeFailureLeavesNothing(t *testing.T) {
	e := newTestEnv(t)
	e.must("put", "", "-r", makeTree(t, testTree(3, 6)), e.path("g/site"))
	key := keyOf(t, e.group("g"), "site/c/d/large-5.bin")
	fsckDelete(t, e.store(), ".b2cfs/data/g/"+key)
	parent := t.TempDir()
	_, _, err := e.run("get", "", "-r", e.path("g/site"), filepath.Join(parent, "new", "out"))
	if err == nil || !strings.Contains(err.Error(), "large-5.bin") || !strings.Contains(err.Error(), "no file was written") {
		t.Errorf("get -r with a lost data file: %v, want an error", err)
	}
	left, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("failed get -r left %v in the parent", left)
	}

	// Into an existing directory: it stays, empty.
	dst := t.TempDir()
	if _, _, err := e.run("get", "", "-r", e.path("g/site"), dst); err == nil {
		t.Error("get -r with a lost data file succeeded")
	}
	if left, _ := os.ReadDir(dst); len(left) != 0 {
		t.Errorf("failed get -r left %v in the destination", left)
	}
}

// TestPutTreeProgress: put -r and get -r draw a bar on a terminal only.
func TestPutTreeProgress(t *testing.T) {
	e := newTestEnv(t)
	dir := makeTree(t, testTree(3, 3))
	tty := cli{stdin: strings.NewReader(""), getenv: mapEnv(e.env), stderrTTY: true}
	_, stderr, err := e.runWith("put", tty, "-r", dir, e.path("g/a"))
	if err != nil || !strings.Contains(stderr, "uploading") {
		t.Errorf("terminal: %v, stderr %q, want a progress bar", err, stderr)
	}
	_, stderr, err = e.runWith("get", tty, "-r", e.path("g/a"), filepath.Join(t.TempDir(), "x"))
	if err != nil || !strings.Contains(stderr, "downloading") {
		t.Errorf("get -r on a terminal: %v, stderr %q, want a progress bar", err, stderr)
	}
	_, stderr, err = e.run("put", "", "-r", dir, e.path("g/b"))
	if err != nil || stderr != "" {
		t.Errorf("not a terminal: %v, stderr %q, want nothing", err, stderr)
	}
}

// TestGetTreeHelp: put and get document -r, and completion offers their
// options.
func TestGetTreeHelp(t *testing.T) {
	e := newTestEnv(t)
	for _, name := range []string{"get", "put"} {
		stdout, _, err := e.run(name, "", "--help")
		if err != nil || !strings.Contains(stdout, "b2cfs "+name+" -r [flags]") || !strings.Contains(stdout, "Examples:") {
			t.Errorf("%s --help: %v\n%s", name, err, stdout)
		}
	}
	for name, want := range map[string][]string{"get": {"-r", "--force"}, "put": {"-r", "--format"}} {
		got := strings.Fields(e.must("__complete", "", name, "-"))
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("__complete %s - = %q, lacks %s", name, got, w)
			}
		}
	}
}
