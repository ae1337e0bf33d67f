package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/core"
)

// exitStatus is the status run() would exit with for err.
func exitStatus(err error) int {
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.Code
	}
	return 1
}

// holdLock takes lock name of group g on the emulator as another host and
// returns its release.
func holdLock(t *testing.T, g *core.Group, name string, mode core.LockMode) func() {
	t.Helper()
	m := g.Mutex(context.Background(), lockPrefix+name)
	if err := m.TryLock(context.Background(), mode); err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			if err := m.UnlockContext(context.Background()); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(release)
	return release
}

func TestLockRunsCommandWithExitStatus(t *testing.T) {
	e := newTestEnv(t)
	out, _, err := e.run(runLock, "", e.path("g"), "f.lock", "--", "sh", "-c", "echo in; exit 3")
	if exitStatus(err) != 3 || out != "in\n" {
		t.Fatalf("lock -- exit 3: status %d (%v), out %q", exitStatus(err), err, out)
	}
	if _, _, err := e.run(runLock, "", e.path("g"), "f.lock", "--", "true"); err != nil {
		t.Fatalf("lock -- true: %v", err)
	}
	if _, _, err := e.run(runLock, "", e.path("g"), "f.lock", "--", "/no/such/command"); exitStatus(err) != 127 {
		t.Fatalf("lock of a missing command: status %d (%v)", exitStatus(err), err)
	}
	// Released after each run: nothing is left held.
	if hs, err := e.group("g").Holders(context.Background(), lockPrefix+"f.lock"); err != nil || len(hs) != 0 {
		t.Fatalf("after the runs: holders %v, %v", hs, err)
	}
	if _, _, err := e.run(runLock, "", e.path("g"), "f.lock"); exitStatus(err) != exitUsage {
		t.Fatalf("lock without a command: status %d (%v)", exitStatus(err), err)
	}
}

func TestLockHeldWhileCommandRuns(t *testing.T) {
	e := newTestEnv(t)
	g := e.group("g")
	// The command checks from inside that the lock is held, through core.
	var during error
	c := cli{stdin: strings.NewReader(""), getenv: mapEnv(e.env), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		done <- runLock(ctx, c, []string{e.path("g"), "f.lock", "--", "sleep", "1.5"})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		hs, err := g.Holders(context.Background(), lockPrefix+"f.lock")
		if err != nil {
			t.Fatal(err)
		}
		if len(hs) == 1 {
			host, _ := os.Hostname()
			if hs[0].Host != host || hs[0].Mode != "exclusive" {
				t.Errorf("holder %+v", hs[0])
			}
			m := g.Mutex(context.Background(), lockPrefix+"f.lock")
			during = m.TryLock(context.Background(), core.Exclusive)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lock never held")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !errors.Is(during, core.ErrLockHeld) {
		t.Fatalf("another owner's TryLock while the command ran: %v", during)
	}
}

func TestLockBusy(t *testing.T) {
	e := newTestEnv(t)
	release := holdLock(t, e.group("g"), "f.lock", core.Exclusive)

	start := time.Now()
	_, _, err := e.run(runLock, "", "-n", e.path("g"), "f.lock", "--", "true")
	if exitStatus(err) != exitBusy || time.Since(start) > 2*time.Second {
		t.Fatalf("lock -n while held: status %d after %v (%v)", exitStatus(err), time.Since(start), err)
	}
	start = time.Now()
	_, _, err = e.run(runLock, "", "-w", "0.6", e.path("g"), "f.lock", "--", "true")
	if d := time.Since(start); exitStatus(err) != exitBusy || d < 600*time.Millisecond || d > 3*time.Second {
		t.Fatalf("lock -w 0.6 while held: status %d after %v (%v)", exitStatus(err), d, err)
	}
	_, _, err = e.run(runLock, "", "-n", "-s", e.path("g"), "f.lock", "--", "true")
	if exitStatus(err) != exitBusy {
		t.Fatalf("lock -n -s while held exclusively: status %d (%v)", exitStatus(err), err)
	}
	release()
	if _, _, err := e.run(runLock, "", "-n", e.path("g"), "f.lock", "--", "true"); err != nil {
		t.Fatalf("lock -n once released: %v", err)
	}
}

func TestLockShared(t *testing.T) {
	e := newTestEnv(t)
	holdLock(t, e.group("g"), "f.lock", core.Shared)
	if _, _, err := e.run(runLock, "", "-n", "-s", e.path("g"), "f.lock", "--", "true"); err != nil {
		t.Fatalf("shared beside shared: %v", err)
	}
	if _, _, err := e.run(runLock, "", "-n", e.path("g"), "f.lock", "--", "true"); exitStatus(err) != exitBusy {
		t.Fatalf("exclusive beside shared: status %d (%v)", exitStatus(err), err)
	}
}

func TestLockUnavailable(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the store's retries")
	}
	e := newTestEnv(t)
	e.srv.Close()
	_, _, err := e.run(runLock, "", "-n", e.path("g"), "f.lock", "--", "true")
	if exitStatus(err) != exitNoLock {
		t.Fatalf("lock with B2 unreachable: status %d (%v)", exitStatus(err), err)
	}
}

