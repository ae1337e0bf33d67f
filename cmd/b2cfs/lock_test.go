package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/storetest"
	"github.com/b2cfs/b2cfs/namespace"
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
	m := g.Mutex(context.Background(), namespace.LockName(name))
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
	out, _, err := e.run("lock", "", e.path("g"), "f.lock", "--", "sh", "-c", "echo in; exit 3")
	if exitStatus(err) != 3 || out != "in\n" {
		t.Fatalf("lock -- exit 3: status %d (%v), out %q", exitStatus(err), err, out)
	}
	if _, _, err := e.run("lock", "", e.path("g"), "f.lock", "--", "true"); err != nil {
		t.Fatalf("lock -- true: %v", err)
	}
	if _, _, err := e.run("lock", "", e.path("g"), "f.lock", "--", "/no/such/command"); exitStatus(err) != 127 {
		t.Fatalf("lock of a missing command: status %d (%v)", exitStatus(err), err)
	}
	// Released after each run: nothing is left held.
	if hs, err := e.group("g").Holders(context.Background(), namespace.LockName("f.lock")); err != nil || len(hs) != 0 {
		t.Fatalf("after the runs: holders %v, %v", hs, err)
	}
	if _, _, err := e.run("lock", "", e.path("g"), "f.lock"); exitStatus(err) != exitUsage {
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
		done <- execute(ctx, c, []string{"lock", e.path("g"), "f.lock", "--", "sleep", "1.5"})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		hs, err := g.Holders(context.Background(), namespace.LockName("f.lock"))
		if err != nil {
			t.Fatal(err)
		}
		if len(hs) == 1 {
			host, _ := os.Hostname()
			if hs[0].Host != host || hs[0].Mode != "exclusive" {
				t.Errorf("holder %+v", hs[0])
			}
			m := g.Mutex(context.Background(), namespace.LockName("f.lock"))
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

	// The lock is held to the end of the test, so a wait that ignored
	// -n or -w would not end: the upper bounds are generous, for a
	// loaded machine.
	start := time.Now()
	_, _, err := e.run("lock", "", "-n", e.path("g"), "f.lock", "--", "true")
	if exitStatus(err) != exitBusy || time.Since(start) > 10*time.Second {
		t.Fatalf("lock -n while held: status %d after %v (%v)", exitStatus(err), time.Since(start), err)
	}
	start = time.Now()
	_, _, err = e.run("lock", "", "-w", "0.6", e.path("g"), "f.lock", "--", "true")
	if d := time.Since(start); exitStatus(err) != exitBusy || d < 600*time.Millisecond || d > 10*time.Second {
		t.Fatalf("lock -w 0.6 while held: status %d after %v (%v)", exitStatus(err), d, err)
	}
	_, _, err = e.run("lock", "", "-n", "-s", e.path("g"), "f.lock", "--", "true")
	if exitStatus(err) != exitBusy {
		t.Fatalf("lock -n -s while held exclusively: status %d (%v)", exitStatus(err), err)
	}
	release()
	if _, _, err := e.run("lock", "", "-n", e.path("g"), "f.lock", "--", "true"); err != nil {
		t.Fatalf("lock -n once released: %v", err)
	}
}

func TestLockShared(t *testing.T) {
	e := newTestEnv(t)
	holdLock(t, e.group("g"), "f.lock", core.Shared)
	if _, _, err := e.run("lock", "", "-n", "-s", e.path("g"), "f.lock", "--", "true"); err != nil {
		t.Fatalf("shared beside shared: %v", err)
	}
	if _, _, err := e.run("lock", "", "-n", e.path("g"), "f.lock", "--", "true"); exitStatus(err) != exitBusy {
		t.Fatalf("exclusive beside shared: status %d (%v)", exitStatus(err), err)
	}
}

func TestLockUnavailable(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the store's retries")
	}
	e := newTestEnv(t)
	e.srv.Close()
	_, _, err := e.run("lock", "", "-n", e.path("g"), "f.lock", "--", "true")
	if exitStatus(err) != exitNoLock {
		t.Fatalf("lock with B2 unreachable: status %d (%v)", exitStatus(err), err)
	}
}

