package integration

import (
	"errors"
	"fmt"
	"github.com/b2cfs/b2cfs/core/storetest"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/b2emu"
)

// Metadata through the kernel, with the tools that judge a file system by
// it: rsync, tar, df, tail -F, and the system calls b2cfs refuses.

// metaTree makes the tree the metadata tests copy: files, symbolic links
// (relative, absolute, dangling), a mode-700 directory, a mode-0000 file,
// a setuid file and old times on everything.
func metaTree(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	sh(t, filepath.Dir(src), `
mkdir -p src/sub/deep src/private && cd src
echo a > a.txt && echo b > sub/b.txt && head -c 200000 /dev/urandom > sub/deep/big.bin
ln -s a.txt link && ln -s ../a.txt sub/uplink && ln -s /nonexistent/target dangling
: > zero && chmod 000 zero
chmod 700 private && echo s > private/secret && chmod 600 private/secret
chmod 4755 sub/b.txt
find . -exec touch -h -d '2002-03-04 05:06:07.123456789' {} +
touch -d '1999-12-31 23:59:59' a.txt
touch -h -d '2001-01-01 10:00' link
`)
	return src
}

func TestRsyncTwiceTransfersNothing(t *testing.T) {
	requireTool(t, "rsync", "rsync")
	e := newEnv(t, b2emu.Config{})
	a := e.mount("meta", "format=b2cfs")
	src := metaTree(t)
	sh(t, a.dir, "mkdir dst && rsync -a "+src+"/ dst/")
	// Again at once, on the host that wrote it: nothing to send.
	if out := sh(t, a.dir, "rsync -a --itemize-changes "+src+"/ dst/"); out != "" {
		t.Errorf("the second rsync -a on the writing host changed things:\n%s", out)
	}
	// And on another host, once it sees the tree.
	b := e.mount("meta")
	eventually(t, 30*time.Second, func() error {
		if out := sh(t, b.dir, "rsync -a --itemize-changes "+src+"/ dst/"); out != "" {
			return fmt.Errorf("rsync -a on another host changes things:\n%s", out)
		}
		return nil
	})
}

func TestTarRoundTripWithLinks(t *testing.T) {
	e := newEnv(t, b2emu.Config{})
	a := e.mount("tar", "format=b2cfs")
	src := metaTree(t)
	work := t.TempDir()
	sh(t, src, "tar cf "+work+"/src.tar .")
	// sync commits the modes and times tar set last now rather than
	// within 0.1 s, so that the other host reads a tree that no longer
	// changes (tar c checks that).
	sh(t, a.dir, "mkdir t && cd t && tar xpf "+work+"/src.tar && sync .")
	b := e.mount("tar")
	list := `tar tvf %s --full-time --numeric-owner | awk '{$2=""; print}' | sort -k5`
	want := sh(t, work, fmt.Sprintf(list, "src.tar"))
	eventually(t, 30*time.Second, func() error {
		if out, err := shErr(b.dir, "cd t && tar cf "+work+"/back.tar ."); err != nil {
			return fmt.Errorf("tar c through another host: %v\n%s", err, out)
		}
		if got := sh(t, work, fmt.Sprintf(list, "back.tar")); got != want {
			return fmt.Errorf("tar listing through another host differs:\n%s\nwant\n%s", got, want)
		}
		return nil
	})
	sh(t, work, "mkdir x1 x2 && tar xpf src.tar -C x1 && tar xpf back.tar -C x2 && diff -r --no-dereference x1 x2")
}

