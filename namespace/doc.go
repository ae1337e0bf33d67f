// Package namespace is the file-system view of a group: how the flat names
// of a group's index make a directory tree, and how changes to that tree
// become changes to the index. The mount (package fs) and the group tools
// of the command both use it, so that a path means the same through either.
//
// The conventions it owns, all under core.ReservedPrefix (names no user
// object may have):
//
//   - A name with "/" in it implies its parent directories.
//   - Directory D made with mkdir has the empty marker object Marker(D)
//     (MarkerPrefix+D), so that other hosts see it while it is empty; the
//     marker holds the directory's mode and times. The root's are in
//     RootMarker.
//   - The lock of path P is the object LockName(P) (LockPrefix+P): flock on
//     a mount and "b2cfs lock" take the same one, so they exclude each
//     other.
//
// A Tree is built from one view of the index and never changes. Moves and
// Remove plan renames and unlinks on a Tree; their refusals wrap the
// syscall.Errno a POSIX tool expects (ENOENT, EISDIR, ENOTDIR, ENOTEMPTY,
// EINVAL), so that the mount returns them as they are and the tools print
// them.
package namespace
