package fs_test

import (
	"math"
	"os"
	"strings"
	"syscall"
	"testing"

	"bazil.org/fuse"
	fusefs "bazil.org/fuse/fs"

	"github.com/b2cfs/b2cfs/namespace"
)

// flockAs is flock(LOCK_EX|LOCK_NB) (or LOCK_SH) on f by process pid.
func (f *ofd) flockAs(pid int, mode fuse.LockType) error {
	lk, ok := f.handle.(fusefs.HandleLocker)
	if !ok {
		f.h.w.t.Fatalf("handle %T does not implement HandleLocker", f.handle)
	}
	f.flocked = true
	return f.h.call("flock", func() error {
		return lk.Lock(f.h.w.ctx, &fuse.LockRequest{
			Header: fuse.Header{Pid: uint32(pid)}, Handle: f.id, LockOwner: f.flockOwner(),
			Lock: fuse.FileLock{Type: mode, End: math.MaxInt64, PID: int32(pid)}, LockFlags: fuse.LockFlock,
		})
	})
}

// "flock job.lock CMD": the lock is held by this test's parent process,
// and this process (its child) writes. Its commits are fenced by the lock:
// they land while it is held, and once the lock is lost (forced open from
// another host) they are refused with ENOLCK, the bytes are kept for
// recovery, LOCK LOST is logged, and flock on the descriptor reports the
// loss once. Processes outside the lock holder's family are not fenced.
func TestCommitFencedByAncestorsLock(t *testing.T) {
	w := newWorld(t, -1)
	w.seed(map[string]string{"data": "v0", "job.lock": ""})
	A := w.A
	lockFD := A.open("job.lock", syscall.O_RDONLY, 0)
	if err := lockFD.flockAs(os.Getppid(), fuse.LockWrite); err != nil {
		t.Fatalf("flock: %v", err)
	}
	A.pid = uint32(os.Getpid())
	A.put("data", "under the lock")
	w.checkStored("data", "under the lock")

	if _, err := w.B.g.ForceUnlock(w.ctx, namespace.LockName("job.lock")); err != nil {
		t.Fatal(err)
	}
	f := A.open("data", syscall.O_WRONLY|syscall.O_TRUNC, 0)
	f.write("stale", 0)
	f.close(syscall.ENOLCK)
	w.checkStored("data", "under the lock")
	if A.kept() != 1 {
		t.Errorf("refused commit kept %d changes for recovery, want 1", A.kept())
	}
	if !strings.Contains(w.log.String(), "LOCK LOST") {
		t.Error("no LOCK LOST in the log")
	}
	if err := lockFD.flockAs(os.Getppid(), fuse.LockWrite); errnoOf(err) != syscall.ENOLCK {
		t.Errorf("flock on the descriptor of a lost lock: %s, want ENOLCK", ename(errnoOf(err)))
	}
	if err := lockFD.flockAs(os.Getppid(), fuse.LockWrite); err != nil {
		t.Errorf("flock after the loss was reported: %v", err)
	}
	A.put("data", "locked again")
	w.checkStored("data", "locked again")

	// Another host takes the lock over; a process that is no descendant
	// of the holder (pid 1) commits unfenced, as without locks.
	if _, err := w.B.g.ForceUnlock(w.ctx, namespace.LockName("job.lock")); err != nil {
		t.Fatal(err)
	}
	A.pid = 1
	A.put("data", "unrelated")
	w.checkStored("data", "unrelated")

	// The file's state is shared by its descriptors: a change made under
	// a lock stays fenced by it when another process commits it.
	if err := lockFD.flockAs(os.Getppid(), fuse.LockWrite); err != nil {
		t.Fatalf("flock: %v", err)
	}
	A.pid = uint32(os.Getpid())
	under := A.open("data", syscall.O_WRONLY|syscall.O_TRUNC, 0)
	under.write("written under the lock", 0)
	if _, err := w.B.g.ForceUnlock(w.ctx, namespace.LockName("job.lock")); err != nil {
		t.Fatal(err)
	}
	A.pid = 1
	other := A.open("data", syscall.O_WRONLY, 0)
	other.close(syscall.ENOLCK)
	w.checkStored("data", "unrelated")
	under.close(0) // nothing left to commit
	lockFD.close(0)
}
