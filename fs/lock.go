package fs

import (
	"context"
	"errors"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"weak"

	"bazil.org/fuse"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/namespace"
)

// releaseTimeout bounds releasing a lock when its handle closes or the file
// system shuts down; a lock not released in time is abandoned (its lease
// runs out).
const releaseTimeout = 30 * time.Second

// offsetMax is the end of a POSIX lock to the end of the file (the kernel's
// OFFSET_MAX).
const offsetMax = math.MaxInt64

// lockID names the lock one kernel lock owner has on one file: the file's
// lock object, named by the path the file had when the owner first locked
// it, and the owner. flock owners are open file descriptions; POSIX owners
// are processes (or, for OFD locks, open file descriptions; the kernel does
// not tell the two apart) and may hold locks on several files. A lock is
// not tied to a file node: a node may be replaced while its file is locked
// (another host committed a new version).
type lockID struct {
	name  string
	owner fuse.LockOwner
	flock bool
}

// ownerLock is the distributed lock of one lockID: one core.Mutex, hence one
// holder in the lock record, whose mode is the strongest the owner needs.
// Lock changes of one owner are serialised by mu.
type ownerLock struct {
	name string // the lock object; never changes

	// mu is held across each lock change, B2 calls and waits included.
	// LOCK ORDERING: ownerLock.mu comes before FS.mu and is never held
	// with file.mu: lockTaken is called after it is released.
	mu     sync.Mutex
	gone   bool               // GUARDED_BY(mu); dropped from FS.locks: look it up again
	m      *core.Mutex        // GUARDED_BY(mu); nil until first locked
	cancel context.CancelFunc // GUARDED_BY(mu); ends m's lease renewal
	held   bool               // GUARDED_BY(mu)
	mode   core.LockMode      // GUARDED_BY(mu); while held: the mode m holds
	// unsure is set when a conversion's outcome is unknown: the record may
	// show either mode, so the next change converts whatever mode says.
	unsure bool     // GUARDED_BY(mu)
	ranges rangeSet // GUARDED_BY(mu); POSIX owners: the byte ranges held
	pid    int32    // GUARDED_BY(mu); the process that last took the lock

	// shown is what the owner holds, for F_GETLK, which must not wait for
	// mu (a lock change may be waiting with it): nil when nothing is held.
	// Stored under mu.
	shown atomic.Pointer[lockState]

	via *openFile // GUARDED_BY(FS.mu); the handle it was last taken through
}

// lockState is a published view of an ownerLock. Immutable.
type lockState struct {
	mode   core.LockMode // the distributed mode; exclusive when unsure
	sure   bool          // mode is the mode the record shows
	ranges rangeSet
	pid    int32
	m      *core.Mutex // fences the changes of pid and its descendants
}

// lost reports whether the lease of the lock s shows was lost.
func (s *lockState) lost() bool { return mutexLost(s.m) }

// mutexLost reports whether m lost the lock it held (core logged LOCK
// LOST).
func mutexLost(m *core.Mutex) bool {
	select {
	case <-m.Lost():
		return true
	default:
		return false
	}
}

// publish updates l.shown.
// LOCKS_REQUIRED(l.mu)
func (l *ownerLock) publish() {
	if !l.held {
		l.shown.Store(nil)
		return
	}
	mode := l.mode
	if l.unsure {
		mode = core.Exclusive
	}
	l.shown.Store(&lockState{mode: mode, sure: !l.unsure, ranges: l.ranges, pid: l.pid, m: l.m})
}

// lost reports whether l is held here but its lease was lost (core logged
// LOCK LOST): nothing protects what its owner does any more.
// LOCKS_REQUIRED(l.mu)
func (l *ownerLock) lost() bool {
	return l.held && l.m != nil && mutexLost(l.m)
}

// forget drops the state of a lock that is no longer held.
// LOCKS_REQUIRED(l.mu)
func (l *ownerLock) forget() {
	l.held, l.unsure, l.ranges = false, false, nil
}

// lookupLocked returns the ownerLock of id, or, when there is none, the one
// the same owner holds through handle h under another name (its file was
// renamed since the owner locked it), or nil.
// LOCKS_REQUIRED(f.mu)
func (f *FS) lookupLocked(id lockID, h *openFile) *ownerLock {
	if l := f.locks[id]; l != nil {
		return l
	}
	for oid, l := range f.locks {
		if oid.owner == id.owner && oid.flock == id.flock && l.via == h && l.shown.Load() != nil {
			return l
		}
	}
	return nil
}

