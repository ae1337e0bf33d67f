// Package cache keeps local, disk-backed copies of object data for the FUSE
// layer: immutable versions downloaded from the store, the private copies of
// files being changed, and the recovery directory where rejected changes are
// kept.
//
// # Layout
//
// Everything lives under one directory:
//
//	versions/   one file per cached version, named by a hash of (name, key)
//	dirty/      private copies of files being changed
//	recovery/   changes that could not be committed, kept for the user,
//	            each described in FILE.json (Kept) when kept by KeepWith
//
// New empties versions/ and moves whatever a previous process left in dirty/
// to recovery/, so a crash never loses changed bytes.
//
// # Versions
//
// A version is identified by an object name and a key. Versions never change,
// so a cached version is never stale; the cache is bounded by a byte budget
// and evicts the least recently used versions that nobody holds. A version is
// filled once by a caller-supplied function that streams the data to disk;
// readers of a version that is still filling wait only for the bytes they
// ask for.
//
// The package knows nothing about FUSE or B2: it imports only the standard
// library and golang-lru.
package cache
