package b2

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Backblaze/blazer/base"
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
	cfg  Config
	sess atomic.Pointer[session]
	mu   sync.Mutex // serialises re-authorisation

	urlMu sync.Mutex
	urls  []pooledURL // idle upload URLs, each used by one upload at a time

	health *health
}

// pooledURL is an idle upload URL and the session that got it.
type pooledURL struct {
	u    *base.URL
	sess *session
}

// session is one authorisation: blazer's, for objects, and this package's,
// for bucket info. Replaced whole on re-authorisation, so calls in flight
// keep a consistent token.
type session struct {
	b2       *base.B2
	bucket   *base.Bucket
	info     *infoClient
	bucketID string
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
	s := &Store{cfg: cfg}
	s.health = newHealth(s.probe, cfg.Logger)
	err := s.retry(ctx, "b2_authorize_account", func(ctx context.Context) error {
		sess, err := s.authorize(ctx)
		if err == nil {
			s.sess.Store(sess)
		}
		return err
	})
	if err != nil {
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

// probe asks B2 for an upload URL (class A, free) and keeps it for the next
// upload. Any answer of B2, an error answer included, means reachable.
func (s *Store) probe(ctx context.Context) error {
	sess := s.sess.Load()
	start := time.Now()
	u, err := sess.bucket.GetUploadURL(ctx)
	if s.cfg.Observe != nil {
		s.cfg.Observe("b2_get_upload_url", Class("b2_get_upload_url"), errCode(err), time.Since(start))
	}
	if err == nil {
		s.putURL(u, sess)
		return nil
	}
	if ae, ok := asAPI(err); ok && ae.status < 500 {
		return nil
	}
	return err
}

func (s *Store) authorize(ctx context.Context) (*session, error) {
	b, err := base.AuthorizeAccount(ctx, s.cfg.KeyID, s.cfg.Key, base.SetAPIBase(s.cfg.Endpoint), base.Transport(s.cfg.Transport), base.UserAgent("b2cfs"))
	if err != nil {
		return nil, err
	}
	ic := &infoClient{endpoint: s.cfg.Endpoint, keyID: s.cfg.KeyID, key: s.cfg.Key, hc: &http.Client{Transport: s.cfg.Transport}}
	if err := ic.authorize(ctx); err != nil {
		return nil, err
	}
	buckets, err := b.ListBuckets(ctx, s.cfg.Bucket)
	if err != nil {
		return nil, err
	}
	for _, bk := range buckets {
		if bk.Name == s.cfg.Bucket {
			return &session{b2: b, bucket: bk, info: ic, bucketID: bk.ID}, nil
		}
	}
	return nil, fmt.Errorf("%w: no bucket %q in this account", errNoBucket, s.cfg.Bucket)
}

var errNoBucket = errors.New("no such bucket")

// reauthorize replaces the session, once for all callers that saw old fail.
func (s *Store) reauthorize(ctx context.Context, old *session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess.Load() != old {
		return nil
	}
	err := s.retry(ctx, "b2_authorize_account", func(ctx context.Context) error {
		sess, err := s.authorize(ctx)
		if err == nil {
			s.sess.Store(sess)
		}
		return err
	})
	if err != nil {
		return err
	}
	s.urlMu.Lock()
	s.urls = nil
	s.urlMu.Unlock()
	return nil
}

// BucketInfo wraps b2_list_buckets.
func (s *Store) BucketInfo(ctx context.Context) (core.BucketInfo, error) {
	var bi core.BucketInfo
	err := s.retry(ctx, "b2_list_buckets", func(ctx context.Context) error {
		var err error
		bi, err = s.sess.Load().info.get(ctx, s.cfg.Bucket)
		return err
	})
	return bi, err
}

// UpdateBucketInfo wraps b2_update_bucket with ifRevisionIs. Its attempt
// waits Timeout for the answer, not CallTimeout: one cut short has an
// unknown outcome, which costs reading the bucket back, and the engine
// reads it back meanwhile anyway (which finds an outage).
func (s *Store) UpdateBucketInfo(ctx context.Context, rev int64, info map[string]string) (core.BucketInfo, error) {
	var bi core.BucketInfo
	err := s.do(ctx, "b2_update_bucket", s.cfg.Timeout, func(ctx context.Context, _ *watchdog) error {
		sess := s.sess.Load()
		var err error
		bi, err = sess.info.update(ctx, sess.bucketID, rev, info)
		return err
	})
	return bi, err
}

// Upload wraps b2_upload_file, or the large-file calls above PartSize.
// Attempts are repeated whatever their outcome: a duplicate is one more
// unreferenced version of a unique name, which the deleter or gc collects.
func (s *Store) Upload(ctx context.Context, name string, data io.ReaderAt, size int64, group string) (core.FileInfo, error) {
	info := fileInfo(group)
	if size > s.cfg.PartSize {
		return s.uploadLarge(ctx, name, data, size, info)
	}
	var fi core.FileInfo
	err := s.do(ctx, "b2_upload_file", s.cfg.Timeout, func(ctx context.Context, wd *watchdog) error {
		defer s.health.transfer(size)()
		sess := s.sess.Load()
		u, err := s.uploadURL(ctx, sess)
		if err != nil {
			return err
		}
		// The SHA1 follows the data (hex_digits_at_end): one pass over it.
		r, _ := withSHA1(fedReader{io.NewSectionReader(data, 0, size), wd, s.budget(size)})
		f, err := u.UploadFile(ctx, r, int(size)+40, name, "application/octet-stream", "hex_digits_at_end", info)
		if err != nil {
			return err // the URL is dropped: B2 says to get a new one after any failure
		}
		s.putURL(u, sess)
		fi = core.FileInfo{Name: name, ID: f.ID, Size: size, Modified: f.Timestamp}
		return nil
	})
	return fi, err
}

func (s *Store) uploadLarge(ctx context.Context, name string, data io.ReaderAt, size int64, info map[string]string) (core.FileInfo, error) {
	var id string
	err := s.retry(ctx, "b2_start_large_file", func(ctx context.Context) error {
		lf, err := s.sess.Load().bucket.StartLargeFile(ctx, name, "application/octet-stream", info)
		if err == nil {
			id = lf.ID
		}
		return err
	})
	if err != nil {
		return core.FileInfo{}, err
	}
	// The large file is reached through the current session every time,
	// so that calls after a re-authorisation carry the new token; the part
	// SHA1s are kept here for the same reason.
	large := func(sess *session, sums map[int]string) *base.LargeFile {
		return sess.bucket.File(id, name).CompileParts(size, sums)
	}
	fail := func(err error) (core.FileInfo, error) {
		// b2_cancel_large_file cannot remove a finished file, so this is
		// safe even when a finish's outcome is unknown.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Timeout)
		defer cancel()
		large(s.sess.Load(), nil).CancelLargeFile(cctx)
		return core.FileInfo{}, err
	}
	var sumMu sync.Mutex
	sums := map[int]string{}
	// Parts go up partWorkers at a time, each worker on its own part URL.
	parts := make(chan int)
	eg, ectx := errgroup.WithContext(ctx)
	for w := 0; w < partWorkers; w++ {
		eg.Go(func() error {
			var fc *base.FileChunk
			var fcSess *session
			for part := range parts {
				off := int64(part-1) * s.cfg.PartSize
				n := min(s.cfg.PartSize, size-off)
				err := s.do(ectx, "b2_upload_part", s.cfg.Timeout, func(ctx context.Context, wd *watchdog) error {
					defer s.health.transfer(n)()
					if sess := s.sess.Load(); fc == nil || fcSess != sess {
						c, err := large(sess, nil).GetUploadPartURL(ctx)
						if err != nil {
							return err
						}
						fc, fcSess = c, sess
					}
					r, sum := withSHA1(fedReader{io.NewSectionReader(data, off, n), wd, s.budget(n)})
					if _, err := fc.UploadPart(ctx, r, "hex_digits_at_end", int(n)+40, part); err != nil {
						fc = nil
						return err
					}
					sumMu.Lock()
					sums[part] = sum()
					sumMu.Unlock()
					return nil
				})
				if err != nil {
					return err
				}
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
	// instead (b2_get_file_info: "upload" once finished, "start" before).
	// B2 assembles the parts while it finishes: the deadline grows with
	// the size, and a finish still under way is waited for.
	for round := 1; ; round++ {
		var f *base.File
		err = s.do(ctx, "b2_finish_large_file", s.budget(size), func(ctx context.Context, _ *watchdog) error {
			defer s.health.transfer(size)()
			var err error
			f, err = large(s.sess.Load(), sums).FinishLargeFile(ctx)
			return err
		})
		if err == nil {
			return core.FileInfo{Name: name, ID: f.ID, Size: size, Modified: f.Timestamp}, nil
		}
		if !errors.Is(err, core.ErrUnknownOutcome) || round >= s.cfg.Attempts {
			return fail(err)
		}
		var st *base.FileInfo
		if rerr := s.retry(ctx, "b2_get_file_info", func(ctx context.Context) error {
			var err error
			st, err = s.sess.Load().bucket.File(id, name).GetFileInfo(ctx)
			return err
		}); rerr != nil {
			return fail(fmt.Errorf("%w; reading the file back: %v", err, rerr))
		}
		if st.Status == "upload" {
			return core.FileInfo{Name: name, ID: id, Size: size, Modified: st.Timestamp}, nil
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

// uploadURL returns an idle upload URL of sess, or gets a new one.
func (s *Store) uploadURL(ctx context.Context, sess *session) (*base.URL, error) {
	s.urlMu.Lock()
	for n := len(s.urls); n > 0; n-- {
		p := s.urls[n-1]
		s.urls = s.urls[:n-1]
		if p.sess == sess {
			s.urlMu.Unlock()
			return p.u, nil
		}
	}
	s.urlMu.Unlock()
	return sess.bucket.GetUploadURL(ctx)
}

func (s *Store) dropURLs() {
	s.urlMu.Lock()
	s.urls = nil
	s.urlMu.Unlock()
}

// putURL keeps u, got by sess, for the next upload.
func (s *Store) putURL(u *base.URL, sess *session) {
	s.urlMu.Lock()
	defer s.urlMu.Unlock()
	if len(s.urls) < 16 && s.sess.Load() == sess {
		s.urls = append(s.urls, pooledURL{u, sess})
	}
}

// Download wraps b2_download_file_by_name. The returned reader fails when
// no byte arrives for Timeout.
func (s *Store) Download(ctx context.Context, name string, off, length int64) (io.ReadCloser, core.FileInfo, error) {
	if length == 0 {
		fi, err := s.Stat(ctx, name)
		return io.NopCloser(strings.NewReader("")), core.FileInfo{ID: fi.ID}, err
	}
	var rc io.ReadCloser
	var fi core.FileInfo
	err := s.retry(ctx, "b2_download_file_by_name", func(actx context.Context) error {
		// The attempt's context must outlive this function: the body is
		// read later. Until the answer comes the attempt's deadline
		// applies; then an idle timer, and an outage, end the body.
		dctx, cancelBody := context.WithCancel(ctx)
		cancel := cancelBody
		stopAttempt := context.AfterFunc(actx, cancel)
		timer := time.AfterFunc(s.cfg.Timeout, cancel)
		n := length
		if n < 0 {
			n = 0 // blazer: 0 means "to the end"
		}
		fr, err := s.sess.Load().bucket.DownloadFileByName(dctx, name, off, n, false)
		if !stopAttempt() {
			err = errors.Join(err, actx.Err()) // the attempt ended as the answer came
		}
		if err == nil {
			stopOutage := context.AfterFunc(s.health.outage(), cancelBody)
			cancel = func() { stopOutage(); cancelBody() }
		}
		if err != nil {
			if fr != nil {
				fr.Close()
			}
			timer.Stop()
			cancel()
			if st, _, _ := base.MsgCode(err); st == http.StatusRequestedRangeNotSatisfiable {
				rc = io.NopCloser(strings.NewReader(""))
				return nil
			}
			return err
		}
		rc = &idleReader{rc: fr, timer: timer, idle: s.cfg.Timeout, cancel: cancel, h: s.health}
		fi = core.FileInfo{ID: fr.ID, Size: int64(fr.ContentLength)}
		return nil
	})
	if err != nil {
		return nil, core.FileInfo{}, err
	}
	return rc, fi, nil
}

// Stat wraps a HEAD of b2_download_file_by_name (Class B).
func (s *Store) Stat(ctx context.Context, name string) (core.FileInfo, error) {
	var fi core.FileInfo
	err := s.retry(ctx, "b2_download_file_by_name", func(ctx context.Context) error {
		fr, err := s.sess.Load().bucket.DownloadFileByName(ctx, name, 0, 0, true)
		if err != nil {
			return err
		}
		fr.Close()
		fi = core.FileInfo{Name: name, ID: fr.ID, Size: int64(fr.ContentLength), Modified: infoMtime(fr.Info)}
		return nil
	})
	return fi, err
}

// Copy wraps b2_copy_file (which blazer does not implement). The copy
// keeps the source's file info, its group mark included. An attempt whose
// outcome is unknown is repeated: a duplicate copy is one more
// unreferenced version, and the last one is returned.
func (s *Store) Copy(ctx context.Context, src, srcID, dst string) (core.FileInfo, error) {
	var fi core.FileInfo
	err := s.retry(ctx, "b2_copy_file", func(ctx context.Context) error {
		var err error
		fi, err = s.sess.Load().info.copy(ctx, srcID, dst)
		return err
	})
	return fi, err
}

// List wraps b2_list_file_names, 1,000 names a call.
func (s *Store) List(ctx context.Context, prefix string) ([]core.FileInfo, error) {
	var out []core.FileInfo
	next := ""
	for {
		var files []*base.File
		err := s.retry(ctx, "b2_list_file_names", func(ctx context.Context) error {
			var err error
			files, next, err = s.sess.Load().bucket.ListFileNames(ctx, 1000, next, prefix, "")
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			fi := core.FileInfo{Name: f.Name, ID: f.ID, Size: f.Size, Modified: f.Timestamp}
			if f.Info != nil {
				fi.Group = f.Info.Info[groupInfoKey]
			}
			out = append(out, fi)
		}
		if next == "" || len(files) == 0 {
			return out, nil
		}
	}
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

// Delete wraps b2_delete_file_version. After an attempt whose outcome is
// unknown, a repeat's file_not_present means that attempt deleted it.
func (s *Store) Delete(ctx context.Context, name, id string) error {
	return s.retry(ctx, "b2_delete_file_version", func(ctx context.Context) error {
		return s.sess.Load().bucket.File(id, name).DeleteFileVersion(ctx)
	})
}

// idleReader cancels its download when Read makes no progress for idle.
type idleReader struct {
	rc     io.ReadCloser
	timer  *time.Timer
	idle   time.Duration
	cancel context.CancelFunc
	h      *health
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	r.timer.Reset(r.idle)
	if n > 0 {
		r.h.progress()
		r.h.answered()
	}
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: download broke off: %v", core.ErrUnavailable, err)
	}
	return n, err
}

func (r *idleReader) Close() error {
	r.timer.Stop()
	r.cancel()
	return r.rc.Close()
}

// partWorkers is how many parts of a large file are uploaded at once.
const partWorkers = 4

// withSHA1 returns r followed by the 40 hex digits of its SHA1, the body B2
// takes with X-Bz-Content-Sha1: hex_digits_at_end, and a function that
// returns those digits once the body was read.
func withSHA1(r io.Reader) (io.Reader, func() string) {
	h := sha1.New()
	sum := func() string { return hex.EncodeToString(h.Sum(nil)) }
	return io.MultiReader(io.TeeReader(r, h), &lazyReader{f: func() io.Reader {
		return strings.NewReader(sum())
	}}), sum
}

// lazyReader reads from the reader f returns when first read.
type lazyReader struct {
	f func() io.Reader
	r io.Reader
}

func (l *lazyReader) Read(p []byte) (int, error) {
	if l.r == nil {
		l.r = l.f()
	}
	return l.r.Read(p)
}

// budget is the wait for the answer to a call that makes B2 handle n bytes
// (an upload's, once its body is sent; a large file's finish, which
// assembles its parts): CallTimeout plus one second per MiB.
func (s *Store) budget(n int64) time.Duration {
	return s.cfg.CallTimeout + time.Duration(n>>20)*time.Second
}
