package b2

import (
	"context"
	"io"

	"github.com/Backblaze/blazer/base"

	"github.com/b2cfs/b2cfs/core"
)

// api is the B2 calls a Store makes, one method a call, named after it.
// direct makes each call once and returns B2's and blazer's errors as they
// come; retrier wraps an api and repeats its calls under the retry policy,
// returning core's errors (see classify). A call sees ctx end through its
// requests, and a download's body lives under ctx. Implementations are
// safe for concurrent use.
type api interface {
	// authorizeAccount replaces the session (blazer's, the bucket-info
	// client's, and the bucket's id): b2_authorize_account twice, then
	// b2_list_buckets. Calls under way keep the session they started with.
	authorizeAccount(ctx context.Context) error
	listBuckets(ctx context.Context) (core.BucketInfo, error)
	// updateBucket replaces the bucket info if the bucket's revision is
	// still rev.
	updateBucket(ctx context.Context, rev int64, info map[string]string) (core.BucketInfo, error)
	// uploadFile stores size bytes of data as a new version of name, with
	// the file info info, on an upload URL of the pool (b2_get_upload_url
	// when the pool has none).
	uploadFile(ctx context.Context, name string, data io.ReaderAt, size int64, info map[string]string) (core.FileInfo, error)
	startLargeFile(ctx context.Context, name string, size int64, info map[string]string) (largeFile, error)
	// uploadPart stores the n bytes of data at off as part number part of
	// lf, on the part URL u (got by b2_get_upload_part_url if u has none
	// of the current session), and returns the part's SHA1.
	uploadPart(ctx context.Context, u *partURL, lf largeFile, part int, data io.ReaderAt, off, n int64) (string, error)
	// finishLargeFile makes lf a file of the parts whose SHA1s sums holds
	// by part number.
	finishLargeFile(ctx context.Context, lf largeFile, sums map[int]string) (core.FileInfo, error)
	// getFileInfo reports whether lf is finished, and then its FileInfo.
	getFileInfo(ctx context.Context, lf largeFile) (core.FileInfo, bool, error)
	cancelLargeFile(ctx context.Context, lf largeFile) error
	// downloadFileByName reads n bytes (n < 0: to the end) from off of the
	// newest version of name. An offset at or past the end gives an empty
	// body. The FileInfo has the id and the body's length.
	downloadFileByName(ctx context.Context, name string, off, n int64) (io.ReadCloser, core.FileInfo, error)
	// headFileByName is downloadFileByName's HEAD: the FileInfo of the
	// newest version of name, with its modification time.
	headFileByName(ctx context.Context, name string) (core.FileInfo, error)
	copyFile(ctx context.Context, srcID, dst string) (core.FileInfo, error)
	// listFileNames returns up to 1,000 newest versions of the names
	// starting with prefix, from start on, and the name to start the next
	// page from ("" after the last page).
	listFileNames(ctx context.Context, prefix, start string) ([]core.FileInfo, string, error)
	deleteFileVersion(ctx context.Context, name, id string) error
}

// largeFile is a large file being uploaded.
type largeFile struct {
	id, name string
	size     int64
}

// partURL is a part URL of one uploader of a large file's parts, kept for
// its next parts while the session that got it lasts; uploadPart fills it,
// and empties it after a failure. The zero value has none. Not safe for
// concurrent use: each uploader has its own.
type partURL struct {
	fc   *base.FileChunk
	sess *session
}
