package integration

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/b2emu"
)

// TestFlockBusyWaitRelease: while host A holds flock -x f, flock -n on
// host B exits 1 at once, flock -w 2 exits 1 after about 2 s, and a waiting
// flock on B gets the lock within the poll interval after A releases.
func TestFlockBusyWaitRelease(t *testing.T) {
	requireFlock(t)
	e := newEnv(t, b2emu.Config{})
	a := e.mount("fl", "lease=3s")
	b := e.mount("fl", "lease=3s")
	sh(t, a.dir, `touch f`)

	ha := flockHolder(t, a.path("f"), "-x")
	ha.waitLocked(10 * time.Second)

	code, d, out := flockRun(t, "-n", b.path("f"), "true")
	if code != 1 || d > time.Second {
		t.Fatalf("flock -n on B while A holds: exit %d after %v (want 1 at once)\n%s", code, d, out)
	}
	code, d, out = flockRun(t, "-w", "2", b.path("f"), "true")
	if code != 1 || d < 1900*time.Millisecond || d > 3500*time.Millisecond {
		t.Fatalf("flock -w 2 on B while A holds: exit %d after %v (want 1 after about 2s)\n%s", code, d, out)
	}
	hb := flockHolder(t, b.path("f"))
	if hb.locked(2 * time.Second) {
		t.Fatal("B got the lock while A holds it")
	}
	released := time.Now()
	ha.release()
	hb.waitLocked(10 * time.Second)
	if d := hb.gotAt.Sub(released); d > 2*time.Second {
		t.Fatalf("B got the lock %v after A released (want within the poll interval, about 1s)", d)
	} else {
		t.Logf("B got the lock %v after A released", d)
	}
	hb.release()
}

// TestFlockDirectory: flock on a directory. Linux's FUSE does not forward
// flock or fcntl locks on directories to the file system (its directory
// file operations have no lock methods), so they stay host-local; the test
// says so instead of passing silently.
func TestFlockDirectory(t *testing.T) {
	requireFlock(t)
	e := newEnv(t, b2emu.Config{})
	a := e.mount("fld")
	b := e.mount("fld")
	sh(t, a.dir, `mkdir d`)
	hd := flockHolder(t, a.path("d"))
	hd.waitLocked(10 * time.Second)
	defer hd.release()
	if code, _, out := flockRun(t, "-n", a.path("d"), "true"); code != 1 {
		t.Fatalf("flock -n on directory d on the same host: exit %d\n%s", code, out)
	}
	// Linux does not pass flock on FUSE directories to the file system, so
	// across hosts they do not exclude each other (the README says so).
	if code, _, _ := flockRun(t, "-n", b.path("d"), "true"); code == 0 {
		t.Log("as documented, this kernel keeps flock on FUSE directories host-local")
	}
}