func TestUnsupportedKindsErrno(t *testing.T) {
	e := newEnv(t, b2emu.Config{})
	m := e.mount("kinds", "format=b2cfs")
	if err := os.WriteFile(m.path("f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var bindErr error
	if l, err := net.Listen("unix", m.path("sock")); err == nil {
		l.Close()
	} else {
		bindErr = err
	}
	for what, err := range map[string]error{
		"link":        os.Link(m.path("f"), m.path("hard")),
		"mkfifo":      syscall.Mkfifo(m.path("fifo"), 0o644),
		"mknod c":     syscall.Mknod(m.path("dev"), syscall.S_IFCHR|0o600, 1<<8|3),
		"socket bind": bindErr,
		"chown":       os.Chown(m.path("f"), 12345, 12345),
	} {
		if !errors.Is(err, syscall.EPERM) {
			t.Errorf("%s: %v, want EPERM", what, err)
		}
	}
	if err := os.Chown(m.path("f"), os.Getuid(), os.Getgid()); err != nil {
		t.Errorf("chown to the mount's owner: %v", err)
	}
	// sync DIR: fsync of a directory descriptor.
	if err := os.Mkdir(m.path("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(m.path("d"), 0o711); err != nil {
		t.Fatal(err)
	}
	d, err := os.Open(m.path("d"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Errorf("fsync of a directory: %v", err)
	}
	d.Close()
	sh(t, m.dir, "sync d")
	g := e.group("kinds")
	if snap, err := storetest.Entries(t.Context(), g); err != nil {
		t.Fatal(err)
	} else if mode, _ := snap[".b2cfs/dirs/d"].FileMode(); mode.Perm() != 0o711 {
		t.Errorf("after fsync of the directory, its stored mode is %v, want 0711", mode)
	}
	long := strings.Repeat("n", 256)
	if err := os.WriteFile(m.path(long), nil, 0o644); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("create with a 256-byte name: %v, want ENAMETOOLONG", err)
	}
	if _, err := os.Stat(m.path(long)); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("stat of a 256-byte name: %v, want ENAMETOOLONG", err)
	}
	if err := os.WriteFile(m.path(long[:255]), nil, 0o644); err != nil {
		t.Errorf("create with a 255-byte name: %v", err)
	}
	// A path longer than a B2 file name: kept in the b2cfs format, where
	// names live in the index (the blazer format's limit: core's
	// TestLongNames).
	deep := strings.Repeat(strings.Repeat("p", 200)+"/", 5) + "f"
	if err := os.MkdirAll(filepath.Dir(m.path(deep)), 0o755); err != nil {
		t.Errorf("a 1,000-byte path in the b2cfs format: %v", err)
	} else if err := os.WriteFile(m.path(deep), []byte("deep"), 0o644); err != nil {
		t.Errorf("a file at a 1,000-byte path in the b2cfs format: %v", err)
	}
	bl := e.mount("kinds-blazer", "format=blazer")
	if err := os.Symlink("target", bl.path("link")); !errors.Is(err, syscall.EPERM) {
		t.Errorf("symlink in the blazer format: %v, want EPERM", err)
	}
	if strings.Contains(m.log.String(), "errno=EIO") {
		t.Errorf("a refusal was logged as EIO:\n%s", m.log.String())
	}
}

func TestDfCountsTheIndex(t *testing.T) {
	e := newEnv(t, b2emu.Config{})
	m := e.mount("df", "format=b2cfs")
	var bytes int64
	for i := 0; i < 40; i++ {
		data := make([]byte, 50_000+i*10_000)
		bytes += int64(len(data))
		if err := os.MkdirAll(m.path(fmt.Sprintf("d%d", i%4)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(m.path(fmt.Sprintf("d%d/f%d", i%4, i)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	field := func(args string) int64 {
		out := strings.Fields(sh(t, m.dir, "df "+args+" . | tail -1"))
		n, err := strconv.ParseInt(out[0], 10, 64)
		if err != nil {
			t.Fatalf("df %s: %v", args, out)
		}
		return n
	}
	used, iused := field("-B1 --output=used"), field("--output=iused")
	t.Logf("df: %d bytes used for %d stored (%+.2f%%); df -i: %d used for 40 files, 4 directories and the root",
		used, bytes, 100*float64(used-bytes)/float64(bytes), iused)
	if used < bytes || float64(used) > 1.01*float64(bytes) {
		t.Errorf("df: %d bytes used, want %d within 1%%", used, bytes)
	}
	if iused != 45 {
		t.Errorf("df -i: %d inodes used, want 45", iused)
	}
	if avail := field("-B1 --output=avail"); avail <= 0 {
		t.Errorf("df: %d bytes available", avail)
	}
}

func TestTailFollowsAnotherHost(t *testing.T) {
	e := newEnv(t, b2emu.Config{})
	a := e.mount("tail", "format=b2cfs", "index_ttl=1s")
	b := e.mount("tail", "index_ttl=1s")
	if err := os.WriteFile(a.path("log"), []byte("first\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error { _, err := os.Stat(b.path("log")); return err })
	out := &lineBuffer{}
	tail := exec.Command("tail", "-n", "+1", "-F", b.path("log"))
	tail.Stdout, tail.Stderr = out, out
	if err := tail.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tail.Process.Kill(); tail.Wait() })
	eventually(t, 30*time.Second, func() error { return out.has("first", 1) })
	for i := 1; i <= 3; i++ {
		line := fmt.Sprintf("append %d", i)
		f, err := os.OpenFile(a.path("log"), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := f.WriteString(line + "\n"); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Minute, func() error { return out.has(line, 1) })
		t.Logf("tail -F on host B printed host A's append %d %v after its close", i, time.Since(start).Round(10*time.Millisecond))
	}
	// Each line once: B's descriptor read on, it did not start over.
	if err := out.has("first", 1); err != nil {
		t.Error(err)
	}
}

// lineBuffer collects a command's output. Safe for concurrent use.
type lineBuffer struct{ syncBuffer }

// has fails unless s occurs exactly n times.
func (b *lineBuffer) has(s string, n int) error {
	if got := strings.Count(b.String(), s); got != n {
		return fmt.Errorf("%q occurs %d times, want %d, in:\n%s", s, got, n, b.String())
	}
	return nil
}

// TestFreshnessCost: a mount with nothing open makes no B2 calls of its
// own; with a file open it reloads the view once per index_ttl, so that
// the kernel hears of other hosts' changes. Both rates are logged.
func TestFreshnessCost(t *testing.T) {
	e := newEnv(t, b2emu.Config{})
	// A new object replaces nothing, so no deletion of a superseded
	// version falls into the windows.
	if _, err := e.group("fresh").Commit(t.Context(), "f", "", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	m := e.mount("fresh", "index_ttl=1s")
	if _, err := os.ReadDir(m.dir); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // let the kernel's requests of the listing end
	const window = 5 * time.Second
	e.emu.ResetStats()
	time.Sleep(window)
	idle := e.calls()
	t.Logf("idle mount, index_ttl=1s: %d B2 calls in %v %v", totalCalls(idle), window, idle)
	if totalCalls(idle) != 0 {
		t.Errorf("an idle mount made B2 calls: %v", idle)
	}
	f, err := os.Open(m.path("f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.ReadAll(f); err != nil { // the open's download, before the window
		t.Fatal(err)
	}
	e.emu.ResetStats()
	time.Sleep(window)
	open := e.calls()
	t.Logf("a file open, index_ttl=1s: %d B2 calls in %v (%.0f per minute) %v", totalCalls(open), window,
		float64(totalCalls(open))*float64(time.Minute)/float64(window), open)
	if open["b2_list_buckets"] == 0 {
		t.Errorf("with a file open the view was never reloaded: %v", open)
	}
	if open["b2_list_buckets"] != totalCalls(open) {
		t.Errorf("reloading an unchanged view cost more than b2_list_buckets: %v", open)
	}
}
