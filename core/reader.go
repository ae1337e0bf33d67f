package core

import (
	"bytes"
	"context"
	"errors"
	"io"
)

// Reader reads one version of an object. Key is the version it reads: pass
// it to NewWriter or Commit to replace exactly that version. The data is
// fetched on the first Read, so a Reader that is never read costs no
// download. A Reader is not safe for concurrent use.
type Reader struct {
	Key string

	g    *Group
	ctx  context.Context
	name string
	off  int64
	rc   io.ReadCloser // nil until the first Read
	err  error         // sticky
}

// NewReader returns a reader of the current version of name, as a view no
// older than IndexTTL shows it, or ErrNotExist.
func (g *Group) NewReader(ctx context.Context, name string) (*Reader, error) {
	key, err := g.key(ctx, name)
	if err != nil {
		return nil, err
	}
	return g.OpenVersion(ctx, name, key), nil
}

// OpenVersion returns a reader of version key of name. The version stays
// readable until the grace period after it is superseded has passed.
func (g *Group) OpenVersion(ctx context.Context, name, key string) *Reader {
	return &Reader{Key: key, g: g, ctx: ctx, name: name}
}

// Read reads the version, resuming once at the current offset if the
// connection breaks.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	for attempt := 0; ; attempt++ {
		if r.rc == nil {
			fn := r.g.file(r.name, r.Key)
			b, ok := r.g.small.Get(fn)
			if !ok {
				b, ok = r.g.inlineVersion(r.ctx, r.name, r.Key)
			}
			if ok {
				r.rc = io.NopCloser(bytes.NewReader(b[min(r.off, int64(len(b))):]))
			} else {
				rc, fi, err := r.g.store.Download(r.ctx, fn, r.off, -1)
				if err != nil {
					r.err = r.wrap(err)
					return 0, r.err
				}
				if fi.ID != "" { // a ranged read past the end answers no file
					r.g.ids.Add(fn, fi.ID)
				}
				if r.off == 0 && fi.Size <= smallMax {
					rc = &keepSmall{rc: rc, g: r.g, file: fn}
				}
				r.rc = rc
			}
		}
		n, err := r.rc.Read(p)
		r.off += int64(n)
		if err == nil || err == io.EOF {
			if err == io.EOF {
				r.err = io.EOF
			}
			return n, err
		}
		r.rc.Close()
		r.rc = nil
		if n > 0 {
			return n, nil
		}
		if attempt > 0 || r.ctx.Err() != nil {
			r.err = r.wrap(err)
			return 0, r.err
		}
	}
}

// Seek sets the offset of the next Read (io.SeekStart and io.SeekCurrent
// only: the size is not known before the download).
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	default:
		return r.off, errors.New("core: Reader.Seek: only io.SeekStart and io.SeekCurrent")
	}
	if offset < 0 {
		return r.off, errors.New("core: Reader.Seek: negative offset")
	}
	if offset != r.off && r.rc != nil {
		r.rc.Close()
		r.rc = nil
	}
	if r.err == io.EOF {
		r.err = nil
	}
	r.off = offset
	return offset, nil
}

// ReadAt reads len(p) bytes at off with one ranged download.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if b, ok := r.g.inlineVersion(r.ctx, r.name, r.Key); ok {
		if off >= int64(len(b)) {
			return 0, io.EOF
		}
		n := copy(p, b[off:])
		if n < len(p) {
			return n, io.EOF
		}
		return n, nil
	}
	rc, fi, err := r.g.store.Download(r.ctx, r.g.file(r.name, r.Key), off, int64(len(p)))
	if err != nil {
		return 0, r.wrap(err)
	}
	defer rc.Close()
	if fi.ID != "" {
		r.g.ids.Add(r.g.file(r.name, r.Key), fi.ID)
	}
	n, err := io.ReadFull(rc, p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return n, err
}

// Close releases the download, if any.
func (r *Reader) Close() error {
	if r.rc != nil {
		r.rc.Close()
		r.rc = nil
	}
	if r.err == nil {
		r.err = errors.New("read of closed Reader")
	}
	return nil
}

func (r *Reader) wrap(err error) error {
	return &OpError{Op: "read", Group: r.g.name, Name: r.name, Err: err}
}

// keepSmall remembers a small version once it has been read to its end.
type keepSmall struct {
	rc   io.ReadCloser
	g    *Group
	file string
	buf  []byte
}

func (k *keepSmall) Read(p []byte) (int, error) {
	n, err := k.rc.Read(p)
	if len(k.buf)+n <= smallMax {
		k.buf = append(k.buf, p[:n]...)
		if err == io.EOF {
			k.g.small.Add(k.file, k.buf)
		}
	}
	return n, err
}

func (k *keepSmall) Close() error { return k.rc.Close() }
