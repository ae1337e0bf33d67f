package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/b2emu"
)

// TestTarKeepsModesAndTimes extracts a 2,000-file tree into a mount of a
// b2cfs-format group and archives it back out through another host's
// mount: contents, modes and modification times match.
func TestTarKeepsModesAndTimes(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 files")
	}
	e := newEnv(t, b2emu.Config{})
	a := e.mount("tree", "format=b2cfs")
	src := t.TempDir()
	modes := []os.FileMode{0o644, 0o600, 0o755, 0o640, 0o444}
	base := time.Date(2019, 5, 6, 7, 8, 9, 0, time.UTC)
	for i := 0; i < 2000; i++ {
		p := filepath.Join(src, "src", fmt.Sprintf("d%02d", i%40), fmt.Sprintf("f%04d.txt", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(fmt.Sprintf("file %d\n%s", i, make([]byte, i%300))), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, modes[i%len(modes)]); err != nil {
			t.Fatal(err)
		}
		mt := base.Add(time.Duration(i) * time.Hour)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	tarball := filepath.Join(t.TempDir(), "tree.tar")
	sh(t, src, "tar cf "+tarball+" src")
	start := time.Now()
	sh(t, a.dir, "tar xpf "+tarball)
	t.Logf("tar x of 2,000 files into the mount: %v", time.Since(start))
	// The modes and times tar set last are committed within 0.1 s; sync
	// commits them now, so that the other host reads a tree that no
	// longer changes (tar c checks that).
	sh(t, a.dir, "sync src")

	// Another host, cold: archive the tree back out and compare.
	b := e.mount("tree")
	out := t.TempDir()
	sh(t, b.dir, "tar cf "+filepath.Join(out, "back.tar")+" src")
	sh(t, out, "tar xpf back.tar")
	sh(t, out, "diff -r "+filepath.Join(src, "src")+" src")
	list := `find src -type f -printf '%P %m %T@ %s\n' | sort`
	want, got := sh(t, src, list), sh(t, out, list)
	if want != got {
		wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
		for i := range min(len(wl), len(gl)) {
			if wl[i] != gl[i] {
				t.Fatalf("modes, times or sizes differ after the round trip (line %d):\nwant %s\ngot  %s", i, wl[i], gl[i])
			}
		}
		t.Fatalf("%d files listed, want %d", len(gl), len(wl))
	}
}
