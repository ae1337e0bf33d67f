package fs_test

import (
	"syscall"
	"testing"

	"bazil.org/fuse"
)

// The kernel names a flock owner by the address of its open file
// description, and sends the Release of a closed description on its own,
// after close(2) has returned: a process that closes and opens again can
// get the same owner id for its new description before the old one's
// Release arrives. The lock then passes to the new description (the old
// one is gone), and the old Release must not unlock it: a process that
// holds a flock another host can take makes read-modify-write increments
// under flock lose updates.
func TestFlockOwnerIDReusedBeforeRelease(t *testing.T) {
	w := newWorld(t, -1)
	w.seed(map[string]string{"c": "0"})
	A, B := w.A, w.B
	const pid = 10

	old := A.open("c", syscall.O_RDWR, 0)
	if err := old.flockAs(pid, fuse.LockWrite); err != nil {
		t.Fatalf("flock: %v", err)
	}
	old.write("1", 0)
	old.flush(0) // close(2); its Release comes later
	w.checkStored("c", "1")

	cur := A.open("c", syscall.O_RDWR, 0)
	cur.owner = old.flockOwner() // the freed description's address, reused
	if err := cur.flockAs(pid, fuse.LockWrite); err != nil {
		t.Fatalf("flock through the new description: %v", err)
	}
	old.release()

	other := B.open("c", syscall.O_RDONLY, 0)
	if err := other.flockAs(pid, fuse.LockWrite); errnoOf(err) != syscall.EWOULDBLOCK {
		t.Fatalf("host B took the lock that host A's new description holds (%s): the old description's release unlocked it", ename(errnoOf(err)))
	}
	cur.pread(0, 10, "1")
	cur.write("2", 0)
	cur.close(0)
	w.checkStored("c", "2")

	// cur's release unlocked it.
	if err := other.flockAs(pid, fuse.LockWrite); err != nil {
		t.Errorf("flock on host B once host A closed: %v", err)
	}
	other.close(0)
}
