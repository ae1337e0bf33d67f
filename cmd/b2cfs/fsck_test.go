package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/storetest"
)

// fsckExit is the exit status run gives err.
func fsckExit(err error) int {
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.Code
	}
	return 1
}

// fsckRun runs the command and checks its exit status. It returns stdout,
// and stderr with the message run prints for the error.
func fsckRun(e *testEnv, code int, args ...string) (string, string) {
	e.t.Helper()
	out, errs, err := e.run("fsck", "", args...)
	if got := fsckExit(err); got != code {
		e.t.Fatalf("fsck %q: exit status %d (%v), want %d\nstdout:\n%s\nstderr:\n%s", args, got, err, code, out, errs)
	}
	if err != nil {
		errs += "b2cfs: " + err.Error() + "\n"
	}
	return out, errs
}

// fsckDelete deletes the newest version of a file of the bucket.
func fsckDelete(t *testing.T, s core.Store, file string) {
	t.Helper()
	ctx := context.Background()
	fi, err := s.Stat(ctx, file)
	if err != nil {
		t.Fatalf("stat %s: %v", file, err)
	}
	if err := s.Delete(ctx, file, fi.ID); err != nil {
		t.Fatal(err)
	}
}

// fsckSetInfo sets one bucket-info value, as another program would.
func fsckSetInfo(t *testing.T, s core.Store, key, value string) {
	t.Helper()
	ctx := context.Background()
	bi, err := s.BucketInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	info := maps.Clone(bi.Info)
	info[key] = value
	if _, err := s.UpdateBucketInfo(ctx, bi.Revision, info); err != nil {
		t.Fatal(err)
	}
}

// infoValue returns one bucket-info value.
func infoValue(t *testing.T, s core.Store, key string) string {
	t.Helper()
	bi, err := s.BucketInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return bi.Info[key]
}

// fsckContents reads every object of the group with a new group handle.
func fsckContents(t *testing.T, e *testEnv, group string) (map[string]string, error) {
	t.Helper()
	ctx := context.Background()
	g := e.group(group)
	v, err := g.View(ctx)
	if err != nil {
		return nil, err
	}
	names := v.Names()
	out := map[string]string{}
	for _, n := range names {
		r, err := g.NewReader(ctx, n)
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return nil, err
		}
		out[n] = string(b)
	}
	return out, nil
}

func TestFsck(t *testing.T) {
	for _, format := range []string{core.FormatB2cfs, core.FormatBlazer} {
		t.Run(format, func(t *testing.T) { testFsck(t, format) })
	}
}

// testFsck damages a group the way a commit whose reply was lost used to
// (it deleted the data file of a version the index kept), and then
// overwrites the pointer or index with garbage.
func testFsck(t *testing.T, format string) {
	e := newTestEnv(t)
	s := e.store()
	g := e.groupFiles("g", format)
	want := map[string]string{}
	keys := map[string]string{}
	put := func(name, content string) {
		want[name], keys[name] = content, storetest.Commit(t, g, name, content)
	}
	for i := range 8 {
		put(fmt.Sprintf("dir/f%d", i), fmt.Sprintf("content of f%d", i))
	}
	put("dir/f3", "f3, second version")
	if format == core.FormatB2cfs {
		// Until the pointer holds no change of its own, so that the
		// manifests show every object (what the pointer alone records is
		// lost with it).
		for i := 0; ; i++ {
			if i > 50 {
				t.Fatal("setup: the pointer kept changes inline after 50 commits")
			}
			raw, _ := base64.StdEncoding.DecodeString(infoValue(t, s, "b2cfs-g"))
			var p struct {
				Set map[string]any
				Del []string
			}
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatalf("pointer %s: %v", raw, err)
			}
			if len(p.Set)+len(p.Del) == 0 {
				break
			}
			put(fmt.Sprintf("more/m%d", i), fmt.Sprintf("more %d", i))
		}
	}
	target := e.path("g")

	out, _ := fsckRun(e, 0, target)
	if !strings.Contains(out, fmt.Sprintf("summary: %d objects, %d intact, 0 missing data", len(want), len(want))) || !strings.Contains(out, "ok: no problems") {
		t.Fatalf("intact group:\n%s", out)
	}

	lost := "dir/f5"
	if format == core.FormatB2cfs {
		fsckDelete(t, s, ".b2cfs/data/g/"+keys[lost])
	} else {
		fsckDelete(t, s, lost+"/"+keys[lost])
	}
	delete(want, lost)
	infoKey := core.InfoKey(format, "g")
	fsckSetInfo(t, s, infoKey, "###")
	damage := fmt.Sprintf("problem: pointer: bucket-info %q is not base64", infoKey)
	if format == core.FormatBlazer {
		damage = fmt.Sprintf("problem: index: bucket-info %q is not base64", infoKey)
	}
	if _, err := fsckContents(t, e, "g"); err == nil {
		t.Fatal("setup: the damaged group still reads")
	}

	// The check reports, changes nothing, and exits 1.
	before := storetest.Names(t, s)
	out, errs := fsckRun(e, 1, target)
	if format == core.FormatB2cfs && !strings.Contains(out, fmt.Sprintf("problem: object %q: data file .b2cfs/data/g/%s is missing", lost, keys[lost])) {
		t.Errorf("missing data file not reported:\n%s", out)
	}
	if !strings.Contains(out, damage) || !strings.Contains(out, "--repair would:") || !strings.Contains(errs, "--repair") {
		t.Errorf("damage not reported:\n%s\nstderr: %s", out, errs)
	}
	if after := storetest.Names(t, s); !slices.Equal(before, after) {
		t.Errorf("the check changed the bucket's files")
	}
	if _, err := fsckContents(t, e, "g"); err == nil {
		t.Fatal("the check repaired the group")
	}

	// The repair makes the group readable, with every intact object.
	out, _ = fsckRun(e, 0, "--repair", target)
	t.Logf("b2cfs fsck --repair:\n%s", out)
	if !strings.Contains(out, "repaired:") || !strings.Contains(out, "check after the repair:") || !strings.Contains(out, "ok: no problems") {
		t.Fatalf("repair:\n%s", out)
	}
	got, err := fsckContents(t, e, "g")
	if err != nil {
		t.Fatalf("after the repair: %v\n%s", err, out)
	}
	if !maps.Equal(got, want) {
		t.Errorf("after the repair the group holds\n%q\nwant\n%q\n%s", got, want, out)
	}
	if !strings.Contains(out, fmt.Sprintf("summary: %d objects, %d intact, 0 missing data", len(want), len(want))) {
		t.Errorf("re-check summary:\n%s", out)
	}

	// Checked again: clean.
	out, _ = fsckRun(e, 0, target)
	if !strings.Contains(out, "ok: no problems") {
		t.Errorf("after the repair:\n%s", out)
	}

	// Bad arguments and groups that do not exist cannot be checked.
	fsckRun(e, 2, e.path("nosuchgroup"))
	fsckRun(e, 2, e.path("g/a/path"))
	fsckRun(e, 2)
	out, _ = fsckRun(e, 0, "--help")
	if !strings.Contains(out, "Usage:\n  b2cfs fsck") || !strings.Contains(out, "Examples:") {
		t.Errorf("help:\n%s", out)
	}
}
