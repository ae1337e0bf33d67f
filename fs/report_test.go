package fs_test

import (
	"fmt"
	"syscall"
	"testing"

	"bazil.org/fuse"
	fusefs "bazil.org/fuse/fs"

	"github.com/b2cfs/b2cfs/core"
)

// TestFailedCommitReportedToTheWriter: a child that inherited a writer's
// descriptor closes its copy at exec (a Flush from another lock owner)
// while B2 is unreachable. That flush commits the writer's changes and
// fails; the writer's own close must still fail (EIO), or it would take
// bytes that are only in the recovery directory for stored.
func TestFailedCommitReportedToTheWriter(t *testing.T) {
	w := newWorld(t, -1)
	w.A.put("f", "before")
	f := w.A.open("f", syscall.O_WRONLY, 0)
	f.pwrite(0, "after!", 0)
	w.store.SetFault(func(op string) error {
		if op == "UpdateBucketInfo" || op == "Upload" {
			return fmt.Errorf("%w: injected outage", core.ErrUnavailable)
		}
		return nil
	})
	child := &fuse.FlushRequest{Handle: f.id, LockOwner: w.A.owner + 1}
	err := w.A.call("flush", func() error { return f.handle.(fusefs.HandleFlusher).Flush(w.ctx, child) })
	if errnoOf(err) != syscall.EIO {
		t.Fatalf("the child's close with B2 down: %v, want EIO", err)
	}
	f.close(syscall.EIO) // the writer's close
	w.store.SetFault(nil)
	w.checkStored("f", "before")
	g := w.A.open("f", syscall.O_WRONLY, 0)
	g.pwrite(0, "again!", 0)
	g.close(0) // reported once: a later close is not failed by it
	w.checkStored("f", "again!")
}
