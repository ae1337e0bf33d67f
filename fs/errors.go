package fs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"syscall"

	"github.com/b2cfs/b2cfs/core"
)

var errnoNames = map[syscall.Errno]string{
	syscall.ENOENT:       "ENOENT",
	syscall.EEXIST:       "EEXIST",
	syscall.EBUSY:        "EBUSY",
	syscall.ENOSPC:       "ENOSPC",
	syscall.EINVAL:       "EINVAL",
	syscall.ENAMETOOLONG: "ENAMETOOLONG",
	syscall.EROFS:        "EROFS",
	syscall.EIO:          "EIO",
	syscall.EINTR:        "EINTR",
	syscall.EISDIR:       "EISDIR",
	syscall.ENOTDIR:      "ENOTDIR",
	syscall.ENOTEMPTY:    "ENOTEMPTY",
	syscall.EPERM:        "EPERM",
	syscall.EAGAIN:       "EWOULDBLOCK",
	syscall.ENOLCK:       "ENOLCK",
	syscall.EFBIG:        "EFBIG",
	syscall.EACCES:       "EACCES",
}

// errno maps err to what the kernel gets and logs the failed operation
// once. It returns nil for nil, context.Canceled itself (bazil answers EINTR
// only for that exact value), and otherwise a bare syscall.Errno, because
// bazil does not unwrap errors to find one.
//
// EINTR promises that nothing changed: core returns the request's
// cancellation only when that is so (once an update is sent it runs to its
// outcome). An error that says the outcome is unknown (core.ErrUnknownOutcome:
// B2 may have applied the change and could not be read back) is EIO even if
// the request was interrupted as well.
//
// Errors from core: ErrNotExist is ENOENT, ErrConflict EBUSY, ErrLockLost
// (a change fenced by a lock that was lost, logged as LOCK LOST) ENOLCK,
// as NFS's lost locks but without the EIO, ErrGroupFull ENOSPC, ErrBadName
// EINVAL, ErrNotSupported EPERM, ErrUnavailable and anything unknown EIO. Code
// in this package returns a syscall.Errno (possibly wrapped) for its own
// refusals (EROFS, EEXIST, ENAMETOOLONG, ...).
//
// Lock operations (isLockOp) differ: ErrLockHeld is EWOULDBLOCK (logged
// at debug level: being busy is an answer, not a failure), and every other
// failure to reach a verdict, B2 unreachable included, is ENOLCK, so that a
// lock never looks busy or broken (EIO) when it could not be checked.
func (f *FS) errno(op, path string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) && !errors.Is(err, core.ErrUnknownOutcome) {
		f.log.Info("operation interrupted", "op", op, "path", path)
		return context.Canceled
	}
	var e syscall.Errno
	switch {
	case isLockOp(op) && errors.Is(err, core.ErrLockHeld):
		f.log.Debug("lock busy", "op", op, "path", "/"+path, "err", err.Error())
		return syscall.EWOULDBLOCK
	case isLockOp(op):
		e = syscall.ENOLCK
	case errors.As(err, &e):
	case errors.Is(err, core.ErrLockLost):
		// The writer's lock lapsed or was taken over: its change is
		// refused (a commit's bytes are kept in the recovery directory).
		f.log.Error("LOCK LOST: change refused", "op", op, "path", "/"+path, "errno", "ENOLCK", "err", err.Error())
		return syscall.ENOLCK
	case errors.Is(err, core.ErrNotExist):
		e = syscall.ENOENT
	case errors.Is(err, core.ErrConflict):
		e = syscall.EBUSY
	case errors.Is(err, core.ErrGroupFull):
		e = syscall.ENOSPC
	case errors.Is(err, core.ErrBadName):
		e = syscall.EINVAL
	case errors.Is(err, core.ErrNotSupported):
		e = syscall.EPERM
	default:
		e = syscall.EIO
	}
	level := slog.LevelWarn
	if e == syscall.ENOENT && op == "lookup" {
		level = slog.LevelDebug // shells and tools probe for names all the time
	}
	name, ok := errnoNames[e]
	if !ok {
		name = e.Error()
	}
	f.log.Log(context.Background(), level, "operation failed", "op", op, "path", "/"+path, "errno", name, "err", err.Error())
	return e
}

// nameMax is the longest name of a directory entry, as statfs reports it.
const nameMax = 255

// checkName fails with ENAMETOOLONG or EINVAL (wrapping core.ErrBadName)
// when path, whose last component is name, cannot be stored: name longer
// than nameMax bytes, or the whole path longer than the group's format
// allows (core.Group.MaxName: a B2 file name in the blazer format, PATH_MAX
// in the b2cfs format).
func (f *FS) checkName(path, name string) error {
	if len(name) > nameMax {
		return fmt.Errorf("%w: a name is %d bytes, at most %d", syscall.ENAMETOOLONG, len(name), nameMax)
	}
	if max := f.g.MaxName(); len(path) > max {
		return fmt.Errorf("%w: the path is %d bytes, at most %d fit in this group's format", syscall.ENAMETOOLONG, len(path), max)
	}
	return core.CheckName(path)
}
