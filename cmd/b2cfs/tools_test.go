package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/b2emu"
	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/b2"
	"github.com/b2cfs/b2cfs/core/storetest"
	"github.com/b2cfs/b2cfs/namespace"
)

var testBucketSeq atomic.Int64

// testEnv is an emulator with one bucket, and the environment that points
// the commands at it.
type testEnv struct {
	t      *testing.T
	srv    *b2emu.Server
	url    string
	bucket string
	env    map[string]string
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	srv, err := b2emu.New(b2emu.Config{})
	if err != nil {
		t.Fatal(err)
	}
	url, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	bucket := fmt.Sprintf("tools-bucket-%d", testBucketSeq.Add(1))
	if err := srv.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	return &testEnv{t: t, srv: srv, url: url, bucket: bucket, env: map[string]string{
		envKeyID:    b2emu.DefaultKeyID,
		envKey:      b2emu.DefaultKey,
		envEndpoint: url,
	}}
}

func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// run runs "b2cfs CMD ARGS..." with stdin and the test environment, and
// returns its stdout and stderr.
func (e *testEnv) run(cmd, stdin string, args ...string) (string, string, error) {
	return e.runEnv(cmd, e.env, stdin, args...)
}

func (e *testEnv) runEnv(cmd string, env map[string]string, stdin string, args ...string) (string, string, error) {
	return e.runWith(cmd, cli{stdin: strings.NewReader(stdin), getenv: mapEnv(env)}, args...)
}

func (e *testEnv) runWith(cmd string, c cli, args ...string) (string, string, error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errs bytes.Buffer
	c.stdout, c.stderr = &out, &errs
	err := execute(ctx, c, append([]string{cmd}, args...))
	return out.String(), errs.String(), err
}

// must runs a command that must succeed and returns its stdout.
func (e *testEnv) must(cmd, stdin string, args ...string) string {
	e.t.Helper()
	out, errs, err := e.run(cmd, stdin, args...)
	if err != nil {
		e.t.Fatalf("%v: %v (stderr %q)", args, err, errs)
	}
	return out
}

