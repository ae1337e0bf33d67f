package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/b2emu"
	"github.com/b2cfs/b2cfs/core"
)

// TestTools runs everyday tools in a mount and checks the result through a
// second mount (another host) and through the store.
// TestTools runs real tools on groups of both on-bucket formats.
func TestTools(t *testing.T) {
	for _, format := range []string{core.FormatB2cfs, core.FormatBlazer} {
		t.Run(format, func(t *testing.T) { testTools(t, format) })
	}
}

func testTools(t *testing.T, format string) {
	e := newEnv(t, b2emu.Config{})
	a := e.mount("tools", "format="+format)
	b := e.mount("tools", "index_ttl=0")
	g := e.group("tools")

	sh(t, a.dir, `echo hello > f && echo more >> f`)
	if got, _ := object(t, g, "f"); got != "hello\nmore\n" {
		t.Fatalf("after echo > and >>: B2 has %q", got)
	}
	sh(t, a.dir, `sed -i s/hello/bye/ f`)
	if got := sh(t, b.dir, `cat f`); got != "bye\nmore\n" {
		t.Fatalf("after sed -i: host B reads %q", got)
	}
	sh(t, a.dir, `cp f g && mv g h && test ! -e g && cmp f h`)
	sh(t, a.dir, `mkdir -p a/b/c && echo deep > a/b/c/x && mkdir a/empty && mv a z && test ! -e a && test -d z/empty && cat z/b/c/x`)
	if got := sh(t, b.dir, `cat z/b/c/x && ls z`); got != "deep\nb\nempty\n" {
		t.Fatalf("host B after mv of a directory: %q", got)
	}
	if _, err := object(t, g, "a/b/c/x"); !errors.Is(err, core.ErrNotExist) {
		t.Fatalf("a/b/c/x still in B2 after mv a z: %v", err)
	}
	if out, err := shErr(a.dir, `rmdir z`); err == nil || !strings.Contains(out, "Directory not empty") {
		t.Fatalf("rmdir of a non-empty directory: %v %s", err, out)
	}
	sh(t, a.dir, `rmdir z/empty && rm z/b/c/x && rmdir z/b/c z/b z && test ! -e z`)
	sh(t, a.dir, `rm h && test ! -e h`)
	sh(t, a.dir, `touch t && test -f t && test ! -s t`)
	if got, err := object(t, g, "t"); err != nil || got != "" {
		t.Fatalf("touch: B2 has %q, %v", got, err)
	}
	sh(t, a.dir, `cp -p f p && cmp f p`)
	if got := sh(t, a.dir, `stat -c '%s %F' f`); got != "9 regular file\n" {
		t.Fatalf("stat f: %q", got)
	}
	ls := sh(t, b.dir, `ls -l`)
	for _, want := range []string{" f\n", " p\n", " t\n"} {
		if !strings.Contains(ls, want) {
			t.Fatalf("ls -l on host B lacks %q:\n%s", want, ls)
		}
	}
	if strings.Contains(sh(t, a.dir, `ls -a`), ".b2cfs") {
		t.Fatal(".b2cfs shown in ls -a")
	}
	if out, err := shErr(a.dir, `mkdir .b2cfs`); err == nil {
		t.Fatalf("mkdir .b2cfs succeeded: %s", out)
	}

	// tar x of a tree with several levels, then compare.
	src := t.TempDir()
	sh(t, src, `mkdir -p tree/d1/d2 tree/e && echo one > tree/d1/one && head -c 100000 /dev/urandom > tree/d1/d2/bin && echo x > tree/e/x && tar cf ../t.tar tree`)
	sh(t, a.dir, `tar xf `+filepath.Join(src, "..", "t.tar"))
	sh(t, a.dir, `diff -r `+filepath.Join(src, "tree")+` tree`)
	sh(t, b.dir, `diff -r `+filepath.Join(src, "tree")+` tree`)
}

