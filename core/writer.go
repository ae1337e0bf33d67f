package core

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
)

// memLimit is how much a Writer buffers in memory before it spills to a
// temporary file.
const memLimit = 8 << 20

// Writer collects a new version of an object and commits it on Close. It is
// not safe for concurrent use.
type Writer struct {
	g    *Group
	ctx  context.Context
	key  string // the version being replaced; "" creates
	name string

	buf    bytes.Buffer
	file   *os.File // spill file once buf passes memLimit
	size   int64
	newKey string
	done   bool
}

// NewWriter returns a writer that replaces version key of name (an empty key
// creates name). Close commits only if name still has that key. Like every
// method of Group it takes the name before the key; blazer's x/consistent
// NewWriter takes (key, name).
func (g *Group) NewWriter(ctx context.Context, name, key string) (*Writer, error) {
	if err := g.checkName(name); err != nil {
		return nil, &OpError{Op: "write", Group: g.name, Name: name, Err: err}
	}
	return &Writer{g: g, ctx: ctx, key: key, name: name}, nil
}

// Write buffers p.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("write to closed Writer")
	}
	if w.file == nil && w.buf.Len()+len(p) > memLimit {
		f, err := os.CreateTemp("", "b2cfs-writer-")
		if err != nil {
			return 0, err
		}
		os.Remove(f.Name()) // unlinked: the space goes when the file is closed
		if _, err := f.Write(w.buf.Bytes()); err != nil {
			f.Close()
			return 0, err
		}
		w.buf = bytes.Buffer{}
		w.file = f
	}
	var n int
	var err error
	if w.file != nil {
		n, err = w.file.Write(p)
	} else {
		n, err = w.buf.Write(p)
	}
	w.size += int64(n)
	return n, err
}

// Close uploads the data and commits it. It returns ErrConflict (nothing
// stored changed) when name no longer has the writer's key.
func (w *Writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	var data io.ReaderAt = bytes.NewReader(w.buf.Bytes())
	if w.file != nil {
		defer w.file.Close()
		data = w.file
	}
	nk, err := w.g.Commit(w.ctx, w.name, w.key, data, w.size)
	w.newKey = nk
	return err
}

// Key returns the object's key after a successful Close.
func (w *Writer) Key() string { return w.newKey }
