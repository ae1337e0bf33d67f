// Package core is the consistent-group engine of b2cfs.
//
// A group is a named set of objects in one B2 bucket. Its index, a map from
// object name to key (the version id of the object, 40 lower-case hex
// characters), is replaced with a compare-and-swap on the bucket revision
// (b2_update_bucket with ifRevisionIs). The API follows the x/consistent
// package of github.com/Backblaze/blazer (the seed).
//
// # On-bucket formats
//
// Two formats sit behind one seam (indexFormat); everything else is shared.
//
// FormatBlazer is blazer's, so that programs using either can share a
// group: the index of group G is the bucket-info value under
// "blazer-meta-key-no-touchie-G", standard base64 of the JSON
// {"Version":1,"Serial":N,"Locations":{"<name>":"<key>",...}}, and the data
// of object <name> at key <key> is the B2 file "<name>/<key>". B2's limit on
// bucket-info values caps such a group at a few dozen names (ErrGroupFull).
//
// FormatB2cfs, the default for new groups, keeps a small pointer under
// "b2cfs-G" and the index in manifest files, with each version's size, time,
// mode and file id, and data under names independent of object names: any
// number of names, and renames without copying. See manifest.go.
//
// # Consistency
//
// A Group keeps one view of the index, shared by all its users and refreshed
// at most every Options.IndexTTL (concurrent refreshes coalesce into one
// b2_list_buckets call). A commit always uses the view it has: when the view
// is stale the compare-and-swap fails, the view is reloaded and the commit is
// retried without the caller seeing it, unless the object itself changed,
// which is a conflict (ErrConflict). A successful commit installs the state B2
// answered with, so the view is fresh after a commit or a lock.
//
// # Unknown outcomes
//
// A b2_update_bucket can be applied by B2 while its reply is lost, late or
// a 5xx, or while the caller's context ends. The Store reports such a call
// as ErrUnknownOutcome instead of repeating it, and the Group resolves it:
// every saved index carries the random ids of the commits that saved its
// last few serials (see index.stamp), so reading the bucket back tells
// whether the index at the commit's serial is the commit's own. Until the
// outcome is known nothing the commit may reference is deleted, and once
// an update is sent the caller's context no longer cuts the commit short
// (Options.CommitTimeout bounds it instead). Only when B2 cannot be read
// back in time does a caller see ErrUnknownOutcome (with ErrUnavailable).
//
// # Costs
//
// A commit with a current view costs one upload and one b2_update_bucket.
// Superseded versions are deleted by file id after Options.Grace, so readers
// elsewhere can finish reading them.
//
// # Locks
//
// Group.Mutex returns a lock on one object of the group. Its content is a
// JSON lease record (holders and waiters: owner, host, pid, mode, times,
// renewal number) that the holder renews in the background; a lease whose
// entry stayed unchanged for longer than its TTL plus a margin, on the
// taker's own clock, may be taken over (lease.go: no two hosts' clocks are
// ever compared). Mutex.Fence makes commits conditional on the lock, in
// their own compare-and-swap, so a holder that lost its lock cannot
// commit. Blazer's own
// Mutex writes the single byte 0x01, which this package reads as an exclusive
// lock held forever, so the two exclude each other; ForceUnlock clears any
// lock.
//
// # Errors
//
// Errors can be tested with errors.Is against ErrConflict, ErrNotExist,
// ErrGroupFull, ErrLockHeld, ErrLockLost, ErrUnavailable, ErrCorrupt and ErrBadName.
// Nothing in this package panics on a B2 error.
package core
