package fs

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"bazil.org/fuse"

	"github.com/b2cfs/b2cfs/core"
)

// lockPrefix starts the names of lock objects: the lock of file P is the
// group object lockPrefix+P, the same object "b2cfs lock GROUP P" takes.
const lockPrefix = core.ReservedPrefix + "locks/"

// lockName returns the name of the lock object of path.
func lockName(path string) string { return lockPrefix + path }

// releaseTimeout bounds releasing a lock when its handle closes or the file
// system shuts down; a lock not released in time is abandoned (its lease
// runs out).
const releaseTimeout = 30 * time.Second

// offsetMax is the end of a whole-file POSIX lock (the kernel's OFFSET_MAX).
const offsetMax = math.MaxInt64

// lockID names the lock one kernel lock owner has on one node. flock owners
// are open file descriptions; POSIX owners are processes (or, for OFD locks,
// open file descriptions) and may hold locks on several files.
type lockID struct {
	n     node
	owner fuse.LockOwner
	flock bool
}

// ownerLock is the distributed lock of one lockID: one core.Mutex, hence one
// holder in the lock record. Lock changes of one owner are serialised by mu.
type ownerLock struct {
	// mu is held across each lock change, B2 calls and waits included.
	// LOCK ORDERING: ownerLock.mu comes before FS.mu and is never held with
	// openFile.mu or file.mu.
	mu     sync.Mutex
	gone   bool               // GUARDED_BY(mu); dropped from FS.locks: look it up again
	name   string             // GUARDED_BY(mu); the lock object m locks
	m      *core.Mutex        // GUARDED_BY(mu); nil until first locked
	cancel context.CancelFunc // GUARDED_BY(mu); ends m's lease renewal
	held   bool               // GUARDED_BY(mu)
	mode   core.LockMode      // GUARDED_BY(mu); while held

	via *openFile // GUARDED_BY(FS.mu); the handle it was last taken through
}

// lockFor returns the ownerLock of id with its mu held, recording that it
// is taken through h.
func (f *FS) lockFor(id lockID, h *openFile) *ownerLock {
	for {
		f.mu.Lock()
		l := f.locks[id]
		if l == nil {
			l = &ownerLock{}
			f.locks[id] = l
		}
		l.via = h
		f.mu.Unlock()
		l.mu.Lock()
		if !l.gone {
			return l
		}
		l.mu.Unlock()
	}
}

// setLock gives the owner of id lock mode on the object path, waiting while
// it is held elsewhere when wait is set. A held lock in another mode is
// converted by unlocking and locking again, as flock(2) allows; POSIX
// conversions, which must be atomic, are refused with ENOLCK. An
// interrupted wait returns context.Canceled and leaves no lock behind.
func (f *FS) setLock(ctx context.Context, id lockID, h *openFile, path string, mode core.LockMode, wait bool) error {
	if f.life.Err() != nil {
		return errShutdown
	}
	// Waits also end when the file system shuts down.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(f.life, cancel)()

	l := f.lockFor(id, h)
	defer l.mu.Unlock()
	if l.held && l.mode == mode {
		return nil
	}
	if l.held {
		if !id.flock {
			return errConversion
		}
		if err := l.unlock(ctx); err != nil {
			return err
		}
	}
	name := lockName(path)
	if l.m == nil || l.name != name {
		if l.cancel != nil {
			l.cancel()
		}
		mctx, mcancel := context.WithCancel(context.Background())
		l.m, l.cancel, l.name = f.g.Mutex(mctx, name), mcancel, name
	}
	// core polls a held lock with backoff (at most about a second apart)
	// and, when ctx ends, returns at once and undoes in the background an
	// attempt that still succeeds, so no lock is left behind.
	var err error
	if wait {
		err = l.m.LockContext(ctx, mode)
	} else {
		err = l.m.TryLock(ctx, mode)
	}
	switch {
	case err == nil:
		l.held, l.mode = true, mode
		f.lockTaken(ctx, path)
		return nil
	case ctx.Err() != nil:
		return interrupted(ctx, f.life)
	}
	return err
}

