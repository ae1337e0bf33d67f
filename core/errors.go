package core

import (
	"errors"
	"fmt"
)

// Errors returned by Group and its types. Test for them with errors.Is.
var (
	// ErrConflict: the object changed since its key was captured; nothing
	// stored changed.
	ErrConflict = errors.New("object changed since it was read")
	// ErrNotExist: the object is not in the group.
	ErrNotExist = errors.New("object does not exist")
	// ErrGroupFull: the index would exceed what B2 accepts in the bucket
	// info; nothing stored changed.
	ErrGroupFull = errors.New("group index full")
	// ErrLockHeld: a lock is held by another owner.
	ErrLockHeld = errors.New("lock held")
	// ErrLockLost: a change fenced by a lock (Mutex.Fence) was refused,
	// since the lock is no longer held: its lease lapsed, or it was taken
	// over or forced open. Nothing stored changed.
	ErrLockLost = errors.New("lock lost")
	// ErrUnavailable: B2 could not be reached or kept failing within the
	// retry budget and deadlines.
	ErrUnavailable = errors.New("B2 unavailable")
	// ErrCorrupt: the stored index cannot be decoded; core never overwrites
	// it.
	ErrCorrupt = errors.New("group index corrupt")
	// ErrBadName: a group or object name B2 would not accept.
	ErrBadName = errors.New("bad name")
	// ErrNotSupported: the group's format cannot record what was asked
	// (a symbolic link in FormatBlazer); nothing stored changed.
	ErrNotSupported = errors.New("not supported by the group's format")
)

// Errors a Store returns to the engine.
var (
	// ErrRevisionMismatch: UpdateBucketInfo found another revision.
	ErrRevisionMismatch = errors.New("bucket revision changed")
	// ErrInfoRejected: B2 refused the bucket info (too large or too many
	// pairs).
	ErrInfoRejected = errors.New("bucket info rejected")
	// ErrUnknownOutcome: a state-changing call was sent and no definite
	// answer came back (the reply was lost, late or a 5xx, or the call's
	// deadline passed): B2 may or may not have applied it. A Store returns
	// it, wrapped, instead of repeating such a call itself, since a repeat
	// cannot tell its own earlier success from someone else's change. The
	// Group resolves it by reading the bucket back; a caller of Group sees
	// it only when that read-back itself kept failing (it then also
	// matches ErrUnavailable), and nothing that may be referenced was
	// deleted.
	ErrUnknownOutcome = errors.New("outcome unknown: the call may have been applied")
)

// OpError records a failed group operation on one object.
type OpError struct {
	Op    string // "read", "commit", "remove", "lock", ...
	Group string
	Name  string
	Err   error
}

func (e *OpError) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("%s group %q: %v", e.Op, e.Group, e.Err)
	}
	return fmt.Sprintf("%s %q in group %q: %v", e.Op, e.Name, e.Group, e.Err)
}

func (e *OpError) Unwrap() error { return e.Err }
