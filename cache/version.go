package cache

import (
	"context"
	"fmt"
	"io"
	"os"
)

// Version is one cached version, held by its user until Release. Its
// methods are safe for concurrent use.
type Version struct {
	c      *Cache
	id     string
	cancel context.CancelFunc // ends the fill; nil for versions from Put

	// All fields below are GUARDED_BY(c.mu).
	f        *os.File      // the data; closed once dropped and no longer held
	refs     int           // holders
	written  int64         // bytes on disk so far
	size     int64         // total, once done
	done     bool          // the fill ended (err says how)
	err      error         // why the fill failed
	dropped  bool          // no longer in the cache: its name is deleted
	progress chan struct{} // closed and replaced whenever written or done change
}

func (v *Version) isDone() bool { return v.done }

// fill runs fn and records its progress. Only the fill goroutine writes to
// v.f, at offsets readers have not been told about yet.
func (v *Version) fill(ctx context.Context, fn FillFunc) {
	w := &progressWriter{v: v}
	err := fn(ctx, w)
	c := v.c
	c.mu.Lock()
	var evicted []*Version
	if err != nil {
		v.err = fmt.Errorf("cache: fill: %w", err)
		c.removeLocked(v)
	} else {
		v.size = v.written
		if !v.dropped {
			c.used += v.size
		}
	}
	v.done = true
	v.notifyLocked()
	if v.refs == 0 && v.dropped {
		evicted = append(evicted, v)
	}
	evicted = append(evicted, c.evictLocked()...)
	c.mu.Unlock()
	v.cancel()
	closeAll(evicted)
}

// fail marks a version that could not even start.
func (v *Version) fail(err error) {
	v.err = fmt.Errorf("cache: %w", err)
	v.done = true
	v.dropped = true
	close(v.progress)
}

func (v *Version) notifyLocked() {
	close(v.progress)
	v.progress = make(chan struct{})
}

type progressWriter struct {
	v   *Version
	off int64
}

func (w *progressWriter) Write(p []byte) (int, error) {
	n, err := w.v.f.WriteAt(p, w.off)
	w.off += int64(n)
	w.v.c.stats.filled.Add(int64(n))
	c := w.v.c
	c.mu.Lock()
	w.v.written = w.off
	w.v.notifyLocked()
	c.mu.Unlock()
	return n, err
}

// wait blocks until the bytes [0, end) are on disk or the fill ended, and
// returns how many bytes are available and whether the fill is done.
func (v *Version) wait(ctx context.Context, end int64) (avail int64, done bool, err error) {
	c := v.c
	for {
		c.mu.Lock()
		avail, done, err, ch := v.written, v.done, v.err, v.progress
		c.mu.Unlock()
		if err != nil {
			return 0, true, err
		}
		if done || avail >= end {
			return avail, done, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, false, ctx.Err()
		}
	}
}

// ReadAt reads len(p) bytes at off, waiting while they are being filled. It
// returns io.EOF with a short count at the end of the version, and ctx.Err()
// if ctx ends first.
func (v *Version) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	avail, done, err := v.wait(ctx, off+int64(len(p)))
	if err != nil {
		return 0, err
	}
	if off >= avail {
		return 0, io.EOF
	}
	want := p
	if off+int64(len(p)) > avail {
		want = p[:avail-off]
	}
	n, err := v.f.ReadAt(want, off)
	if err == nil && n < len(p) && done {
		err = io.EOF
	}
	return n, err
}

// Wait blocks until the version is complete and returns its size.
func (v *Version) Wait(ctx context.Context) (int64, error) {
	for {
		avail, done, err := v.wait(ctx, 1<<62)
		if err != nil || done {
			return avail, err
		}
	}
}

// CopyTo writes the whole version to w, waiting for it to be complete.
func (v *Version) CopyTo(ctx context.Context, w io.Writer) (int64, error) {
	size, err := v.Wait(ctx)
	if err != nil {
		return 0, err
	}
	return io.Copy(w, io.NewSectionReader(v.f, 0, size))
}

// Release drops the caller's hold. The version must not be used after.
func (v *Version) Release() { v.c.release(v) }