// store opens the bucket directly, as another host would.
func (e *testEnv) store() *b2.Store {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := b2.Open(ctx, b2.Config{Endpoint: e.url, KeyID: b2emu.DefaultKeyID, Key: b2emu.DefaultKey, Bucket: e.bucket})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// group opens a group directly; superseded versions are kept.
func (e *testEnv) group(name string) *core.Group {
	e.t.Helper()
	return e.groupFormat(name, "")
}

// groupFormat opens a group that is created in format if it is new.
func (e *testEnv) groupFormat(name, format string) *core.Group {
	e.t.Helper()
	return e.groupOptions(name, core.Options{Format: format})
}

// groupFiles is groupFormat, but every version gets a data file, none is
// inline: for tests that damage or collect data files.
func (e *testEnv) groupFiles(name, format string) *core.Group {
	e.t.Helper()
	return e.groupOptions(name, core.Options{Format: format, InlineMax: -1})
}

// groupOptions opens a group with opts, keeping superseded versions and
// reloading the view on every read.
func (e *testEnv) groupOptions(name string, opts core.Options) *core.Group {
	e.t.Helper()
	opts.Grace, opts.IndexTTL = -1, -1
	g, err := core.NewGroup(e.store(), name, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { g.Close() })
	return g
}

func (e *testEnv) path(p string) string { return e.bucket + "/" + p }

func TestPutCat(t *testing.T) {
	e := newTestEnv(t)
	file := writeFile(t, "in.txt", "from a file\n", 0o644)
	e.must("put", "", file, e.path("g/docs/a.txt"))
	if got := e.must("cat", "", e.path("g/docs/a.txt")); got != "from a file\n" {
		t.Errorf("cat after put FILE = %q", got)
	}
	// Replacing: "-" and no FILE both read stdin.
	e.must("put", "from stdin\n", "-", e.path("g/docs/a.txt"))
	if got := e.must("cat", "", e.path("g/docs/a.txt")); got != "from stdin\n" {
		t.Errorf("cat after put - = %q", got)
	}
	e.must("put", "implicit stdin", e.path("g/b"))
	e.must("put", "", e.path("g/empty")) // empty stdin: empty object
	if got := e.must("cat", "", e.path("g/docs/a.txt"), e.path("g/b"), e.path("g/empty")); got != "from stdin\nimplicit stdin" {
		t.Errorf("cat of three = %q", got)
	}
	// Flags after the arguments work too.
	if _, _, err := e.run("cat", "", e.path("g/b"), "-v"); err != nil {
		t.Errorf("flag after argument: %v", err)
	}

	// 20 MB, from a file and from a stream (spooled to a temporary file).
	big := make([]byte, 20<<20)
	rand.Read(big)
	bigFile := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(bigFile, big, 0o644); err != nil {
		t.Fatal(err)
	}
	e.must("put", "", bigFile, e.path("g/big"))
	if got := e.must("cat", "", e.path("g/big")); got != string(big) {
		t.Errorf("20 MB from file: got %d bytes, want %d, equal %v", len(got), len(big), got == string(big))
	}
	big[0] ^= 0xff
	e.must("put", string(big), e.path("g/big"))
	if got := e.must("cat", "", e.path("g/big")); got != string(big) {
		t.Errorf("20 MB from stdin: got %d bytes, equal %v", len(got), got == string(big))
	}

	// Errors.
	for _, tc := range []struct {
		cmd  string
		args []string
		want string
	}{
		{"cat", []string{e.path("g/missing")}, "does not exist"},
		{"cat", []string{e.path("g/docs")}, "is a directory"},
		{"cat", []string{e.path("g")}, "no object path"},
		{"put", []string{e.path("g/docs")}, "is a directory"},
		{"put", []string{e.path("g")}, "no object path"},
		{"put", []string{e.path("g/.b2cfs/locks/x")}, "reserved"},
		{"put", []string{filepath.Join(t.TempDir(), "nope"), e.path("g/x")}, "no such file"},
		{"put", []string{t.TempDir(), e.path("g/x")}, "is a directory"},
		{"put", []string{"a", "b", "c"}, "wrong number of arguments"},
		{"cat", []string{e.path("bad!group/x")}, "bad name"},
	} {
		_, _, err := e.run(tc.cmd, "data", tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want error with %q", tc.args, err, tc.want)
		}
	}
	if _, _, err := e.run("cat", "", e.path("bad!group/x")); !errors.Is(err, core.ErrBadName) {
		t.Errorf("bad group: %v, want ErrBadName", err)
	}
}

func TestPutFormat(t *testing.T) {
	e := newTestEnv(t)
	e.must("put", "x", "--format", "blazer", e.path("old/a"))
	e.must("put", "y", e.path("new/a"))
	out := e.must("status", "", e.path("old")) + e.must("status", "", e.path("new"))
	if !strings.Contains(out, "index:    blazer format") || !strings.Contains(out, "index:    b2cfs format") {
		t.Errorf("status:\n%s", out)
	}
	if _, _, err := e.run("put", "z", "--format", "nope", e.path("other/a")); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown format: %v", err)
	}
}

func TestPutConflict(t *testing.T) {
	e := newTestEnv(t)
	e.must("put", "v1", e.path("g/counter"))
	other := e.group("g")
	putBeforeCommit = func() {
		// Another host commits between put's read of the key and its commit.
		v, err := other.View(context.Background())
		if err != nil {
			t.Error(err)
			return
		}
		key, _ := v.Key("counter")
		if _, err := other.Commit(context.Background(), "counter", key, strings.NewReader("other"), 5); err != nil {
			t.Error(err)
		}
	}
	_, _, err := e.run("put", "mine", e.path("g/counter"))
	putBeforeCommit = nil
	if err == nil || !strings.Contains(err.Error(), "conflict") || !strings.Contains(err.Error(), "nothing was stored") {
		t.Errorf("put over a concurrent commit: %v, want a conflict", err)
	}
	if got := e.must("cat", "", e.path("g/counter")); got != "other" {
		t.Errorf("after conflict: %q, want the other host's version", got)
	}
}

func TestPutProgress(t *testing.T) {
	e := newTestEnv(t)
	data := strings.Repeat("x", progressMin+1)
	_, stderr, err := e.runWith("put", cli{stdin: strings.NewReader(data), getenv: mapEnv(e.env), stderrTTY: true}, e.path("g/big"))
	if err != nil || !strings.Contains(stderr, "uploading big") {
		t.Errorf("terminal: %v, stderr %q, want a progress bar", err, stderr)
	}
	_, stderr, err = e.run("put", data, e.path("g/big"))
	if err != nil || stderr != "" {
		t.Errorf("not a terminal: %v, stderr %q, want nothing", err, stderr)
	}
}

