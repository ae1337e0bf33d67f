package b2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/b2cfs/b2cfs/core"
)

// DefaultEndpoint is B2's API base.
const DefaultEndpoint = "https://api.backblazeb2.com"

// Config says which bucket to open and how hard to try.
type Config struct {
	Endpoint string // API base; default DefaultEndpoint
	KeyID    string // application key id
	Key      string // application key
	Bucket   string // bucket name
	// Timeout bounds how long a call goes without an answer from B2 over
	// all its attempts (for transfers: without a byte moving); it then
	// fails with core.ErrUnavailable. Default 10 s.
	Timeout time.Duration
	// CallTimeout bounds the wait for the answer to one attempt of a call
	// that moves no data, after which it is tried again on a new
	// connection and B2 is probed (see health). Default 2 s.
	CallTimeout time.Duration
	// Attempts bounds the tries of one call on retryable errors (429, 5xx,
	// timeouts, broken connections, expired tokens). b2_update_bucket and
	// b2_finish_large_file are not repeated after an attempt B2 may have
	// applied (see classify). Default 8.
	Attempts int
	// PartSize: uploads larger than this are sent as large files in parts of
	// this size, several at once. Default 100 MB (B2's recommended size; at
	// least 5 MB on B2).
	PartSize int64
	// Transport carries the HTTP requests; default http.DefaultTransport.
	Transport http.RoundTripper
	// Observe, when set, is called after every attempt of every B2 call
	// with the call's name, its transaction class ("A", "B" or "C"), the
	// error code ("" on success, B2's code, or "network") and how long it
	// took. It must be safe for concurrent use.
	Observe func(call, class, code string, d time.Duration)
	// Logger receives one line when B2 becomes unreachable and one when it
	// answers again. Default: discard.
	Logger *slog.Logger
}

// Class returns the transaction class B2 bills call in: "A" (free), "B" or
// "C".
func Class(call string) string {
	switch call {
	case "b2_download_file_by_name", "b2_download_file_by_id", "b2_get_file_info":
		return "B"
	case "b2_authorize_account", "b2_create_bucket", "b2_list_buckets", "b2_update_bucket",
		"b2_list_file_names", "b2_list_file_versions", "b2_list_parts", "b2_list_unfinished_large_files",
		"b2_get_download_authorization", "b2_create_key", "b2_list_keys", "b2_copy_file", "b2_copy_part":
		return "C"
	}
	return "A"
}

// Store is a bucket. Safe for concurrent use.
type Store struct {
	cfg    Config
	b2     api // the calls, through the retry policy
	health *health
}

