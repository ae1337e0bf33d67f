package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/b2cfs/b2cfs/cache"
	"github.com/b2cfs/b2cfs/core"
)

// keepBytes stores data in the recovery directory of a cache in dir as a
// mount does after a failed commit of bucket/group/name.
func keepBytes(t *testing.T, dir string, k cache.Kept, data string) string {
	t.Helper()
	c, err := cache.New(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.NewFile()
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(data)
	path, err := c.KeepWith(f, k)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func commitString(t *testing.T, g *core.Group, name, key, data string) string {
	t.Helper()
	nk, err := g.Commit(context.Background(), name, key, strings.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return nk
}

// listIDs runs "recover --json" and returns the kept files.
func (e *testEnv) listKept(dir string) []keptFile {
	e.t.Helper()
	out := e.must("recover", "", "list", "--json", "--cache-dir", dir)
	var files []keptFile
	if err := json.Unmarshal([]byte(out), &files); err != nil {
		e.t.Fatalf("%v: %s", err, out)
	}
	return files
}

func TestRecover(t *testing.T) {
	e := newTestEnv(t)
	g := e.group("g")
	k1 := commitString(t, g, "f", "", "base\n")
	k2 := commitString(t, g, "f", k1, "theirs\n") // the commit that won
	base := t.TempDir()
	cacheDir := filepath.Join(base, "b2cfs", e.bucket, "g")
	kept := keepBytes(t, cacheDir, cache.Kept{Bucket: e.bucket, Group: "g", Name: "f", Base: k1, Current: k2, CurrentKnown: true, Reason: "EBUSY: changed elsewhere"}, "mine\n")

	out := e.must("recover", "", "--cache-dir", base)
	if !strings.Contains(out, e.bucket+"/g") || !strings.Contains(out, " f ") || !strings.Contains(out, "EBUSY") {
		t.Fatalf("list:\n%s", out)
	}
	files := e.listKept(base)
	if len(files) != 1 || files[0].Path != kept || files[0].Kept.Size != 5 || !files[0].Described {
		t.Fatalf("list: %+v", files)
	}
	id := files[0].ID

	dst := filepath.Join(t.TempDir(), "restored")
	e.must("recover", "", "restore", "--cache-dir", base, id, dst)
	if b, _ := os.ReadFile(dst); string(b) != "mine\n" {
		t.Fatalf("restored %q", b)
	}
	if out := e.must("recover", "", "restore", "--cache-dir", base, id[:4], "-"); out != "mine\n" {
		t.Fatalf("restore to stdout: %q", out)
	}

	// Unchanged since kept: commit replaces the winner's version.
	out = e.must("recover", "", "commit", "--cache-dir", base, id)
	if !strings.Contains(out, "committed "+id) {
		t.Errorf("commit: %q", out)
	}
	if got := keptObject(t, g, "f"); got != "mine\n" {
		t.Fatalf("after commit B2 has %q", got)
	}
	if files := e.listKept(base); len(files) != 0 {
		t.Fatalf("committed bytes still listed: %+v", files)
	}

	// Changed after it was kept: refused, unless --force.
	k3 := keyOf(t, g, "f")
	keepBytes(t, cacheDir, cache.Kept{Bucket: e.bucket, Group: "g", Name: "f", Base: k2, Current: k3, CurrentKnown: true, Reason: "EBUSY"}, "second\n")
	commitString(t, g, "f", k3, "newer\n")
	id = e.listKept(base)[0].ID
	if _, _, err := e.run("recover", "", "commit", "--cache-dir", base, id); err == nil || !strings.Contains(err.Error(), "changed after the bytes were kept") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("commit over a newer version: %v", err)
	}
	if got := keptObject(t, g, "f"); got != "newer\n" {
		t.Fatalf("refused commit changed B2: %q", got)
	}
	e.must("recover", "", "commit", "--force", "--cache-dir", base, id)
	if got := keptObject(t, g, "f"); got != "second\n" {
		t.Fatalf("after --force B2 has %q", got)
	}

	// Leftovers of a crashed mount have no description: listed, commit
	// needs --to and --force, discard deletes them.
	os.WriteFile(filepath.Join(cacheDir, "dirty", "99-1"), []byte("left"), 0o600)
	keepBytes(t, cacheDir, cache.Kept{Name: "x"}, "") // reopening moves dirty/ to recovery/
	var left keptFile
	for _, k := range e.listKept(base) {
		if !k.Described {
			left = k
		}
	}
	if left.ID == "" || !strings.Contains(left.Kept.Reason, "stopped") {
		t.Fatalf("leftover not listed: %+v", e.listKept(base))
	}
	if _, _, err := e.run("recover", "", "commit", "--cache-dir", base, left.ID); err == nil || !strings.Contains(err.Error(), "--to") {
		t.Fatalf("commit of a leftover without --to: %v", err)
	}
	if _, _, err := e.run("recover", "", "commit", "--to", e.path("g/left"), "--cache-dir", base, left.ID); err == nil {
		t.Fatal("commit of a leftover without --force accepted")
	}
	e.must("recover", "", "commit", "--force", "--to", e.path("g/left"), "--cache-dir", base, left.ID)
	if got := keptObject(t, g, "left"); got != "left" {
		t.Fatalf("leftover committed as %q", got)
	}
	for _, k := range e.listKept(base) {
		e.must("recover", "", "discard", "--cache-dir", base, k.ID)
	}
	if out := e.must("recover", "", "--cache-dir", base); !strings.Contains(out, "no kept changes") {
		t.Fatalf("after discard: %q", out)
	}
	if _, _, err := e.run("recover", "", "restore", "--cache-dir", base, "abcd", "-"); err == nil {
		t.Fatal("restore of an unknown ID accepted")
	}
}

func TestGuessKept(t *testing.T) {
	k := guessKept("dir%2Fa%25b.c.20250102T030405Z.7")
	if k.Name != "dir/a%b.c" || k.Time.Year() != 2025 {
		t.Errorf("guessKept: %+v", k)
	}
	if k := guessKept("leftover-12-3"); k.Name != "" || !strings.Contains(k.Reason, "stopped") {
		t.Errorf("leftover: %+v", k)
	}
}

func keptObject(t *testing.T, g *core.Group, name string) string {
	t.Helper()
	b, err := readObject(g, name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
