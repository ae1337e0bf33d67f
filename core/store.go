package core

import (
	"context"
	"io"
	"time"
)

// BucketInfo is the part of a bucket the engine coordinates through: the
// bucket-info map and the revision B2 bumps on every update.
type BucketInfo struct {
	Revision int64
	Info     map[string]string // never modified once returned
}

// FileInfo describes one stored file version.
type FileInfo struct {
	Name     string // B2 file name (set by List)
	ID       string // B2 file id
	Size     int64
	Modified time.Time // when it was uploaded (zero when unknown)
	// Group is the mark Upload stored with the file: the group that
	// wrote it, "" for files b2cfs did not write (set by List).
	Group string
}

// Store is what the engine needs from a bucket. Implementations are safe for
// concurrent use, honour ctx cancellation, bound every call with a deadline
// (returning an error wrapping ErrUnavailable when B2 keeps failing), and
// return ErrNotExist for missing files.
type Store interface {
	// BucketInfo returns the current bucket info and revision
	// (b2_list_buckets).
	BucketInfo(ctx context.Context) (BucketInfo, error)
	// UpdateBucketInfo replaces the whole bucket info if the revision is
	// still rev, and returns the state B2 answered with. It returns
	// ErrRevisionMismatch when B2 answered that the revision moved,
	// ErrInfoRejected when B2 refuses the info itself, and an error
	// wrapping ErrUnknownOutcome when the update may have been applied
	// without a definite answer (the request was sent, then the connection
	// broke, the deadline passed, ctx ended or B2 answered 5xx). It repeats
	// an attempt itself only when B2 certainly did not apply it (the
	// connection was never made, 429, an expired token).
	UpdateBucketInfo(ctx context.Context, rev int64, info map[string]string) (BucketInfo, error)
	// Upload stores size bytes read from data as a new version of name,
	// marked as written by group: List reports the mark as
	// FileInfo.Group (B2 keeps it as the file info b2cfs-group), and gc
	// deletes no unreferenced file without it (outside .b2cfs/). Every
	// upload of the engine names its group; "" leaves the file unmarked,
	// as blazer's x/consistent leaves its files. An attempt whose reply
	// was lost may be repeated, leaving an unreferenced duplicate.
	Upload(ctx context.Context, name string, data io.ReaderAt, size int64, group string) (FileInfo, error)
	// Download reads length bytes from offset off (length < 0: to the end)
	// of the newest version of name. Offsets at or past the end give an
	// empty reader. The FileInfo has the file id and the length of the
	// returned range.
	Download(ctx context.Context, name string, off, length int64) (io.ReadCloser, FileInfo, error)
	// Stat returns the newest version of name.
	Stat(ctx context.Context, name string) (FileInfo, error)
	// Delete removes the version id of name.
	Delete(ctx context.Context, name, id string) error
	// Copy makes dst a server-side copy of file src, version srcID,
	// with the same group mark.
	Copy(ctx context.Context, src, srcID, dst string) (FileInfo, error)
	// List returns the newest version of every file whose name starts with
	// prefix, in name order, each with its group mark.
	List(ctx context.Context, prefix string) ([]FileInfo, error)
}