// TestLargeFile writes a 300 MiB file through one mount and reads it back
// through another, with matching checksums.
func TestLargeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("large file in -short mode")
	}
	e := newEnv(t, b2emu.Config{})
	// The emulator runs in this process: under the race detector it
	// stores 300 MiB in parts so slowly that a part can wait longer than
	// the default 10 s without a byte moving, which B2 does not do.
	a := e.mount("large", "timeout=1m")
	b := e.mount("large", "timeout=1m")
	src := filepath.Join(t.TempDir(), "src")
	sh(t, "/", `head -c 300M /dev/urandom > `+src)
	want := sha(t, src)
	start := time.Now()
	sh(t, a.dir, `cp `+src+` big`)
	t.Logf("300 MiB written in %v", time.Since(start))
	start = time.Now()
	if got := sha(t, b.path("big")); got != want {
		t.Fatalf("host B reads sha256 %s, want %s", got, want)
	}
	t.Logf("300 MiB read in %v", time.Since(start))
	if got := sha(t, a.path("big")); got != want {
		t.Fatalf("host A reads sha256 %s, want %s", got, want)
	}
}

func sha(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestConflict: host A opens f for writing, host B commits f, A writes and
// closes. A's tool reports EBUSY, B's content stays, A's bytes are in A's
// recovery directory. Then a retry loop on A converges.
func TestConflict(t *testing.T) { eachFormat(t, b2emu.Config{}, testConflict) }

func testConflict(t *testing.T, e *env) {
	a := e.mount("conflict")
	b := e.mount("conflict")
	g := e.group("conflict")
	sh(t, a.dir, `echo base > f`)

	for _, tool := range []string{"dd", "cp"} {
		t.Run(tool, func(t *testing.T) {
			fifo := filepath.Join(t.TempDir(), "fifo")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			// Opened read-write so that the tool's open does not block.
			w, err := os.OpenFile(fifo, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			var cmd *exec.Cmd
			if tool == "dd" {
				cmd = exec.Command("dd", "if="+fifo, "of="+a.path("f"), "bs=64k", "iflag=fullblock", "count=1")
			} else {
				cmd = exec.Command("cp", fifo, a.path("f"))
			}
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitOpen(t, cmd.Process.Pid, a.path("f"))
			fromB := "B wins " + tool + "\n"
			sh(t, b.dir, `printf '`+fromB+`' > f`)
			fromA := strings.Repeat("A", 65536)
			w.Write([]byte(fromA))
			w.Close()
			err = cmd.Wait()
			if err == nil || !strings.Contains(out.String(), "Device or resource busy") {
				t.Fatalf("%s after a conflicting commit: %v, output %q; want EBUSY", tool, err, out.String())
			}
			if got, _ := object(t, g, "f"); got != fromB {
				t.Fatalf("B2 has %q, want B's %q", got, fromB)
			}
			if !slices.Contains(a.recovery(), fromA) {
				t.Fatalf("A's bytes not in the recovery directory %s", a.cacheDir)
			}
		})
	}

	// Host B commits a few more times while A retries until its cp goes
	// through.
	doneB := make(chan struct{})
	go func() {
		defer close(doneB)
		for i := range 5 {
			shErr(b.dir, fmt.Sprintf(`echo b%d > f`, i))
			time.Sleep(300 * time.Millisecond)
		}
	}()
	src := filepath.Join(t.TempDir(), "new")
	os.WriteFile(src, []byte("from A\n"), 0o644)
	out, err := shErr(a.dir, `for i in $(seq 100); do cp `+src+` f 2>/dev/null && exit 0; sleep 0.2; done; exit 1`)
	<-doneB
	if err != nil {
		t.Fatalf("retry loop did not converge: %v %s", err, out)
	}
	sh(t, a.dir, `until cp `+src+` f; do sleep 0.2; done`)
	if got, _ := object(t, g, "f"); got != "from A\n" {
		t.Fatalf("after the retry loop B2 has %q", got)
	}
}

// waitOpen waits until process pid has path open.
func waitOpen(t *testing.T, pid int, path string) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); l == path {
				return nil
			}
		}
		return fmt.Errorf("process %d has not opened %s", pid, path)
	})
}

// TestReaderKeepsVersion: a reader on A keeps reading the version it
// opened while B replaces and then deletes the file; the next open on A
// sees B's version once index_ttl has passed.
func TestReaderKeepsVersion(t *testing.T) { eachFormat(t, b2emu.Config{}, testReaderKeepsVersion) }