func TestLocksAndUnlock(t *testing.T) {
	e := newTestEnv(t)
	g := e.group("g")
	holdLock(t, g, "dir/a.lock", core.Shared)
	// A lock left by blazer's Mutex: content 0x01, never expires.
	if _, err := g.Commit(context.Background(), lockPrefix+"b.lock", "", bytes.NewReader([]byte{1}), 1); err != nil {
		t.Fatal(err)
	}
	out := e.must(runLocks, "", e.path("g"))
	host, _ := os.Hostname()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") ||
		!strings.HasPrefix(lines[1], "b.lock ") || !strings.Contains(lines[1], "never") ||
		!strings.HasPrefix(lines[2], "dir/a.lock ") || !strings.Contains(lines[2], "shared") || !strings.Contains(lines[2], host) {
		t.Fatalf("locks:\n%s", out)
	}

	if _, _, err := e.run(runUnlock, "", e.path("g"), "b.lock"); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("unlock without --force: %v", err)
	}
	if hs, _ := g.Holders(context.Background(), lockPrefix+"b.lock"); len(hs) != 1 {
		t.Fatal("unlock without --force changed the lock")
	}
	_, stderr, err := e.run(runUnlock, "", "--force", e.path("g"), "b.lock")
	if err != nil || !strings.Contains(stderr, "cleared lock b.lock: exclusive by ?") {
		t.Fatalf("unlock --force: %v\n%s", err, stderr)
	}
	_, stderr, err = e.run(runUnlock, "", "--force", e.path("g"), "dir/a.lock")
	if err != nil || !strings.Contains(stderr, "cleared lock dir/a.lock: shared by "+host) {
		t.Fatalf("unlock --force of a lease: %v\n%s", err, stderr)
	}
	if out := e.must(runLocks, "", e.path("g")); strings.Count(out, "\n") != 1 {
		t.Fatalf("locks after unlock --force:\n%s", out)
	}
	// A blazer-style lock blocks "b2cfs lock" until cleared.
	if _, err := g.Commit(context.Background(), lockPrefix+"c", "", bytes.NewReader([]byte{1}), 1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.run(runLock, "", "-n", e.path("g"), "c", "--", "true"); exitStatus(err) != exitBusy {
		t.Fatalf("lock -n on a blazer-style lock: status %d (%v)", exitStatus(err), err)
	}
	e.must(runUnlock, "", "--force", e.path("g"), "c")
	if _, _, err := e.run(runLock, "", "-n", e.path("g"), "c", "--", "true"); err != nil {
		t.Fatalf("lock -n after unlock --force: %v", err)
	}
}

func TestLockHelp(t *testing.T) {
	e := newTestEnv(t)
	for name, f := range map[string]func(context.Context, cli, []string) error{
		"lock": runLock, "locks": runLocks, "unlock": runUnlock,
	} {
		_, stderr, err := e.run(f, "", "--help")
		if exitStatus(err) != 0 && !strings.Contains(err.Error(), "help requested") || !strings.Contains(stderr, "usage: b2cfs "+name) {
			t.Errorf("%s --help: %v\n%s", name, err, stderr)
		}
		if _, ok := commands[name]; !ok {
			t.Errorf("%s is not registered", name)
		}
	}
}