// interrupted is the error of a wait that ctx ended: context.Canceled
// itself (bazil answers EINTR only for that value), or errShutdown when the
// file system is shutting down.
func interrupted(ctx, life context.Context) error {
	if life.Err() != nil {
		return errShutdown
	}
	return context.Canceled
}

var (
	errShutdown    = errors.New("file system shutting down")
	errConversion  = errors.New("converting a held POSIX lock to another mode is not supported")
	errRangeLock   = errors.New("only whole-file POSIX locks are supported")
	errLockAbandon = errors.New("lock abandoned")
)

// unlock releases l if held. When B2 cannot be told, renewal stops, so the
// lease runs out within the lease TTL, and the error is returned. An
// interrupt does not stop a release: this host forgets the lock either way,
// and B2 would otherwise keep it from other hosts until the lease ran out.
// LOCKS_REQUIRED(l.mu)
func (l *ownerLock) unlock(ctx context.Context) error {
	if !l.held {
		return nil
	}
	l.held = false
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	err := l.m.UnlockContext(ctx)
	if err != nil {
		l.cancel()
		l.m, l.cancel = nil, nil
		return errors.Join(errLockAbandon, err)
	}
	return nil
}

// clearLock releases the lock of id, if any, and keeps its Mutex for the
// owner's next lock.
func (f *FS) clearLock(ctx context.Context, id lockID) error {
	f.mu.Lock()
	l := f.locks[id]
	f.mu.Unlock()
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.unlock(ctx)
}

// dropLocks releases and forgets the locks match selects. Failures are
// logged: the lease of a lock that could not be released runs out.
// It returns how many locks were held.
func (f *FS) dropLocks(ctx context.Context, op string, match func(lockID, *ownerLock) bool) int {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	f.mu.Lock()
	var ls []*ownerLock
	for id, l := range f.locks {
		if match(id, l) {
			ls = append(ls, l)
			delete(f.locks, id)
		}
	}
	f.mu.Unlock()
	n := 0
	for _, l := range ls {
		l.mu.Lock()
		l.gone = true
		if l.held {
			n++
		}
		f.logUnlock(op, l, l.unlock(ctx))
		if l.cancel != nil {
			l.cancel()
		}
		l.mu.Unlock()
	}
	return n
}

// logUnlock logs a release that B2 did not confirm.
// LOCKS_REQUIRED(l.mu)
func (f *FS) logUnlock(op string, l *ownerLock, err error) {
	if err != nil {
		f.log.Warn("lock not released; it is freed when its lease expires", "op", op, "lock", l.name, "err", err)
	}
}

// releaseLocks drops the locks that end with handle h: the flock of the
// open file description when the kernel says so, and POSIX locks taken
// through h (Linux OFD locks are not released otherwise).
func (f *FS) releaseLocks(ctx context.Context, h *openFile, req *fuse.ReleaseRequest) {
	flockOwner, isFlock := req.LockOwner, req.ReleaseFlags&fuse.ReleaseFlockUnlock != 0
	f.dropLocks(ctx, "release", func(id lockID, l *ownerLock) bool {
		if id.n != node(h.n) {
			return false
		}
		if id.flock {
			return isFlock && id.owner == flockOwner
		}
		return l.via == h
	})
}

// flushLocks drops the POSIX locks owner holds on n: POSIX locks end with
// any close by their owner.
func (f *FS) flushLocks(ctx context.Context, n node, owner fuse.LockOwner) {
	f.dropLocks(ctx, "close", func(id lockID, _ *ownerLock) bool {
		return id.n == n && id.owner == owner && !id.flock
	})
}

// lockRequest decodes what a lock request asks for.
func lockRequest(req *fuse.LockRequest) (id lockID, mode core.LockMode, err error) {
	id = lockID{owner: req.LockOwner, flock: req.LockFlags&fuse.LockFlock != 0}
	mode = core.Exclusive
	if req.Lock.Type == fuse.LockRead {
		mode = core.Shared
	}
	if !id.flock && (req.Lock.Start != 0 || req.Lock.End != offsetMax) {
		err = errRangeLock
	}
	return id, mode, err
}