func TestLocksAndUnlock(t *testing.T) {
	e := newTestEnv(t)
	g := e.group("g")
	holdLock(t, g, "dir/a.lock", core.Shared)
	// A lock left by blazer's Mutex: content 0x01, never expires.
	if _, err := g.Commit(context.Background(), namespace.LockName("b.lock"), "", bytes.NewReader([]byte{1}), 1); err != nil {
		t.Fatal(err)
	}
	out := e.must("locks", "", e.path("g"))
	host, _ := os.Hostname()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") ||
		!strings.HasPrefix(lines[1], "b.lock ") || !strings.Contains(lines[1], "never") ||
		!strings.HasPrefix(lines[2], "dir/a.lock ") || !strings.Contains(lines[2], "shared") || !strings.Contains(lines[2], host) {
		t.Fatalf("locks:\n%s", out)
	}

	if _, _, err := e.run("unlock", "", e.path("g"), "b.lock"); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("unlock without --force: %v", err)
	}
	if hs, _ := g.Holders(context.Background(), namespace.LockName("b.lock")); len(hs) != 1 {
		t.Fatal("unlock without --force changed the lock")
	}
	_, stderr, err := e.run("unlock", "", "--force", e.path("g"), "b.lock")
	if err != nil || !strings.Contains(stderr, "cleared lock b.lock: exclusive by ?") {
		t.Fatalf("unlock --force: %v\n%s", err, stderr)
	}
	_, stderr, err = e.run("unlock", "", "--force", e.path("g"), "dir/a.lock")
	if err != nil || !strings.Contains(stderr, "cleared lock dir/a.lock: shared by "+host) {
		t.Fatalf("unlock --force of a lease: %v\n%s", err, stderr)
	}
	if out := e.must("locks", "", e.path("g")); strings.Count(out, "\n") != 1 {
		t.Fatalf("locks after unlock --force:\n%s", out)
	}
	// A blazer-style lock blocks "b2cfs lock" until cleared.
	if _, err := g.Commit(context.Background(), namespace.LockName("c"), "", bytes.NewReader([]byte{1}), 1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.run("lock", "", "-n", e.path("g"), "c", "--", "true"); exitStatus(err) != exitBusy {
		t.Fatalf("lock -n on a blazer-style lock: status %d (%v)", exitStatus(err), err)
	}
	e.must("unlock", "", "--force", e.path("g"), "c")
	if _, _, err := e.run("lock", "", "-n", e.path("g"), "c", "--", "true"); err != nil {
		t.Fatalf("lock -n after unlock --force: %v", err)
	}
}

func TestLockHelp(t *testing.T) {
	e := newTestEnv(t)
	for _, name := range []string{"lock", "locks", "unlock"} {
		stdout, _, err := e.run(name, "", "--help")
		if exitStatus(err) != 0 || !strings.Contains(stdout, "Usage:\n  b2cfs "+name) {
			t.Errorf("%s --help: %v\n%s", name, err, stdout)
		}
	}
}

func TestLockLostGraceFlag(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		grace time.Duration // -1: a usage error
	}{
		{nil, defaultLostGrace},
		{[]string{"--lease", "6s"}, 2 * time.Second}, // a third of a short lease
		{[]string{"--lost-grace", "10s"}, 10 * time.Second},
		{[]string{"--lost-grace", "0"}, 0},
		{[]string{"--lease", "4s", "--lost-grace", "1s"}, time.Second},
		{[]string{"--lease", "4s", "--lost-grace", "2s"}, -1}, // not less than half the lease
		{[]string{"--lost-grace", "15s"}, -1},
		{[]string{"--lost-grace", "-1s"}, -1},
	} {
		cmd := newLockCmd(cli{}, &connFlags{})
		if err := cmd.ParseFlags(tc.args); err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		lf, err := parseLockArgs(cmd.Flags(), []string{"my-bucket/g", "f.lock", "true"})
		switch {
		case tc.grace < 0 && err == nil:
			t.Errorf("%q: grace %v, want an error", tc.args, lf.grace)
		case tc.grace >= 0 && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.grace >= 0 && lf.grace != tc.grace:
			t.Errorf("%q: grace %v, want %v", tc.args, lf.grace, tc.grace)
		}
	}
	e := newTestEnv(t)
	if _, _, err := e.run("lock", "", "--lease", "4s", "--lost-grace", "3s", e.path("g"), "f.lock", "--", "true"); exitStatus(err) != exitUsage {
		t.Fatalf("lock with --lost-grace past half the lease: status %d (%v)", exitStatus(err), err)
	}
}

