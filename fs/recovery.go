package fs

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/b2cfs/b2cfs/cache"
	"github.com/b2cfs/b2cfs/core"
)

// keep moves the private copy d of object p, based on version base, to the
// recovery directory after its commit failed with cause, and describes it
// (bucket, group, object, keys, reason) beside it for "b2cfs recover".
func (f *FS) keep(d *os.File, p, base string, cause error) (string, error) {
	k := cache.Kept{Bucket: f.cfg.Bucket, Group: f.g.Name(), Name: p, Base: base, Reason: keepReason(cause)}
	// After a conflict the view is fresh, so the key the object has now
	// costs nothing; otherwise (B2 unreachable) it stays unknown.
	if errors.Is(cause, core.ErrConflict) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		v, err := f.g.View(ctx)
		cancel()
		if err == nil {
			k.Current, _ = v.Key(p)
			k.CurrentKnown = true
		}
	}
	path, err := f.c.KeepWith(d, k)
	if err != nil && path != "" {
		// The bytes are safe; "b2cfs recover" lists them without details.
		f.log.Warn("recovery file kept without its description", "path", path, "err", err.Error())
		return path, nil
	}
	return path, err
}

// keepReason says in a few words why a commit failed.
func keepReason(err error) string {
	switch {
	case errors.Is(err, core.ErrConflict):
		return "EBUSY: changed elsewhere since it was opened"
	case errors.Is(err, core.ErrGroupFull):
		return "ENOSPC: group index full"
	case errors.Is(err, core.ErrNotExist):
		return "ENOENT: removed elsewhere"
	case errors.Is(err, core.ErrLockLost):
		return "ENOLCK: the lock it was written under was lost: " + err.Error()
	case errors.Is(err, core.ErrUnknownOutcome):
		return "EIO: outcome unknown, the commit may have been applied: " + err.Error()
	default:
		return "EIO: " + err.Error()
	}
}