func testReaderKeepsVersion(t *testing.T, e *env) {
	a := e.mount("reader", "index_ttl=1")
	b := e.mount("reader")
	v1 := randomBytes(8 << 20)
	v2 := randomBytes(5 << 20)
	if err := os.WriteFile(b.path("f"), v1, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // A's view may be 1 s old

	r, err := os.Open(a.path("f"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b.path("f"), v2, 0o644); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if got := append(head, rest...); !bytes.Equal(got, v1) {
		t.Fatalf("reader on A saw %d bytes that are not the version it opened", len(got))
	}
	time.Sleep(1100 * time.Millisecond)
	got, err := os.ReadFile(a.path("f"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, v2) {
		t.Fatalf("after index_ttl, A reads %d bytes, not B's version (%d bytes)", len(got), len(v2))
	}

	// The same with a delete.
	r2, err := os.Open(a.path("f"))
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if err := os.Remove(b.path("f")); err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(r2)
	if err != nil || !bytes.Equal(got, v2) {
		t.Fatalf("reader of a deleted file: %d bytes, %v", len(got), err)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)})
	r.Read(b)
	return b
}

// TestErrors covers the errno values of bad input.
func TestErrors(t *testing.T) {
	e := newEnv(t, b2emu.Config{})
	a := e.mount("errors", "format=blazer")
	g := e.group("errors")

	t.Run("ENOSPC", func(t *testing.T) {
		var err error
		n := 0
		for ; n < 200; n++ {
			if err = os.WriteFile(a.path(fmt.Sprintf("file-%03d", n)), []byte("x"), 0o644); err != nil {
				break
			}
		}
		if errnoOf(err) != syscall.ENOSPC {
			t.Fatalf("after %d files: %v, want ENOSPC", n, err)
		}
		if n < 10 {
			t.Fatalf("index full after only %d files", n)
		}
		t.Logf("index full after %d files", n)
		before, _ := g.List(t.Context())
		if _, err := os.Stat(a.path(fmt.Sprintf("file-%03d", n))); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the file that did not fit exists: %v", err)
		}
		if err := os.WriteFile(a.path("file-000"), []byte("still writable"), 0o644); err != nil {
			t.Fatalf("existing file not writable in a full group: %v", err)
		}
		after, _ := g.List(t.Context())
		if !slices.Equal(before, after) {
			t.Fatalf("names changed: %v -> %v", before, after)
		}
		for i := range n {
			os.Remove(a.path(fmt.Sprintf("file-%03d", i)))
		}
	})
	t.Run("ENAMETOOLONG", func(t *testing.T) {
		err := os.WriteFile(a.path(strings.Repeat("n", 1000)), nil, 0o644)
		if errnoOf(err) != syscall.ENAMETOOLONG {
			t.Fatalf("got %v, want ENAMETOOLONG", err)
		}
	})
	t.Run("EINVAL", func(t *testing.T) {
		err := os.WriteFile(a.path("bad\x01name"), nil, 0o644)
		if errnoOf(err) != syscall.EINVAL {
			t.Fatalf("got %v, want EINVAL", err)
		}
	})
	t.Run("EROFS", func(t *testing.T) {
		sh(t, a.dir, `echo ro > r`)
		ro := e.mount("errors", "ro")
		if got := sh(t, ro.dir, `cat r`); got != "ro\n" {
			t.Fatalf("read-only mount reads %q", got)
		}
		for name, op := range map[string]func() error{
			"write":  func() error { return os.WriteFile(ro.path("r"), []byte("x"), 0o644) },
			"create": func() error { return os.WriteFile(ro.path("new"), []byte("x"), 0o644) },
			"remove": func() error { return os.Remove(ro.path("r")) },
			"mkdir":  func() error { return os.Mkdir(ro.path("d"), 0o755) },
		} {
			if err := op(); errnoOf(err) != syscall.EROFS {
				t.Errorf("%s on a read-only mount: %v, want EROFS", name, err)
			}
		}
	})
}

// TestUnavailable: with B2 stopped a close answers EIO and the bytes are
// kept; once B2 is back, writes work again.
func TestUnavailable(t *testing.T) { eachFormat(t, b2emu.Config{}, testUnavailable) }