// shPids is a script for "sh -c SCRIPT sh DIR" that runs pre, writes its
// pid to DIR/sh.pid, starts a child "sleep 1000" whose pid it writes to
// DIR/sleep.pid, and then runs body.
func shPids(pre, body string) string {
	return `cd "$1" || exit 99; ` + pre + `; sleep 1000 & echo $! > sleep.pid.tmp; mv sleep.pid.tmp sleep.pid; echo $$ > sh.pid.tmp; mv sh.pid.tmp sh.pid; ` + body
}

// waitPids returns the pids shPids's script wrote to dir, waiting up to
// a minute for them; exited is polled meanwhile and fails the test if
// closed.
func waitPids(t *testing.T, dir string, exited <-chan struct{}) (sh, sleep int) {
	t.Helper()
	read := func(name string) int {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return 0
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return pid
	}
	for deadline := time.Now().Add(time.Minute); ; {
		if sh, sleep = read("sh.pid"), read("sleep.pid"); sh > 0 && sleep > 0 {
			t.Cleanup(func() {
				// Whatever happened, leave nothing behind.
				for _, p := range []int{sh, sleep} {
					if !processGone(p) {
						syscall.Kill(p, syscall.SIGKILL)
					}
				}
			})
			return sh, sleep
		}
		select {
		case <-exited:
			t.Fatal("b2cfs lock exited before its command started")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the command never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processGone reports whether pid has exited (a zombie counts as exited).
func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == syscall.ESRCH
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] == "Z"
}

// logProcs logs the state of pids and of their parents (the guard).
func logProcs(t *testing.T, pids ...int) {
	t.Helper()
	seen := map[int]bool{}
	for len(pids) > 0 {
		p := pids[0]
		pids = pids[1:]
		if seen[p] || p <= 1 {
			continue
		}
		seen[p] = true
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		stack, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stack", p))
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		t.Logf("process %d: %q\n%s\nkernel stack:\n%s", p, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}), status, stack)
		for _, l := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(l, "PPid:"); ok {
				if pp, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
					pids = append(pids, pp)
				}
			}
		}
	}
}

// waitGone waits up to limit for every pid to exit and returns how long
// that took; it fails the test if one is still there.
func waitGone(t *testing.T, limit time.Duration, pids ...int) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		left := 0
		for _, p := range pids {
			if !processGone(p) {
				left = p
			}
		}
		if left == 0 {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			logProcs(t, pids...)
			t.Fatalf("process %d still running %v later", left, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLockMainProcess is not a test: it is the b2cfs binary (its main) for
// tests that must kill "b2cfs lock", started by startMain with the command
// line after "--".
func TestLockMainProcess(t *testing.T) {
	if os.Getenv("B2CFS_TEST_MAIN") != "1" {
		t.Skip("the b2cfs process of TestLockDeadTool")
	}
	os.Args = append([]string{"b2cfs"}, flag.Args()...)
	main()
}

// startMain starts "b2cfs ARGS..." as a process of its own, on the test
// emulator, logging to DIR/b2cfs.log; exited is closed when it exits.
func startMain(t *testing.T, e *testEnv, dir string, args ...string) (cmd *exec.Cmd, exited chan struct{}) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "b2cfs.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd = exec.Command(exe, append([]string{"-test.run=^TestLockMainProcess$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "B2CFS_TEST_MAIN=1")
	for k, v := range e.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = log, log // files: no copying that orphans hold up
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited = make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("b2cfs log:\n%s", b)
		}
	})
	return cmd, exited
}

// TestLockDeadTool: kill -9 of "b2cfs lock" ends its command, and the
// processes the command started, within --lost-grace: the command and its
// child ignore SIGTERM here, so they end by the SIGKILL that follows, long
// before the lease of the dead tool lets another host take the lock.
func TestLockDeadTool(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()
	tool, exited := startMain(t, e, dir, "lock", "--lost-grace", "2s", e.path("g"), "f.lock", "--",
		"sh", "-c", shPids(`trap "" TERM`, `wait`), "sh", dir)
	sh, sleep := waitPids(t, dir, exited)
	if processGone(sh) || processGone(sleep) {
		t.Fatal("the command is not running")
	}
	if err := tool.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	// The documented bound is the grace, 2 s; the limit is generous for
	// a loaded machine.
	d := waitGone(t, 30*time.Second, sh, sleep)
	t.Logf("command and child gone %v after kill -9 of b2cfs lock", d)
	// Gone while the dead tool's lease still holds the lock: nobody else
	// could have run beside them.
	ctx := context.Background()
	m := e.group("g").Mutex(ctx, namespace.LockName("f.lock"))
	if err := m.TryLock(ctx, core.Exclusive); !errors.Is(err, core.ErrLockHeld) {
		t.Fatalf("lock after the command was gone: %v, want it still held by the dead tool's lease", err)
	}
}