// lockFor returns the ownerLock of id (see lookupLocked) with its mu held,
// making one if needed, and records that it is taken through h. moved
// reports that it was last taken through another handle.
func (f *FS) lockFor(id lockID, h *openFile) (l *ownerLock, moved bool) {
	for {
		f.mu.Lock()
		l = f.lookupLocked(id, h)
		if l == nil {
			l = &ownerLock{name: id.name}
			f.locks[id] = l
		}
		moved = l.via != nil && l.via != h
		l.via = h
		f.mu.Unlock()
		l.mu.Lock()
		if !l.gone {
			return l, moved
		}
		l.mu.Unlock()
	}
}

// lockReq is a decoded lock request.
type lockReq struct {
	id         lockID
	start, end uint64 // POSIX: the range, both ends included
	mode       core.LockMode
	pid        int32 // the requesting process, 0 when unknown
}

func decodeLock(path string, owner fuse.LockOwner, lk fuse.FileLock, flags fuse.LockFlags) lockReq {
	r := lockReq{
		id:    lockID{name: namespace.LockName(path), owner: owner, flock: flags&fuse.LockFlock != 0},
		start: lk.Start, end: lk.End, mode: core.Exclusive, pid: lk.PID,
	}
	if lk.Type == fuse.LockRead {
		r.mode = core.Shared
	}
	if r.id.flock {
		r.start, r.end = 0, offsetMax
	}
	return r
}

func lockOp(flock bool) string {
	if flock {
		return "flock"
	}
	return "fcntl lock"
}

// Lock takes the distributed lock of the file without waiting: EWOULDBLOCK
// when it is held elsewhere in a conflicting mode.
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
	r := decodeLock(p, req.LockOwner, req.Lock, req.LockFlags)
	if r.pid == 0 {
		r.pid = int32(req.Pid)
	}
	op := lockOp(r.id.flock)
	if r.start > r.end {
		return syscall.EINVAL // the kernel checks ranges; not reached
	}
	taken, err := f.setLock(ctx, r, h, wait)
	if taken {
		// Even when an interrupt came meanwhile: the lock is held, and
		// what is read under it must be current.
		f.lockTaken(context.WithoutCancel(ctx), p, h.n)
	}
	return f.lockErrno(op, p, r.pid, err)
}

// setLock gives the owner of r the lock r asks for, waiting while it is
// held elsewhere in a conflicting mode when wait is set. It reports whether
// the lock was taken or upgraded to exclusive (so lockTaken is due).
//
// flock: a held lock in another mode is converted by unlocking and locking
// again, as flock(2) allows. POSIX: the owner's ranges change as POSIX
// says, and the distributed lock follows the strongest mode they need,
// converted in one compare-and-swap (core.Mutex.TryConvert), never
// released on the way. A refused or interrupted POSIX request changes
// nothing; an interrupted first lock leaves no lock behind.
func (f *FS) setLock(ctx context.Context, r lockReq, h *openFile, wait bool) (bool, error) {
	if f.life.Err() != nil {
		return false, errShutdown
	}
	// Waits also end when the file system shuts down.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(f.life, cancel)()

	l, moved := f.lockFor(r.id, h)
	defer l.mu.Unlock()
	defer l.publish()
	if l.lost() {
		// Say so once: what the owner did since was not protected. The
		// next request starts afresh.
		l.forget()
		return false, errLockLost
	}
	if r.id.flock {
		if l.held && l.mode == r.mode {
			// Through another handle: the kernel reused the owner id of
			// a closed description whose Release (which unlocks it) is
			// still to come. The lock passes to h, which must read what
			// was committed under it (lockTaken); the late Release
			// leaves it alone (releaseLocks). The id may now be another
			// process's: its changes are the ones to fence.
			if moved {
				l.pid = r.pid
			}
			return moved, nil
		}
		if l.held {
			if err := l.unlock(ctx); err != nil {
				return false, err
			}
		}
		if err := l.acquire(ctx, f, r.mode, wait, r.pid); err != nil {
			return false, err
		}
		l.pid = r.pid
		return true, nil
	}
	next := l.ranges.with(r.start, r.end, r.mode)
	want, _ := next.mode()
	taken := false
	switch {
	case !l.held:
		if err := l.acquire(ctx, f, want, wait, r.pid); err != nil {
			return false, err
		}
		taken = true
	case l.mode != want || l.unsure:
		taken = want == core.Exclusive && (l.mode != core.Exclusive || l.unsure)
		if err := l.convert(ctx, f, want, wait); err != nil {
			return false, err
		}
	}
	l.ranges = next
	l.pid = r.pid
	return taken, nil
}