func lockOp(flock bool) string {
	if flock {
		return "flock"
	}
	return "fcntl lock"
}

// Lock takes the distributed lock of the file without waiting: EWOULDBLOCK
// when it is held elsewhere.
func (h *openFile) Lock(ctx context.Context, req *fuse.LockRequest) error {
	return h.lock(ctx, req, false)
}

// LockWait takes the distributed lock of the file, polling while it is held
// elsewhere until it is free or the caller is interrupted (EINTR).
func (h *openFile) LockWait(ctx context.Context, req *fuse.LockWaitRequest) error {
	return h.lock(ctx, (*fuse.LockRequest)(req), true)
}

func (h *openFile) lock(ctx context.Context, req *fuse.LockRequest, wait bool) error {
	f := h.n.fs
	p := h.n.path()
	id, mode, err := lockRequest(req)
	if err == nil {
		id.n = h.n
		err = f.setLock(ctx, id, h, p, mode, wait)
	}
	return f.errno(lockOp(id.flock), p, err)
}

// Unlock releases the file's distributed lock held by the request's owner.
// A partial POSIX unlock of a held lock is refused with ENOLCK.
func (h *openFile) Unlock(ctx context.Context, req *fuse.UnlockRequest) error {
	f := h.n.fs
	p := h.n.path()
	id, _, err := lockRequest((*fuse.LockRequest)(req))
	id.n = h.n
	if err != nil {
		if f.heldBy(id) {
			return f.errno("unlock", p, err)
		}
		return nil // nothing held: a partial unlock changes nothing
	}
	return f.errno("unlock", p, f.clearLock(ctx, id))
}

// heldBy reports whether id holds its lock.
func (f *FS) heldBy(id lockID) bool {
	f.mu.Lock()
	l := f.locks[id]
	f.mu.Unlock()
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held
}

// QueryLock answers F_GETLK: a conflicting holder anywhere is reported as a
// whole-file lock of an unknown process (pid 0).
func (h *openFile) QueryLock(ctx context.Context, req *fuse.QueryLockRequest, resp *fuse.QueryLockResponse) error {
	f := h.n.fs
	p := h.n.path()
	id := lockID{n: h.n, owner: req.LockOwner, flock: req.LockFlags&fuse.LockFlock != 0}
	f.mu.Lock()
	l := f.locks[id]
	f.mu.Unlock()
	own := 0 // holders that are this owner
	if l != nil {
		l.mu.Lock()
		if l.held {
			own = 1
			if l.mode == core.Exclusive || req.Lock.Type == fuse.LockRead {
				own = -1 // nothing else can hold it incompatibly
			}
		}
		l.mu.Unlock()
	}
	if own < 0 {
		return nil
	}
	hs, err := f.g.Holders(ctx, lockName(p))
	if err != nil {
		return f.errno("fcntl getlk", p, err)
	}
	now := time.Now()
	var live []core.Holder
	for _, x := range hs {
		if x.Expires.IsZero() || now.Before(x.Expires) {
			live = append(live, x)
		}
	}
	if len(live) <= own {
		return nil
	}
	t := fuse.LockRead
	for _, x := range live {
		if x.Mode != core.Shared.String() {
			t = fuse.LockWrite
		}
	}
	if t == fuse.LockRead && req.Lock.Type == fuse.LockRead {
		return nil
	}
	resp.Lock = fuse.FileLock{Start: 0, End: offsetMax, Type: t, PID: 0}
	return nil
}

// shutdownLocks ends waits for locks and releases every lock held through
// the mount. It returns how many were held.
func (f *FS) shutdownLocks(ctx context.Context) int {
	f.stop()
	return f.dropLocks(ctx, "unmount", func(lockID, *ownerLock) bool { return true })
}

// isLockOp reports whether op names a lock operation, whose errors map
// differently (see errno).
func isLockOp(op string) bool {
	switch op {
	case "flock", "fcntl lock", "unlock", "fcntl getlk":
		return true
	}
	return false
}