func TestLs(t *testing.T) {
	e := newTestEnv(t)
	e.must("put", "aaa", e.path("g/a"))
	e.must("put", "bb", e.path("g/dir/b"))
	e.must("put", "c", e.path("g/dir/sub/c"))
	g := e.group("g")
	ctx := context.Background()
	// b2cfs's own objects: a lock record and an empty directory's marker.
	if _, err := g.Commit(ctx, ".b2cfs/locks/a", "", strings.NewReader("{}"), 2); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Commit(ctx, ".b2cfs/dirs/dir/empty", "", strings.NewReader(""), 0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ arg, want string }{
		{"g", "a\ndir/\n"},
		{"g/", "a\ndir/\n"},
		{"g/dir", "b\nempty/\nsub/\n"},
		{"g/dir/sub/", "c\n"},
		{"g/dir/empty", ""},
		{"g/dir/b", "dir/b\n"},
		{"other", ""},
	} {
		if got := e.must("ls", "", e.path(tc.arg)); got != tc.want {
			t.Errorf("ls %s = %q, want %q", tc.arg, got, tc.want)
		}
	}
	if _, _, err := e.run("ls", "", e.path("g/nope")); !errors.Is(err, core.ErrNotExist) {
		t.Errorf("ls of a missing path: %v", err)
	}

	out := e.must("ls", "", "-l", e.path("g/dir"))
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	today := time.Now().Format(time.DateOnly)
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "2  "+today) || !strings.HasSuffix(lines[0], "  b") ||
		!strings.HasSuffix(lines[1], "  empty/") || !strings.HasSuffix(lines[2], "  sub/") {
		t.Errorf("ls -l dir =\n%s", out)
	}
	out = e.must("ls", "", e.path("g"), "-l")
	if !strings.HasPrefix(out, "3  "+today) || !strings.Contains(out, "  a\n") || !strings.HasSuffix(out, "  dir/\n") {
		t.Errorf("ls -l root =\n%s", out)
	}
	if out := e.must("ls", "", "-l", e.path("g/a")); !strings.HasPrefix(out, "3  ") || !strings.HasSuffix(out, "  a\n") {
		t.Errorf("ls -l of one object = %q", out)
	}
}

func TestMv(t *testing.T) {
	e := newTestEnv(t)
	e.must("put", "one", e.path("g/one"))
	e.must("put", "x", e.path("g/src/x"))
	e.must("put", "y", e.path("g/src/deep/y"))
	e.must("put", "z", e.path("g/keep/z"))

	e.must("mv", "", e.path("g/one"), "renamed")
	if got := e.must("ls", "", e.path("g")); got != "keep/\nrenamed\nsrc/\n" {
		t.Errorf("after file mv: %q", got)
	}
	if got := e.must("cat", "", e.path("g/renamed")); got != "one" {
		t.Errorf("renamed content %q", got)
	}

	// A directory moves in one compare-and-swap.
	before := e.srv.Stats().Calls["b2_update_bucket"]
	e.must("mv", "", e.path("g/src"), e.path("g/dst"))
	if n := e.srv.Stats().Calls["b2_update_bucket"] - before; n != 1 {
		t.Errorf("directory mv made %d bucket updates, want 1", n)
	}
	if got := e.must("ls", "", e.path("g")); got != "dst/\nkeep/\nrenamed\n" {
		t.Errorf("after directory mv: %q", got)
	}
	if got := e.must("cat", "", e.path("g/dst/x"), e.path("g/dst/deep/y")); got != "xy" {
		t.Errorf("moved contents %q", got)
	}

	// Into an existing directory, and into one named with a trailing "/".
	e.must("mv", "", e.path("g/renamed"), "keep")
	e.must("mv", "", e.path("g/dst/x"), "newdir/")
	if got := e.must("ls", "", e.path("g/keep")); got != "renamed\nz\n" {
		t.Errorf("mv into directory: %q", got)
	}
	if got := e.must("cat", "", e.path("g/newdir/x")); got != "x" {
		t.Errorf("mv into new directory: %q", got)
	}

	e.must("put", "q", e.path("g/t/deep/q"))
	for _, tc := range []struct{ from, to, want string }{
		{"g/missing", "x", "does not exist"},
		{"g/dst", "dst/inside", "into itself"},
		{"g/dst/deep", "t", "not empty"}, // t/deep holds q
		{"g/dst/deep/y", ".b2cfs/x", "reserved"},
		{"g", "x", "no object path"},
		{"g/keep/z", "a//b", "bad name"},
	} {
		_, _, err := e.run("mv", "", e.path(tc.from), tc.to)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("mv %s %s: %v, want %q", tc.from, tc.to, err, tc.want)
		}
	}
}