// Open authorises with B2 and finds the bucket. It fails with a clear error
// on bad credentials or an unknown bucket.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Endpoint == "" {
		cfg.Endpoint = DefaultEndpoint
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = 2 * time.Second
	}
	if cfg.Attempts == 0 {
		cfg.Attempts = 8
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = 100_000_000
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &direct{cfg: cfg}
	h := newHealth(d.probe, cfg.Logger)
	s := &Store{cfg: cfg, b2: newRetrier(d, cfg, h), health: h}
	if err := s.b2.authorizeAccount(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close stops the store's background probing of an unreachable B2. Calls
// still work after it, but an outage is then only found by calls.
func (s *Store) Close() error {
	s.health.close()
	return nil
}

// Reachable reports whether B2 answers, and if not since when: after a
// refused connection, or an attempt and a probe without an answer, it is
// unreachable until B2 answers a call or a probe again.
func (s *Store) Reachable() (bool, time.Time) { return s.health.reachable() }

// Outage returns a channel that is closed while B2 is unreachable (see
// Reachable): core.Options.StaleOnOutage reads from the last view then.
func (s *Store) Outage() <-chan struct{} { return s.health.outage().Done() }

// BucketInfo wraps b2_list_buckets.
func (s *Store) BucketInfo(ctx context.Context) (core.BucketInfo, error) {
	return s.b2.listBuckets(ctx)
}

// UpdateBucketInfo wraps b2_update_bucket with ifRevisionIs. Its attempt
// waits Timeout for the answer, not CallTimeout: one cut short has an
// unknown outcome, which costs reading the bucket back, and the engine
// reads it back meanwhile anyway (which finds an outage).
func (s *Store) UpdateBucketInfo(ctx context.Context, rev int64, info map[string]string) (core.BucketInfo, error) {
	return s.b2.updateBucket(ctx, rev, info)
}

// Upload wraps b2_upload_file, or the large-file calls above PartSize.
// Attempts are repeated whatever their outcome: a duplicate is one more
// unreferenced version of a unique name, which the deleter or gc collects.
func (s *Store) Upload(ctx context.Context, name string, data io.ReaderAt, size int64, group string) (core.FileInfo, error) {
	info := fileInfo(group)
	if size > s.cfg.PartSize {
		return s.uploadLarge(ctx, name, data, size, info)
	}
	return s.b2.uploadFile(ctx, name, data, size, info)
}

// partWorkers is how many parts of a large file are uploaded at once.
const partWorkers = 4

func (s *Store) uploadLarge(ctx context.Context, name string, data io.ReaderAt, size int64, info map[string]string) (core.FileInfo, error) {
	lf, err := s.b2.startLargeFile(ctx, name, size, info)
	if err != nil {
		return core.FileInfo{}, err
	}
	fail := func(err error) (core.FileInfo, error) {
		// b2_cancel_large_file cannot remove a finished file, so this is
		// safe even when a finish's outcome is unknown.
		s.b2.cancelLargeFile(ctx, lf)
		return core.FileInfo{}, err
	}
	var sumMu sync.Mutex
	sums := map[int]string{} // GUARDED_BY(sumMu) until the workers end
	// Parts go up partWorkers at a time, each worker on its own part URL.
	parts := make(chan int)
	eg, ectx := errgroup.WithContext(ctx)
	for range partWorkers {
		eg.Go(func() error {
			var u partURL
			for part := range parts {
				off := int64(part-1) * s.cfg.PartSize
				sum, err := s.b2.uploadPart(ectx, &u, lf, part, data, off, min(s.cfg.PartSize, size-off))
				if err != nil {
					return err
				}
				sumMu.Lock()
				sums[part] = sum
				sumMu.Unlock()
			}
			return nil
		})
	}
	eg.Go(func() error {
		defer close(parts)
		for part := 1; int64(part-1)*s.cfg.PartSize < size; part++ {
			select {
			case parts <- part:
			case <-ectx.Done():
				return ectx.Err()
			}
		}
		return nil
	})
	if err := eg.Wait(); err != nil {
		return fail(err)
	}
	// A finish whose outcome is unknown is not repeated blindly: once the
	// first finished, a repeat fails. The file's state is read back
	// instead, and a finish still under way is waited for.
	for round := 1; ; round++ {
		fi, err := s.b2.finishLargeFile(ctx, lf, sums)
		if err == nil {
			return fi, nil
		}
		if !errors.Is(err, core.ErrUnknownOutcome) || round >= s.cfg.Attempts {
			return fail(err)
		}
		fi, finished, rerr := s.b2.getFileInfo(ctx, lf)
		if rerr != nil {
			return fail(fmt.Errorf("%w; reading the file back: %v", err, rerr))
		}
		if finished {
			return fi, nil
		}
		// Still unfinished: that finish was not applied, or is still under
		// way; another is safe (B2 refuses it while one runs).
		t := time.NewTimer(time.Duration(round) * time.Second)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fail(ctx.Err())
		}
	}
}

// Download wraps b2_download_file_by_name. The returned reader fails when
// no byte arrives for Timeout.
func (s *Store) Download(ctx context.Context, name string, off, length int64) (io.ReadCloser, core.FileInfo, error) {
	if length == 0 {
		fi, err := s.Stat(ctx, name)
		return io.NopCloser(strings.NewReader("")), core.FileInfo{ID: fi.ID}, err
	}
	return s.b2.downloadFileByName(ctx, name, off, length)
}

// Stat wraps a HEAD of b2_download_file_by_name (Class B).
func (s *Store) Stat(ctx context.Context, name string) (core.FileInfo, error) {
	return s.b2.headFileByName(ctx, name)
}

// Copy wraps b2_copy_file. The copy keeps the source's file info, its
// group mark included. An attempt whose outcome is unknown is repeated: a
// duplicate copy is one more unreferenced version, and the last one is
// returned.
func (s *Store) Copy(ctx context.Context, src, srcID, dst string) (core.FileInfo, error) {
	return s.b2.copyFile(ctx, srcID, dst)
}

// List wraps b2_list_file_names, 1,000 names a call.
func (s *Store) List(ctx context.Context, prefix string) ([]core.FileInfo, error) {
	var out []core.FileInfo
	next := ""
	for {
		files, n, err := s.b2.listFileNames(ctx, prefix, next)
		if err != nil {
			return nil, err
		}
		out = append(out, files...)
		if next = n; next == "" || len(files) == 0 {
			return out, nil
		}
	}
}

// Delete wraps b2_delete_file_version. After an attempt whose outcome is
// unknown, a repeat's file_not_present means that attempt deleted it.
func (s *Store) Delete(ctx context.Context, name, id string) error {
	return s.b2.deleteFileVersion(ctx, name, id)
}

// groupInfoKey is the file-info key of the mark b2cfs puts on the files it
// uploads: the name of the group that wrote them. B2 keeps file-info keys
// in lower case.
const groupInfoKey = "b2cfs-group"

// fileInfo is the file info of a new file: the modification time as B2's
// tools record it, and the group mark.
func fileInfo(group string) map[string]string {
	info := map[string]string{"src_last_modified_millis": strconv.FormatInt(time.Now().UnixMilli(), 10)}
	if group != "" {
		info[groupInfoKey] = group
	}
	return info
}

func infoMtime(info map[string]string) time.Time {
	for k, v := range info {
		if strings.EqualFold(k, "src_last_modified_millis") {
			if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
				return time.UnixMilli(ms)
			}
		}
	}
	return time.Time{}
}
