// Package fs presents a consistent group (package core) as a FUSE file
// system, with bazil.org/fuse.
//
// Every object of the group is a file; "/" in object names makes
// directories. Empty directories are kept as marker objects under
// ".b2cfs/dirs/", and nothing under ".b2cfs/" is ever shown.
//
// # Semantics
//
// Open captures the object's current key; reads through that handle see
// exactly that version, from a local copy (package cache), even if another
// host replaces or deletes the object meanwhile. Writes and truncations
// change a private disk-backed copy. Flush (close) and fsync of a changed
// handle commit the copy with the captured key: when the object changed in
// between, the store is left untouched, the bytes are moved to the cache's
// recovery directory (its path is logged) and the caller gets EBUSY. A failure
// to reach B2 is handled the same way with EIO. Read-only handles never
// commit.
//
// Attributes and entries are valid for Config.TTL, the age the group's view
// of the index may reach. When an open sees a key other than the one the
// kernel's cached pages belong to, those pages are dropped.
//
// # Locks
//
// With flock forwarding (fuse.LockingFlock) and POSIX lock forwarding
// (fuse.LockingPOSIX) mounted, flock(2) and whole-file fcntl locks on a file
// take the group's lock object ".b2cfs/locks/PATH" (core.Mutex, a renewed
// lease), so they exclude processes on every host, "b2cfs lock" and blazer's
// x/consistent Mutex on that name. Each kernel lock owner (an open file
// description for flock, a process for POSIX locks) is one core.Mutex.
// LOCK_NB on a held lock answers EWOULDBLOCK at once; a blocking lock polls
// at most a second apart and answers EINTR as soon as the caller is
// interrupted, leaving nothing held; B2 unreachable is ENOLCK. Locks are
// released on unlock, on the last close of the open file description
// (flock) or any close by the owner (POSIX), and at unmount (Shutdown); a
// dead host's locks free themselves when their lease expires. Byte-range
// POSIX locks and atomic POSIX conversions between shared and exclusive are
// refused with ENOLCK, never kept host-local. Linux does not forward locks
// on directories to FUSE file systems: those stay host-local.
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
