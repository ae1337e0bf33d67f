package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// demo is one running "b2cfs demo" process.
type demo struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
}

// startDemo runs "b2cfs demo dir" with the cache directory cache and no
// B2 account, and waits until it has mounted.
func startDemo(t *testing.T, cache, dir string) *demo {
	t.Helper()
	d := &demo{out: &syncBuffer{}, exited: make(chan struct{})}
	d.cmd = exec.Command(binary, "demo", dir)
	d.cmd.Env = append(withoutB2(os.Environ()), "XDG_CACHE_HOME="+cache)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() { d.stop(t) })
	eventually(t, 30*time.Second, func() error {
		if strings.Contains(d.out.String(), "mounted ") && isMounted(dir) {
			return nil
		}
		select {
		case <-d.exited:
			t.Fatalf("demo exited:\n%s", d.out.String())
		default:
		}
		return fmt.Errorf("demo not mounted:\n%s", d.out.String())
	})
	return d
}

// stop interrupts the demo, as Ctrl-C does, and waits for it to end.
func (d *demo) stop(t *testing.T) {
	select {
	case <-d.exited:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		t.Errorf("demo still running 30 s after SIGINT:\n%s", d.out.String())
	}
}

// withoutB2 drops B2 settings from env: the demo then uses its emulator.
func withoutB2(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "B2_") && !strings.HasPrefix(kv, "B2CFS_") && !strings.HasPrefix(kv, "XDG_CACHE_HOME=") {
			out = append(out, kv)
		}
	}
	return out
}

// TestDemoSecondHost runs the demo as a newcomer would, then the second
// mount exactly as the demo prints it: the two see each other's files.
// After a restart of the demo (Ctrl-C, then again) the emulator is back on
// the same endpoint and the second mount works again.
func TestDemoSecondHost(t *testing.T) {
	requireFUSE(t)
	base := t.TempDir()
	cache, dir := filepath.Join(base, "cache"), filepath.Join(base, "b2cfs-demo")
	d := startDemo(t, cache, dir)
	printed := d.out.String()
	export := regexp.MustCompile(`(?m)^\s*(export B2CFS_ENDPOINT=.*)$`).FindStringSubmatch(printed)
	mountCmd := regexp.MustCompile(`(?m)^\s*(mkdir -p \S+ && \S+ mount .*)$`).FindStringSubmatch(printed)
	if export == nil || mountCmd == nil {
		t.Fatalf("the demo does not print the export and second-mount commands:\n%s", printed)
	}
	second := dir + "-2"
	if !strings.Contains(mountCmd[1], second) {
		t.Fatalf("the second mount is not on %s: %s", second, mountCmd[1])
	}
	host2 := exec.Command("bash", "-c", export[1]+"\n"+mountCmd[1])
	host2.Env = append(withoutB2(os.Environ()), "XDG_CACHE_HOME="+cache)
	log2 := &syncBuffer{}
	host2.Stdout, host2.Stderr = log2, log2
	if err := host2.Start(); err != nil {
		t.Fatal(err)
	}
	done2 := make(chan struct{})
	go func() { host2.Wait(); close(done2) }()
	t.Cleanup(func() {
		exec.Command("fusermount3", "-u", "-z", second).Run()
		select {
		case <-done2:
		case <-time.After(10 * time.Second):
			host2.Process.Kill()
		}
	})
	eventually(t, 30*time.Second, func() error {
		select {
		case <-done2:
			t.Fatalf("the second mount, started as the demo prints it, exited:\n%s", log2.String())
		default:
		}
		if !isMounted(second) {
			return fmt.Errorf("second mount not up:\n%s", log2.String())
		}
		return nil
	})
	sh(t, dir, `echo from-first > greeting`)
	eventually(t, 30*time.Second, func() error {
		b, err := os.ReadFile(filepath.Join(second, "greeting"))
		if err != nil || string(b) != "from-first\n" {
			return fmt.Errorf("second mount reads %q, %v", b, err)
		}
		return nil
	})

	d.stop(t)
	if !strings.Contains(d.out.String(), "fail with EIO until") {
		t.Errorf("Ctrl-C on the demo does not say that the other mounts lose the emulator:\n%s", d.out.String())
	}
	d2 := startDemo(t, cache, dir)
	endpoint := regexp.MustCompile(`using the built-in B2 emulator at (\S+),`)
	first, again := endpoint.FindStringSubmatch(printed), endpoint.FindStringSubmatch(d2.out.String())
	if first == nil || again == nil || first[1] != again[1] {
		t.Fatalf("the emulator's endpoint changed across a restart of the demo: %v, then %v", first, again)
	}
	eventually(t, 30*time.Second, func() error {
		return os.WriteFile(filepath.Join(second, "after-restart"), []byte("ok\n"), 0o644)
	})
	eventually(t, 30*time.Second, func() error {
		_, err := shErr(dir, `test "$(cat after-restart)" = ok && test "$(cat greeting)" = from-first`)
		return err
	})
}