// acquire takes the lock in mode for process pid (the lock record names
// the process that first locked).
// LOCKS_REQUIRED(l.mu)
func (l *ownerLock) acquire(ctx context.Context, f *FS, mode core.LockMode, wait bool, pid int32) error {
	if l.m == nil {
		mctx, mcancel := context.WithCancel(context.Background())
		l.m, l.cancel = f.g.Mutex(mctx, l.name, core.LockPID(int(pid))), mcancel
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
		l.held, l.mode, l.unsure = true, mode, false
		return nil
	case ctx.Err() != nil:
		return interrupted(ctx, f.life)
	}
	return err
}

// convert changes the mode of the held lock. A refusal (held elsewhere) or
// an interrupted wait leaves the former mode held. A conversion once sent
// runs to its outcome (core), which the request then answers.
// LOCKS_REQUIRED(l.mu)
func (l *ownerLock) convert(ctx context.Context, f *FS, mode core.LockMode, wait bool) error {
	var err error
	if wait {
		err = l.m.ConvertContext(ctx, mode)
	} else {
		err = l.m.TryConvert(ctx, mode)
	}
	switch {
	case err == nil:
		l.mode, l.unsure = mode, false
		return nil
	case errors.Is(err, core.ErrLockHeld):
		return err
	case l.lost():
		l.forget()
		return errLockLost
	case errors.Is(err, core.ErrUnknownOutcome):
		l.unsure = true
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
	errLockLost    = errors.New("lock lost: its lease could not be kept, so the locks this owner held were not protected")
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
	lost := l.lost()
	l.forget()
	if lost {
		return errLockLost // nothing left to release, but the owner was not protected
	}
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

// unlockRange gives up start..end of a POSIX owner's ranges: the lock is
// released when no range is left, and downgraded to shared when only read
// ranges are. A downgrade conflicts with nobody and an interrupt does not
// stop it; when B2 does not confirm it, the range is released all the same
// and the lock stays in its former mode (stricter than needed, never
// looser) until the owner's next change or release.
// LOCKS_REQUIRED(l.mu)
func (l *ownerLock) unlockRange(ctx context.Context, f *FS, start, end uint64) error {
	if !l.held {
		return nil
	}
	if l.lost() {
		l.forget()
		return errLockLost
	}
	next := l.ranges.without(start, end)
	want, any := next.mode()
	if !any {
		return l.unlock(ctx)
	}
	l.ranges = next
	if want == l.mode && !l.unsure {
		return nil
	}
	err := l.m.TryConvert(context.WithoutCancel(ctx), want)
	switch {
	case err == nil:
		l.mode, l.unsure = want, false
		return nil
	case l.lost():
		l.forget()
		return errLockLost
	case errors.Is(err, core.ErrUnknownOutcome):
		l.unsure = true
	}
	f.log.Warn("lock downgrade not confirmed; the lock stays in its former mode until its owner's next change", "lock", l.name, "mode", want.String(), "err", err)
	return nil
}

// Unlock releases the byte range the request names (the whole lock for
// flock) of the lock held by the request's owner.
func (h *openFile) Unlock(ctx context.Context, req *fuse.UnlockRequest) error {
	f := h.n.fs
	p := h.n.path()
	r := decodeLock(p, req.LockOwner, req.Lock, req.LockFlags)
	if r.start > r.end {
		return syscall.EINVAL // the kernel checks ranges; not reached
	}
	f.mu.Lock()
	l := f.lookupLocked(r.id, h)
	f.mu.Unlock()
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone {
		return nil // released meanwhile
	}
	defer l.publish()
	var err error
	if r.id.flock {
		err = l.unlock(ctx)
	} else {
		err = l.unlockRange(ctx, f, r.start, r.end)
	}
	return f.errno("unlock", p, err)
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
		l.publish()
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
// through h (Linux OFD locks are not released otherwise). A flock last
// taken through another handle is not h's: the kernel sends Release after
// close(2) returns, and by then a new description may have the old one's
// owner id and the lock (setLock).
func (f *FS) releaseLocks(ctx context.Context, h *openFile, req *fuse.ReleaseRequest) {
	flockOwner, isFlock := req.LockOwner, req.ReleaseFlags&fuse.ReleaseFlockUnlock != 0
	f.dropLocks(ctx, "release", func(id lockID, l *ownerLock) bool {
		if id.flock {
			return isFlock && id.owner == flockOwner && l.via == h
		}
		return l.via == h
	})
}

// flushLocks drops the POSIX locks owner holds on the file of n: POSIX
// locks end with any close by their owner.
func (f *FS) flushLocks(ctx context.Context, n node, owner fuse.LockOwner) {
	name := namespace.LockName(n.base().path())
	f.dropLocks(ctx, "close", func(id lockID, l *ownerLock) bool {
		return !id.flock && id.owner == owner && (id.name == name || l.via != nil && node(l.via.n) == n)
	})
}

// QueryLock answers F_GETLK. The lock the owner asks about is placeable
// when the distributed mode the owner would then need conflicts with no
// other holder, on this host or elsewhere (as for F_SETLK); otherwise one
// conflicting holder is reported, as a lock of the whole file: its mode,
// and its process when known (the process of another owner on this mount,
// the process in the lock record of a holder on this host; 0 otherwise).
func (h *openFile) QueryLock(ctx context.Context, req *fuse.QueryLockRequest, resp *fuse.QueryLockResponse) error {
	f := h.n.fs
	p := h.n.path()
	r := decodeLock(p, req.LockOwner, req.Lock, req.LockFlags)
	var mine *lockState
	var others []*lockState // other owners on this mount holding the same lock object
	f.mu.Lock()
	own := f.lookupLocked(r.id, h)
	name := r.id.name
	if own != nil {
		name = own.name
		if s := own.shown.Load(); s != nil && !s.lost() {
			mine = s // a lost lock is not held: answer as B2 does
		}
	}
	for _, l := range f.locks {
		if l.name != name || l == own {
			continue
		}
		if s := l.shown.Load(); s != nil && !s.lost() {
			others = append(others, s)
		}
	}
	f.mu.Unlock()

	want := r.mode
	if mine != nil {
		if mine.mode == core.Exclusive && mine.sure {
			return nil // held exclusively by the owner: nobody else holds it
		}
		if !r.id.flock && r.start <= r.end {
			want, _ = mine.ranges.with(r.start, r.end, r.mode).mode()
		}
	}
	conflicts := func(m core.LockMode) bool { return want == core.Exclusive || m == core.Exclusive }
	report := func(m core.LockMode, pid int32) {
		t := fuse.LockRead
		if m == core.Exclusive {
			t = fuse.LockWrite
		}
		resp.Lock = fuse.FileLock{Start: 0, End: offsetMax, Type: t, PID: pid}
	}
	for _, o := range others {
		if conflicts(o.mode) {
			report(o.mode, o.pid)
			return nil
		}
	}
	hs, err := f.g.Holders(ctx, name)
	if err != nil {
		return f.errno("fcntl getlk", p, err)
	}
	ownIDs := map[string]bool{}
	for _, o := range append(others, mine) {
		if o != nil && o.m != nil {
			ownIDs[o.m.Owner()] = true
		}
	}
	for _, x := range foreignHolders(hs, ownIDs) {
		if m := x.LockMode(); conflicts(m) {
			var pid int32
			if x.Host == hostname() {
				pid = int32(x.PID)
			}
			report(m, pid)
			return nil
		}
	}
	return nil
}

// foreignHolders returns the holders of a lock record other than this
// mount's own owners (by their owner ids). A lapsed lease counts as held
// until another owner takes it over, as F_SETLK finds it.
func foreignHolders(hs []core.Holder, own map[string]bool) []core.Holder {
	var out []core.Holder
	for _, x := range hs {
		if !own[x.Owner] {
			out = append(out, x)
		}
	}
	return out
}

// hostname is the host name lock records of this host carry (core's
// default).
var hostname = sync.OnceValue(func() string {
	h, _ := os.Hostname()
	return h
})

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

// lockErrno maps the outcome of a lock request as errno does, except that
// refusals (held elsewhere: EWOULDBLOCK; a lost lock: ENOLCK) are logged
// at most once per process: programs such as sqlite3 retry refused locks
// all the time.
func (f *FS) lockErrno(op, path string, pid int32, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, core.ErrLockHeld):
		f.refused(op, path, pid, err)
		return syscall.EWOULDBLOCK
	case errors.Is(err, errLockLost):
		f.refused(op, path, pid, err)
		return syscall.ENOLCK
	}
	return f.errno(op, path, err)
}

// refused logs a refused lock request, unless one of the same process was
// logged before.
func (f *FS) refused(op, path string, pid int32, err error) {
	if !refusalsOf(f).first(pid, time.Now()) {
		return
	}
	f.log.Info("lock refused; later refusals to this process are not logged", "op", op, "path", "/"+path, "pid", pid, "err", err.Error())
}

// refusalLog remembers the processes whose lock refusals were logged.
type refusalLog struct {
	mu     sync.Mutex
	seen   map[int32]struct{} // GUARDED_BY(mu)
	pruned time.Time          // GUARDED_BY(mu)
}

// maxRefused bounds refusalLog.seen. Once full, processes that have exited
// are forgotten (at most once a minute); while it stays full, refusals of
// new processes are not logged at all.
const maxRefused = 4096

// first reports whether pid's refusal is the first to log.
func (r *refusalLog) first(pid int32, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.seen[pid]; ok {
		return false
	}
	if len(r.seen) >= maxRefused && now.Sub(r.pruned) >= time.Minute {
		r.pruned = now
		for p := range r.seen {
			if p > 0 && syscall.Kill(int(p), 0) == syscall.ESRCH {
				delete(r.seen, p)
			}
		}
	}
	if len(r.seen) >= maxRefused {
		return false
	}
	r.seen[pid] = struct{}{}
	return true
}

// refusalLogs holds the refusalLog of each FS, dropped with it.
var refusalLogs sync.Map // weak.Pointer[FS] -> *refusalLog

func refusalsOf(f *FS) *refusalLog {
	k := weak.Make(f)
	if r, ok := refusalLogs.Load(k); ok {
		return r.(*refusalLog)
	}
	r, loaded := refusalLogs.LoadOrStore(k, &refusalLog{seen: map[int32]struct{}{}})
	if !loaded {
		runtime.AddCleanup(f, func(k weak.Pointer[FS]) { refusalLogs.Delete(k) }, k)
	}
	return r.(*refusalLog)
}

// fence returns ctx fenced (core.Mutex.Fence) by every lock of this mount
// held by one of pids or by an ancestor of one of them: a change such a
// process makes lands only while those locks are held. That covers the
// idiom "flock FILE CMD", where flock(1) holds the lock and its child
// writes. A process nobody in its ancestry locked anything for makes
// unfenced changes. Pids of 0 (unknown) are skipped.
func (f *FS) fence(ctx context.Context, pids ...uint32) context.Context {
	f.mu.Lock()
	var held []*lockState
	for _, l := range f.locks {
		if s := l.shown.Load(); s != nil && s.m != nil && s.pid > 0 {
			held = append(held, s)
		}
	}
	f.mu.Unlock()
	if len(held) == 0 {
		return ctx
	}
	line := map[int32]bool{}
	for _, pid := range pids {
		// The kernel names the calling thread; locks name its process.
		for p, depth := int32(pid), 0; p > 1 && depth < 64 && !line[p]; depth++ {
			line[p] = true
			tgid, ppid := procIDs(p)
			line[tgid] = true
			p = ppid
		}
	}
	seen := map[*core.Mutex]bool{}
	for _, s := range held {
		if line[s.pid] && !seen[s.m] {
			seen[s.m] = true
			ctx = s.m.Fence(ctx)
		}
	}
	return ctx
}

// procIDs returns the process (thread group) and the parent process of
// thread or process id, zeros when unknown (it exited).
func procIDs(id int32) (tgid, ppid int32) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(int(id)) + "/status")
	if err != nil {
		return 0, 0
	}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(strings.TrimSpace(v))
		switch k {
		case "Tgid":
			tgid = int32(n)
		case "PPid":
			ppid = int32(n)
		}
	}
	return tgid, ppid
}