// TestFlockCounter: two mounts, two processes on each, 25 rounds each of a
// flock-protected read-modify-write of one file: no increment is lost.
func TestFlockCounter(t *testing.T) {
	requireFlock(t)
	e := newEnv(t, b2emu.Config{})
	mounts := []*mount{e.mount("cnt", "index_ttl=0.1"), e.mount("cnt", "index_ttl=0.1")}
	sh(t, mounts[0].dir, `echo 0 > c && touch c.lock`)
	const rounds = 25
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, m := range mounts {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				script := fmt.Sprintf(`for i in $(seq %d); do flock c.lock sh -c 'n=$(cat c); echo $((n+1)) > c'; done`, rounds)
				if out, err := shErr(m.dir, script); err != nil {
					errs <- fmt.Errorf("%s: %v\n%s", m.dir, err, out)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := object(t, e.group("cnt"), "c")
	if err != nil || strings.TrimSpace(got) != "100" {
		t.Fatalf("counter is %q (%v), want 100", got, err)
	}
	t.Logf("100 increments in %v", time.Since(start))
}

// TestFlockShared: shared holders on two mounts coexist; an exclusive
// flock waits for both.
func TestFlockShared(t *testing.T) {
	requireFlock(t)
	e := newEnv(t, b2emu.Config{})
	a := e.mount("sh")
	b := e.mount("sh")
	sh(t, a.dir, `touch f`)
	sa := flockHolder(t, a.path("f"), "-s")
	sa.waitLocked(10 * time.Second)
	sb := flockHolder(t, b.path("f"), "-s")
	sb.waitLocked(10 * time.Second)
	if code, _, out := flockRun(t, "-n", "-x", b.path("f"), "true"); code != 1 {
		t.Fatalf("flock -n -x beside two shared holders: exit %d\n%s", code, out)
	}
	x := flockHolder(t, a.path("f"), "-x")
	sa.release()
	if x.locked(2 * time.Second) {
		t.Fatal("exclusive lock granted while B still holds it shared")
	}
	sb.release()
	x.waitLocked(10 * time.Second)
	x.release()
}

// TestFlockCrash: when the holder's host dies (kill -9 of its b2cfs and
// flock), the other host gets the lock once the lease has expired, not
// before.
func TestFlockCrash(t *testing.T) {
	requireFlock(t)
	e := newEnv(t, b2emu.Config{})
	a := e.mount("crash", "lease=3s")
	b := e.mount("crash", "lease=3s")
	sh(t, a.dir, `touch f`)
	ha := flockHolder(t, a.path("f"))
	ha.waitLocked(10 * time.Second)
	time.Sleep(1500 * time.Millisecond) // let a renewal happen

	a.cmd.Process.Kill()
	<-a.exited
	syscall.Kill(-ha.cmd.Process.Pid, syscall.SIGKILL)
	hs, err := e.group("crash").Holders(context.Background(), lockName("f"))
	if err != nil || len(hs) != 1 {
		t.Fatalf("holders after the crash: %v, %v", hs, err)
	}
	expires := hs[0].Expires
	hb := flockHolder(t, b.path("f"))
	hb.waitLocked(20 * time.Second)
	if hb.gotAt.Before(expires) {
		t.Fatalf("B got the lock at %v, before the dead holder's lease expired at %v", hb.gotAt, expires)
	}
	if d := hb.gotAt.Sub(expires); d > 2*time.Second {
		t.Fatalf("B got the lock %v after the lease expired (want within the poll interval)", d)
	} else {
		t.Logf("B got the lock %v after the lease expired", d)
	}
	hb.release()
}

// TestFlockBlazerAndCLI: blazer's x/consistent Mutex, "b2cfs lock" and flock
// on a mount exclude each other on a blazer-format group.
func TestFlockBlazerAndCLI(t *testing.T) {
	requireFlock(t)
	e := newEnv(t, b2emu.Config{})
	a := e.mount("bz", "format=blazer")
	sh(t, a.dir, `touch f.lock`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bm := e.blazerGroup(ctx, "bz").Mutex(ctx, lockName("f.lock"))

	// blazer holds: flock and b2cfs lock are busy.
	bm.Lock()
	if code, _, out := flockRun(t, "-n", a.path("f.lock"), "true"); code != 1 {
		t.Fatalf("flock -n while blazer holds: exit %d\n%s", code, out)
	}
	if code := e.lockStatus("-n", bucket+"/bz", "f.lock", "--", "true"); code != 1 {
		t.Fatalf("b2cfs lock -n while blazer holds: exit %d", code)
	}
	bm.Unlock()

	// flock holds: b2cfs lock is busy and blazer waits.
	h := flockHolder(t, a.path("f.lock"))
	h.waitLocked(10 * time.Second)
	if code := e.lockStatus("-n", bucket+"/bz", "f.lock", "--", "true"); code != 1 {
		t.Fatalf("b2cfs lock -n while flock holds: exit %d", code)
	}
	got := make(chan struct{})
	go func() { bm.Lock(); close(got) }()
	select {
	case <-got:
		t.Fatal("blazer got the lock while flock holds it")
	case <-time.After(2500 * time.Millisecond):
	}
	h.release()
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("blazer did not get the lock after flock released it")
	}
	bm.Unlock()

	// b2cfs lock holds: flock is busy.
	l := e.lockHolder(bucket+"/bz", "f.lock")
	l.waitLocked(10 * time.Second)
	if code, _, out := flockRun(t, "-n", a.path("f.lock"), "true"); code != 1 {
		t.Fatalf("flock -n while b2cfs lock holds: exit %d\n%s", code, out)
	}
	l.release()
	if code, _, out := flockRun(t, "-n", a.path("f.lock"), "true"); code != 0 {
		t.Fatalf("flock -n after b2cfs lock ended: exit %d\n%s", code, out)
	}
}

// TestFlockUnavailable: with B2 unreachable flock fails with ENOLCK (flock(1)
// exits 71), never "busy"; once B2 is back, locking works again.
func TestFlockUnavailable(t *testing.T) {
	requireFlock(t)
	e := newEnv(t, b2emu.Config{})
	a := e.mount("down", "index_ttl=1m")
	sh(t, a.dir, `touch f && cat f`)
	e.stop()
	code, d, out := flockRun(t, "-n", a.path("f"), "true")
	if code != 71 {
		t.Fatalf("flock -n with B2 down: exit %d after %v (want 71, ENOLCK)\n%s", code, d, out)
	}
	t.Logf("ENOLCK after %v", d)
	e.start()
	// The mount finds B2 back within a probe period (about 2 s).
	eventually(t, 30*time.Second, func() error {
		if code, _, out := flockRun(t, "-n", a.path("f"), "true"); code != 0 {
			return fmt.Errorf("flock -n with B2 back: exit %d\n%s", code, out)
		}
		return nil
	})
}

// TestFlockInterrupt: a blocked flock killed by SIGINT returns promptly and
// leaves no lock behind.
func TestFlockInterrupt(t *testing.T) {
	requireFlock(t)
	e := newEnv(t, b2emu.Config{})
	a := e.mount("intr")
	b := e.mount("intr")
	sh(t, a.dir, `touch f`)
	ha := flockHolder(t, a.path("f"))
	ha.waitLocked(10 * time.Second)
	hb := flockHolder(t, b.path("f"))
	if hb.locked(1500 * time.Millisecond) {
		t.Fatal("B got the lock while A holds it")
	}
	start := time.Now()
	hb.cmd.Process.Signal(syscall.SIGINT)
	hb.wait()
	// A holds the lock until released below, so a wait the interrupt
	// did not end would not end at all: a generous bound tells the two
	// apart on a loaded machine.
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("blocked flock took %v to end after SIGINT", d)
	}
	ha.release()
	g := e.group("intr")
	eventually(t, 5*time.Second, func() error {
		hs, err := g.Holders(context.Background(), lockName("f"))
		if err == nil && len(hs) != 0 {
			err = fmt.Errorf("holders left: %+v", hs)
		}
		return err
	})
	if out := e.toolOutput("locks", bucket+"/intr"); strings.Count(out, "\n") != 1 {
		t.Fatalf("b2cfs locks after the interrupt:\n%s", out)
	}
}

// TestFcntlLock: whole-file POSIX locks are the same distributed lock as
// flock; a byte-range lock held elsewhere answers EAGAIN.
func TestFcntlLock(t *testing.T) {
	e := newEnv(t, b2emu.Config{})
	a := e.mount("posix")
	b := e.mount("posix", "index_ttl=0")
	sh(t, a.dir, `touch f`)
	fa, err := os.OpenFile(a.path("f"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	whole := &syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	if err := syscall.FcntlFlock(fa.Fd(), syscall.F_SETLK, whole); err != nil {
		t.Fatalf("F_SETLK whole file: %v", err)
	}
	fb, err := os.OpenFile(b.path("f"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	if err := syscall.FcntlFlock(fb.Fd(), syscall.F_SETLK, whole); errnoOf(err) != syscall.EAGAIN && errnoOf(err) != syscall.EACCES {
		t.Fatalf("F_SETLK on B while A holds: %v", err)
	}
	q := &syscall.Flock_t{Type: syscall.F_WRLCK}
	if err := syscall.FcntlFlock(fb.Fd(), syscall.F_GETLK, q); err != nil || q.Type != syscall.F_WRLCK {
		t.Fatalf("F_GETLK on B while A holds: %v, type %d", err, q.Type)
	}
	if code, _, out := flockRun(t, "-n", b.path("f"), "true"); code != 1 {
		t.Fatalf("flock -n on B while A holds an fcntl lock: exit %d\n%s", code, out)
	}
	part := &syscall.Flock_t{Type: syscall.F_WRLCK, Start: 0, Len: 10}
	if err := syscall.FcntlFlock(fb.Fd(), syscall.F_SETLK, part); errnoOf(err) != syscall.EAGAIN && errnoOf(err) != syscall.EACCES {
		t.Fatalf("byte-range F_SETLK on B while A holds: %v, want EAGAIN", err)
	}
	fa.Close() // any close by the owner releases POSIX locks
	eventually(t, 5*time.Second, func() error {
		return syscall.FcntlFlock(fb.Fd(), syscall.F_SETLK, whole)
	})
	unl := &syscall.Flock_t{Type: syscall.F_UNLCK}
	if err := syscall.FcntlFlock(fb.Fd(), syscall.F_SETLK, unl); err != nil {
		t.Fatal(err)
	}
	if code, _, out := flockRun(t, "-n", a.path("f"), "true"); code != 0 {
		t.Fatalf("flock -n after F_UNLCK: exit %d\n%s", code, out)
	}
}

// TestFlockReleasedAtUnmount: unmounting releases the locks held through
// the mount at once, without waiting for their leases to expire.
func TestFlockReleasedAtUnmount(t *testing.T) {
	requireFlock(t)
	e := newEnv(t, b2emu.Config{})
	a := e.mount("um", "lease=1m")
	b := e.mount("um")
	sh(t, a.dir, `touch f`)
	ha := flockHolder(t, a.path("f"))
	ha.waitLocked(10 * time.Second)
	hb := flockHolder(t, b.path("f"))
	if hb.locked(1500 * time.Millisecond) {
		t.Fatal("B got the lock while A holds it")
	}
	go a.stop(syscall.SIGTERM)
	hb.waitLocked(15 * time.Second)
	hb.release()
}
