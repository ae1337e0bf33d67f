package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCacheSizeOption(t *testing.T) {
	// K, M, G and T are binary multiples, as the help says.
	for _, tc := range []struct {
		in   string
		want int64 // < 0: refused
	}{
		{"1073741824", 1 << 30},
		{"0", 0},
		{"512K", 512 << 10},
		{"512M", 512 << 20},
		{"2G", 2 << 30},
		{"1T", 1 << 40},
		{"512MiB", 512 << 20},
		{"1.5G", 3 << 29},
		{"", -1},
		{"M", -1},
		{"-1G", -1},
		{"2X", -1},
		{"2 GB extra", -1},
		{"lots", -1},
	} {
		t.Run(tc.in, func(t *testing.T) {
			mc, err := parseMountArgs([]string{"-o", "cache_size=" + tc.in, "bucket/g", "/mnt"})
			switch {
			case tc.want < 0 && err == nil:
				t.Errorf("cache_size=%s accepted as %d", tc.in, mc.cacheSize)
			case tc.want < 0 && !strings.Contains(err.Error(), "want a byte count such as 1073741824, 512M or 2G"):
				t.Errorf("cache_size=%s: %v, want the accepted forms named", tc.in, err)
			case tc.want >= 0 && err != nil:
				t.Errorf("cache_size=%s: %v", tc.in, err)
			case tc.want >= 0 && mc.cacheSize != tc.want:
				t.Errorf("cache_size=%s = %d, want %d", tc.in, mc.cacheSize, tc.want)
			}
		})
	}
}

// TestMounted: unmount stops retrying once its directory is no longer a
// mount point, which mounted reads from /proc/self/mountinfo, escapes
// undone.
func TestMounted(t *testing.T) {
	if !mounted("/") {
		t.Error(`"/" is not a mount point`)
	}
	if dir := t.TempDir(); mounted(dir) {
		t.Errorf("%s is a mount point", dir)
	}
	// A mount point named through a symlinked parent.
	if mounted("/proc") {
		link := filepath.Join(t.TempDir(), "root")
		if err := os.Symlink("/", link); err != nil {
			t.Fatal(err)
		}
		if p := filepath.Join(link, "proc"); !mounted(p) {
			t.Errorf("%s (/proc through a symlink) is not a mount point", p)
		}
	}
	if got := unescapeMountinfo(`/mnt/a\040b\134c`); got != `/mnt/a b\c` {
		t.Errorf("unescape: %q", got)
	}
}