func testUnavailable(t *testing.T, e *env) {
	a := e.mount("outage", "index_ttl=1h")
	g := e.group("outage")
	sh(t, a.dir, `echo before > f`)
	f, err := os.OpenFile(a.path("f"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	e.stop()
	if _, err := f.WriteString("during outage\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); errnoOf(err) != syscall.EIO {
		t.Fatalf("close with B2 down: %v, want EIO", err)
	}
	if !slices.Contains(a.recovery(), "during outage\n") {
		t.Fatal("bytes written during the outage are not in the recovery directory")
	}
	e.start()
	if got, _ := object(t, g, "f"); got != "before\n" {
		t.Fatalf("B2 has %q after the failed commit", got)
	}
	// The mount finds B2 back within a probe period (writes fail with EIO
	// until then, which the shell ignores).
	eventually(t, 30*time.Second, func() error {
		if err := os.WriteFile(a.path("f"), []byte("after\n"), 0o644); err != nil {
			return err
		}
		if got, _ := object(t, g, "f"); got != "after\n" {
			return fmt.Errorf("B2 has %q after the outage, want the new write", got)
		}
		return nil
	})
}

// TestUnmountDirty: SIGTERM while a file is open with unsaved changes
// commits them.
func TestUnmountDirty(t *testing.T) { eachFormat(t, b2emu.Config{}, testUnmountDirty) }

func testUnmountDirty(t *testing.T, e *env) {
	a := e.mount("unmount")
	g := e.group("unmount")
	f, err := os.Create(a.path("f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("unsaved\n"); err != nil {
		t.Fatal(err)
	}
	if err := a.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("b2cfs exit after SIGTERM: %v\n%s", err, a.log.String())
	}
	if got, err := object(t, g, "f"); got != "unsaved\n" {
		t.Fatalf("after unmount B2 has %q, %v; recovery: %q", got, err, a.recovery())
	}
	if isMounted(a.dir) {
		t.Fatal("still mounted after b2cfs exited")
	}

	// fusermount3 -u ends the process cleanly too.
	b := e.mount("unmount")
	if out, err := exec.Command("fusermount3", "-u", b.dir).CombinedOutput(); err != nil {
		t.Fatalf("fusermount3 -u: %v %s", err, out)
	}
	select {
	case <-b.exited:
		if b.exitErr != nil {
			t.Fatalf("exit after fusermount3 -u: %v", b.exitErr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("b2cfs still running 10s after fusermount3 -u")
	}
}

// TestMountFailures: each ends with one clear line and a non-zero exit.
func TestMountFailures(t *testing.T) {
	e := newEnv(t, b2emu.Config{})
	run := func(env []string, args ...string) (string, error) {
		cmd := exec.Command(binary, append([]string{"mount", "--endpoint", e.url}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	creds := []string{"B2_APPLICATION_KEY_ID=" + b2emu.DefaultKeyID, "B2_APPLICATION_KEY=" + b2emu.DefaultKey}
	dir := t.TempDir()
	busy := e.mount("fail")
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no bucket", creds, []string{"-o", "cache_dir=" + t.TempDir(), "nosuch/g", dir}, "no such bucket"},
		{"bad credentials", []string{"B2_APPLICATION_KEY_ID=x", "B2_APPLICATION_KEY=y"}, []string{"-o", "cache_dir=" + t.TempDir(), bucket + "/g", dir}, "open bucket"},
		{"no credentials", []string{"B2_APPLICATION_KEY_ID=", "B2_APPLICATION_KEY="}, []string{bucket + "/g", dir}, "B2_APPLICATION_KEY"},
		{"missing mountpoint", creds, []string{bucket + "/g", filepath.Join(dir, "nope")}, "no such file"},
		{"busy mountpoint", creds, []string{"-o", "cache_dir=" + t.TempDir(), bucket + "/g", busy.dir}, "busy"},
		{"bad option", creds, []string{"-o", "frobnicate", bucket + "/g", dir}, "unknown option"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := run(c.env, c.args...)
			if err == nil {
				t.Fatalf("exit 0, output %q", out)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 1 || !strings.Contains(strings.ToLower(lines[0]), strings.ToLower(c.want)) {
				t.Fatalf("want one line mentioning %q, got %q", c.want, out)
			}
		})
	}
}
