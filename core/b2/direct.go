package b2

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Backblaze/blazer/base"

	"github.com/b2cfs/b2cfs/core"
)

// direct is the api that makes each call once, on blazer's base package
// and the bucket-info client, with the current session. It has no
// deadlines of its own and does not classify errors. Safe for concurrent
// use.
type direct struct {
	cfg  Config
	sess atomic.Pointer[session] // nil until the first authorisation

	urlMu sync.Mutex
	urls  []pooledURL // GUARDED_BY(urlMu); idle upload URLs, each used by one upload at a time
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

// pooledURL is an idle upload URL and the session that got it.
type pooledURL struct {
	u    *base.URL
	sess *session
}

var errNoBucket = errors.New("no such bucket")

func (d *direct) authorizeAccount(ctx context.Context) error {
	b, err := base.AuthorizeAccount(ctx, d.cfg.KeyID, d.cfg.Key, base.SetAPIBase(d.cfg.Endpoint), base.Transport(d.cfg.Transport), base.UserAgent("b2cfs"))
	if err != nil {
		return err
	}
	ic := &infoClient{endpoint: d.cfg.Endpoint, keyID: d.cfg.KeyID, key: d.cfg.Key, hc: &http.Client{Transport: d.cfg.Transport}}
	if err := ic.authorize(ctx); err != nil {
		return err
	}
	buckets, err := b.ListBuckets(ctx, d.cfg.Bucket)
	if err != nil {
		return err
	}
	for _, bk := range buckets {
		if bk.Name == d.cfg.Bucket {
			d.sess.Store(&session{b2: b, bucket: bk, info: ic, bucketID: bk.ID})
			d.dropURLs()
			return nil
		}
	}
	return fmt.Errorf("%w: no bucket %q in this account", errNoBucket, d.cfg.Bucket)
}

func (d *direct) listBuckets(ctx context.Context) (core.BucketInfo, error) {
	return d.sess.Load().info.get(ctx, d.cfg.Bucket)
}

func (d *direct) updateBucket(ctx context.Context, rev int64, info map[string]string) (core.BucketInfo, error) {
	sess := d.sess.Load()
	return sess.info.update(ctx, sess.bucketID, rev, info)
}

func (d *direct) uploadFile(ctx context.Context, name string, data io.ReaderAt, size int64, info map[string]string) (core.FileInfo, error) {
	sess := d.sess.Load()
	u, err := d.uploadURL(ctx, sess)
	if err == nil {
		// The SHA1 follows the data (hex_digits_at_end): one pass over it.
		r, _ := withSHA1(io.NewSectionReader(data, 0, size))
		var f *base.File
		if f, err = u.UploadFile(ctx, r, int(size)+40, name, "application/octet-stream", "hex_digits_at_end", info); err == nil {
			d.putURL(u, sess)
			return core.FileInfo{Name: name, ID: f.ID, Size: size, Modified: f.Timestamp}, nil
		}
	}
	// B2 says to get a new URL after any failure; the pooled ones may
	// share it.
	d.dropURLs()
	return core.FileInfo{}, err
}

// large is lf through sess. Every call reaches lf through the current
// session, so that calls after a re-authorisation carry the new token;
// the part SHA1s are kept by the caller for the same reason.
func (d *direct) large(sess *session, lf largeFile, sums map[int]string) *base.LargeFile {
	return sess.bucket.File(lf.id, lf.name).CompileParts(lf.size, sums)
}

func (d *direct) startLargeFile(ctx context.Context, name string, size int64, info map[string]string) (largeFile, error) {
	f, err := d.sess.Load().bucket.StartLargeFile(ctx, name, "application/octet-stream", info)
	if err != nil {
		return largeFile{}, err
	}
	return largeFile{id: f.ID, name: name, size: size}, nil
}

func (d *direct) uploadPart(ctx context.Context, u *partURL, lf largeFile, part int, data io.ReaderAt, off, n int64) (string, error) {
	if sess := d.sess.Load(); u.fc == nil || u.sess != sess {
		fc, err := d.large(sess, lf, nil).GetUploadPartURL(ctx)
		if err != nil {
			d.dropURLs()
			return "", err
		}
		*u = partURL{fc: fc, sess: sess}
	}
	r, sum := withSHA1(io.NewSectionReader(data, off, n))
	if _, err := u.fc.UploadPart(ctx, r, "hex_digits_at_end", int(n)+40, part); err != nil {
		*u = partURL{}
		d.dropURLs()
		return "", err
	}
	return sum(), nil
}

func (d *direct) finishLargeFile(ctx context.Context, lf largeFile, sums map[int]string) (core.FileInfo, error) {
	f, err := d.large(d.sess.Load(), lf, sums).FinishLargeFile(ctx)
	if err != nil {
		return core.FileInfo{}, err
	}
	return core.FileInfo{Name: lf.name, ID: f.ID, Size: lf.size, Modified: f.Timestamp}, nil
}

// getFileInfo reads lf's state: "upload" once finished, "start" before.
func (d *direct) getFileInfo(ctx context.Context, lf largeFile) (core.FileInfo, bool, error) {
	st, err := d.sess.Load().bucket.File(lf.id, lf.name).GetFileInfo(ctx)
	if err != nil {
		return core.FileInfo{}, false, err
	}
	return core.FileInfo{Name: lf.name, ID: lf.id, Size: lf.size, Modified: st.Timestamp}, st.Status == "upload", nil
}

func (d *direct) cancelLargeFile(ctx context.Context, lf largeFile) error {
	return d.large(d.sess.Load(), lf, nil).CancelLargeFile(ctx)
}

func (d *direct) downloadFileByName(ctx context.Context, name string, off, n int64) (io.ReadCloser, core.FileInfo, error) {
	fr, err := d.sess.Load().bucket.DownloadFileByName(ctx, name, off, max(n, 0), false) // blazer: 0 means "to the end"
	if err != nil {
		if fr != nil {
			fr.Close()
		}
		if st, _, _ := base.MsgCode(err); st == http.StatusRequestedRangeNotSatisfiable {
			return io.NopCloser(strings.NewReader("")), core.FileInfo{}, nil
		}
		return nil, core.FileInfo{}, err
	}
	return fr, core.FileInfo{ID: fr.ID, Size: int64(fr.ContentLength)}, nil
}

func (d *direct) headFileByName(ctx context.Context, name string) (core.FileInfo, error) {
	fr, err := d.sess.Load().bucket.DownloadFileByName(ctx, name, 0, 0, true)
	if err != nil {
		return core.FileInfo{}, err
	}
	fr.Close()
	return core.FileInfo{Name: name, ID: fr.ID, Size: int64(fr.ContentLength), Modified: infoMtime(fr.Info)}, nil
}

// copyFile sends b2_copy_file itself: blazer does not implement it.
func (d *direct) copyFile(ctx context.Context, srcID, dst string) (core.FileInfo, error) {
	return d.sess.Load().info.copy(ctx, srcID, dst)
}

func (d *direct) listFileNames(ctx context.Context, prefix, start string) ([]core.FileInfo, string, error) {
	files, next, err := d.sess.Load().bucket.ListFileNames(ctx, 1000, start, prefix, "")
	if err != nil {
		return nil, "", err
	}
	out := make([]core.FileInfo, 0, len(files))
	for _, f := range files {
		fi := core.FileInfo{Name: f.Name, ID: f.ID, Size: f.Size, Modified: f.Timestamp}
		if f.Info != nil {
			fi.Group = f.Info.Info[groupInfoKey]
		}
		out = append(out, fi)
	}
	return out, next, nil
}

func (d *direct) deleteFileVersion(ctx context.Context, name, id string) error {
	return d.sess.Load().bucket.File(id, name).DeleteFileVersion(ctx)
}

// probe asks B2 for an upload URL (class A, free) and keeps it for the next
// upload. Any answer of B2 below 500, an error answer included, means
// reachable; a 5xx says B2 cannot serve, which calls fail on as they do
// without an answer. Before the first authorisation there is nothing to
// probe with, and no evidence of an outage.
func (d *direct) probe(ctx context.Context) error {
	sess := d.sess.Load()
	if sess == nil {
		return nil
	}
	start := time.Now()
	u, err := sess.bucket.GetUploadURL(ctx)
	if d.cfg.Observe != nil {
		d.cfg.Observe("b2_get_upload_url", Class("b2_get_upload_url"), errCode(err), time.Since(start))
	}
	if err == nil {
		d.putURL(u, sess)
		return nil
	}
	if ae, ok := asAPI(err); ok && ae.status < 500 {
		return nil
	}
	return err
}

// uploadURL returns an idle upload URL of sess, or gets a new one.
func (d *direct) uploadURL(ctx context.Context, sess *session) (*base.URL, error) {
	d.urlMu.Lock()
	for n := len(d.urls); n > 0; n-- {
		p := d.urls[n-1]
		d.urls = d.urls[:n-1]
		if p.sess == sess {
			d.urlMu.Unlock()
			return p.u, nil
		}
	}
	d.urlMu.Unlock()
	return sess.bucket.GetUploadURL(ctx)
}

func (d *direct) dropURLs() {
	d.urlMu.Lock()
	d.urls = nil
	d.urlMu.Unlock()
}

// putURL keeps u, got by sess, for the next upload.
func (d *direct) putURL(u *base.URL, sess *session) {
	d.urlMu.Lock()
	defer d.urlMu.Unlock()
	if len(d.urls) < 16 && d.sess.Load() == sess {
		d.urls = append(d.urls, pooledURL{u, sess})
	}
}

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
