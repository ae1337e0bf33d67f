// Package fs presents a consistent group (package core) as a FUSE file
// system, with bazil.org/fuse.
//
// Every object of the group is a file or, in core.FormatB2cfs, a symbolic
// link (link.go); "/" in object names makes directories. Directories made
// with mkdir, and those given a mode or times, are kept as marker objects
// under ".b2cfs/dirs/" (the root's is ".b2cfs/root"), and nothing under
// ".b2cfs/" is ever shown. Hard links, fifos, sockets and device nodes are
// refused with EPERM.
//
// # Semantics
//
// A file's state (its version, and once changed a disk-backed local copy)
// belongs to the file node, shared by every handle on this host (file.go):
// writes, truncations by descriptor or by path, and O_APPEND writes (at the
// real end) from any process act on it, as on a local file system. Handles
// hold only their flags (handle.go). Close and fsync of a descriptor open
// for writing commit the state with compare-and-swap against the version
// it is based on: when the object changed elsewhere, the store is left
// untouched, the bytes go to the cache's recovery directory (its path is
// logged) and the caller gets EBUSY; B2 unreachable is the same with EIO.
// A read-only descriptor never commits. A truncation with no writer open
// commits at once. Changes that only appended to their version are
// appended to the newer one instead of conflicting. A file unlinked while
// open keeps working until its last close and commits nothing.
// Descriptors open for writing do direct I/O, so the page cache never
// answers for the shared state while it changes (file.Open).
//
// Snapshots: a version committed by another host is a new file node for
// new opens, made by Lookup once the view shows it; handles keep reading
// the node, and so the version, they opened, to its end, and the kernel's
// size and page caches, which belong to one node, never cut or mix it. A
// node nothing has open moves to the current version on open; taking a
// lock on a file moves its unchanged node to B2's version even while it is
// open (lockTaken), as NFS revalidates on lock.
//
// Renames and unlinks replace or remove only the version this host last
// showed a process (opened, listed, created or wrote; for a name never
// shown, the one looked up): a target changed elsewhere since is EBUSY and
// nothing changes, so that "sed -i", editors that save by rename, and "mv"
// see the conflict.
//
// Snapshots have one exception: a node open only for reading moves in
// place to a version that only appended to the one it shows (extendTo),
// so that readers read on as under a local file that grows (tail -f);
// what this host last showed a process stays the version it read.
//
// # Metadata
//
// In core.FormatB2cfs modes (0000 and the set-id and sticky bits
// included), modification, access and change times of files, links and
// directories are kept in the index; chmod and utimes are batched
// (attrs.go). Owners are the mount's (chown to another is EPERM). Inode
// numbers belong to nodes and move with renames (FS.inoLocked).
//
// Attributes and entries are valid for Config.TTL, the age the group's view
// of the index may reach. When the view changes, the kernel is told what
// other hosts changed (fresh.go), and while any file is open the view is
// reloaded every TTL.
//
// # Locks
//
// With flock forwarding (fuse.LockingFlock) and POSIX lock forwarding
// (fuse.LockingPOSIX) mounted, flock(2) and fcntl locks on a file take the
// group's lock object ".b2cfs/locks/PATH" (core.Mutex, a renewed lease), so
// they exclude processes on every host, "b2cfs lock" and blazer's
// x/consistent Mutex on that name. Each kernel lock owner (an open file
// description for flock and OFD locks, a process for POSIX locks) is one
// core.Mutex, keyed by the lock object's name (the path when the owner first
// locked the file) and the owner, so two owners on one host exclude each
// other through B2 as owners on two hosts do. POSIX byte-range locks
// (F_SETLK, F_SETLKW, OFD locks) map conservatively onto that whole-file
// lock: the owner's ranges are kept as POSIX says (a new lock replaces the
// overlapping parts of the owner's own, an unlock of a sub-range splits
// one), and the distributed mode is exclusive while the owner holds any
// write range, shared while it holds only read ranges, released when it
// holds none. A change of mode is one compare-and-swap of the lock record
// (core.Mutex.TryConvert), never an unlock and a lock, so nobody gets in
// between. Any other owner's range conflicts with it as if it covered the
// whole file, so a granted lock excludes on every host at least what POSIX
// says it excludes (and ranges that would not overlap on a local file system
// may still conflict): nothing is ever falsely exclusive. F_GETLK answers
// F_UNLCK when F_SETLK would be granted, and otherwise reports one
// conflicting holder as a lock of the whole file with its process when known
// (another owner on this mount, or the pid in the lock record of a holder on
// this host). LOCK_NB and F_SETLK on a held lock answer EWOULDBLOCK at once;
// a blocking lock or upgrade polls at most a second apart and answers EINTR
// as soon as the caller is interrupted, leaving nothing held (a new lock) or
// the former mode held (an upgrade); B2 unreachable is ENOLCK. Refusals are
// logged at most once per process. Locks are released on unlock, on the last
// close of the open file description (flock and OFD locks) or any close by
// the owner (POSIX), and at unmount (Shutdown); a dead host's locks free
// themselves when their lease expires. Linux does not forward locks on
// directories to FUSE file systems: those stay host-local.
//
// # Errors
//
// Every error that reaches the kernel goes through one function (errno in
// errors.go), which maps core's errors to errno values and logs the failed
// operation once.
//
// An interrupted request answers EINTR only when nothing changed in B2. A
// change already sent runs to its outcome (core), which the request then
// answers: 0 when it landed, even though the caller was interrupted, and EIO
// when B2 could not tell. Nothing a request does after its change landed
// (the attributes bazil asks for, re-keying open handles) fails for an
// interrupt.
//
// # Concurrency
//
// bazil runs each request in its own goroutine. Lock ordering, outermost
// first: openFile.mu, then file.mu, then FS.mu; ownerLock.mu (lock.go) comes
// before FS.mu and is never held with the other two. No lock is held across a
// B2 call except openFile.mu while that handle commits, which serialises
// that handle alone, and ownerLock.mu while its owner locks or unlocks.
package fs