func TestRm(t *testing.T) {
	e := newTestEnv(t)
	e.must("put", "a", e.path("g/a"))
	e.must("put", "b", e.path("g/d/b"))
	e.must("rm", "", e.path("g/a"))
	if _, _, err := e.run("cat", "", e.path("g/a")); !errors.Is(err, core.ErrNotExist) {
		t.Errorf("cat after rm: %v", err)
	}
	if _, _, err := e.run("rm", "", e.path("g/a")); !errors.Is(err, core.ErrNotExist) {
		t.Errorf("rm twice: %v", err)
	}
	if _, _, err := e.run("rm", "", e.path("g/d")); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("rm of a directory: %v", err)
	}
	e.must("rm", "", e.path("g/d/b"))
	if got := e.must("ls", "", e.path("g")); got != "" {
		t.Errorf("after rm: %q", got)
	}
}

func TestStatus(t *testing.T) {
	e := newTestEnv(t)
	e.must("put", "hello", e.path("g/a"))
	e.must("put", "world!", e.path("g/dir/b"))
	g := e.group("g")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := g.Mutex(ctx, namespace.LockName("dir/b"))
	if err := m.TryLock(ctx, core.Exclusive); err != nil {
		t.Fatal(err)
	}
	defer m.UnlockContext(context.Background())
	out := e.must("status", "", e.path("g"))
	host, _ := os.Hostname()
	for _, want := range []string{
		"b2:       reachable at " + e.url + " (authorised in ",
		"group:    " + e.path("g") + "\n",
		"objects:  2 files, 1 directories (3 names in the index)\n",
		"bytes:    11 (11B)\n",
		"index:    b2cfs format: in manifest files",
		"of 2048 bytes of bucket info",
		"the bucket info has 1 of 10 pairs",
		"locks:    1 held\n",
		"  dir/b: exclusive by " + host,
		"lease until",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if _, _, err := e.run("status", "", e.path("g/a")); err == nil {
		t.Error("status with a path accepted")
	}
}

// TestStatusUnreachable: status says B2 is unreachable, within --timeout,
// and fails.
func TestStatusUnreachable(t *testing.T) {
	e := newTestEnv(t)
	e.srv.Close()
	start := time.Now()
	out, _, err := e.run("status", "", "--timeout", "1s", e.path("g"))
	if err == nil || !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("status with B2 down: %v, want ErrUnavailable", err)
	}
	if want := "b2:       UNREACHABLE at " + e.url; !strings.Contains(out, want) {
		t.Errorf("status with B2 down lacks %q:\n%s", want, out)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("status with B2 down took %v with --timeout 1s", d)
	}
}

func TestHelp(t *testing.T) {
	e := newTestEnv(t)
	for _, name := range []string{"ls", "cat", "put", "rm", "mv", "status", "gc"} {
		stdout, _, err := e.run(name, "", "--help")
		if err != nil || !strings.Contains(stdout, "Usage:\n  b2cfs "+name) || !strings.Contains(stdout, "Examples:") {
			t.Errorf("%s --help: %v\n%s", name, err, stdout)
		}
	}
}

func TestVerboseLogging(t *testing.T) {
	e := newTestEnv(t)
	_, stderr, err := e.run("put", "x", e.path("g/a"))
	if err != nil || stderr != "" {
		t.Errorf("quiet by default: %v %q", err, stderr)
	}
	_, stderr, err = e.run("put", "y", "-v", e.path("g/a"))
	if err != nil || !strings.Contains(stderr, "level=DEBUG") || strings.Contains(stderr, b2emu.DefaultKey) {
		t.Errorf("-v: %v %q", err, stderr)
	}
}

func TestLsShowsLinks(t *testing.T) {
	e := newTestEnv(t)
	g := e.groupFormat("g", core.FormatB2cfs)
	storetest.Commit(t, g, "target", "data")
	if _, err := g.Symlink(context.Background(), "link", "target"); err != nil {
		t.Fatal(err)
	}
	out := e.must("ls", "", "-l", e.path("g"))
	if !strings.Contains(out, "  link -> target\n") || !strings.Contains(out, "  target\n") {
		t.Errorf("ls -l with a symbolic link =\n%s", out)
	}
}

// keyOf returns the key of name in g's current view, failing the test when
// the view cannot be read or has no such name.
func keyOf(t *testing.T, g *core.Group, name string) string {
	t.Helper()
	v, err := g.View(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	key, ok := v.Key(name)
	if !ok {
		t.Fatalf("%s: no such object in group %s", name, g.Name())
	}
	return key
}
