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
// # Errors
//
// Every error that reaches the kernel goes through one function (errno in
// errors.go), which maps core's errors to errno values and logs the failed
// operation once.
//
// # Concurrency
//
// bazil runs each request in its own goroutine. Lock ordering, outermost
// first: openFile.mu, then file.mu, then FS.mu. No lock is held across a
// B2 call except openFile.mu while that handle commits, which serialises
// that handle alone.
package fs