// TestLockSignalPassedOn: SIGTERM to "b2cfs lock" reaches the command as
// SIGTERM; b2cfs lock waits for it, releases the lock and exits with its
// status.
func TestLockSignalPassedOn(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()
	tool, exited := startMain(t, e, dir, "lock", e.path("g"), "f.lock", "--",
		"sh", "-c", shPids(`trap "echo TERM >> got; exit 7" TERM`, `wait`), "sh", dir)
	sh, sleep := waitPids(t, dir, exited)
	if err := tool.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("b2cfs lock still running 30 s after SIGTERM")
	}
	if code := tool.ProcessState.ExitCode(); code != 7 {
		t.Fatalf("exit status %d, want the command's 7", code)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "got")); !strings.Contains(string(got), "TERM") {
		t.Errorf("the command's SIGTERM trap did not run (got %q)", got)
	}
	waitGone(t, 30*time.Second, sh)
	if hs, err := e.group("g").Holders(context.Background(), namespace.LockName("f.lock")); err != nil || len(hs) != 0 {
		t.Fatalf("after b2cfs lock exited: holders %v, %v", hs, err)
	}
	syscall.Kill(sleep, syscall.SIGKILL) // left in the background, as by any command
}

// syncBuffer is a bytes.Buffer for concurrent writers and readers.
type syncBuffer = storetest.SyncBuffer

// TestLockLost: when the lock is lost while the command runs, the command
// and its child get SIGTERM, and SIGKILL after --lost-grace if still
// there; b2cfs lock exits with the killed command's status.
func TestLockLost(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pre    string // shPids's
		body   string
		status int
		term   bool // the command reports SIGTERM in DIR/got
	}{
		{"dies of SIGTERM", `:`, `wait`, 128 + int(syscall.SIGTERM), false},
		// The child ignores SIGTERM too, and the loop forks all along.
		{"ignores SIGTERM", `trap "" TERM`, `trap "echo TERM >> got" TERM; while :; do sleep 0.1; done`, 128 + int(syscall.SIGKILL), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			dir := t.TempDir()
			// Core logs its LOCK LOST from its renewal, which nothing
			// waits for: stderr is read under a lock.
			stderr := &syncBuffer{}
			c := cli{stdin: strings.NewReader(""), getenv: mapEnv(e.env), stdout: io.Discard, stderr: stderr}
			res := make(chan error, 1)
			exited := make(chan struct{})
			go func() {
				defer close(exited)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				res <- execute(ctx, c, []string{"lock", "--lease", "3s", "--lost-grace", "1s", e.path("g"), "f.lock", "--",
					"sh", "-c", shPids(tc.pre, tc.body), "sh", dir})
			}()
			sh, sleep := waitPids(t, dir, exited)
			// Another host clears the lock: the holder's next renewal (a
			// third of the lease later) finds it gone.
			if _, err := e.group("g").ForceUnlock(context.Background(), namespace.LockName("f.lock")); err != nil {
				t.Fatal(err)
			}
			var err error
			select {
			case err = <-res:
			case <-time.After(45 * time.Second):
				t.Fatal("b2cfs lock still running 45 s after its lock was cleared")
			}
			if out := stderr.String(); exitStatus(err) != tc.status || !strings.Contains(out, "LOCK LOST") {
				t.Fatalf("status %d (%v), want %d and LOCK LOST; stderr:\n%s", exitStatus(err), err, tc.status, out)
			}
			got, _ := os.ReadFile(filepath.Join(dir, "got"))
			if tc.term && !strings.Contains(string(got), "TERM") {
				t.Errorf("the command's SIGTERM trap did not run (got %q)", got)
			}
			waitGone(t, 30*time.Second, sh, sleep)
		})
	}
}
