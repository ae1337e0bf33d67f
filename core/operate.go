package core

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
)

// OperateStream calls f with the contents of name (empty when it does not
// exist) and replaces name with what f returns, if no other writer changed
// name in between; otherwise it calls f again on the new contents, until
// the commit succeeds, f fails or ctx ends, or maxOperate tries failed
// (ErrConflict). A version that was deleted while the view still showed
// it (superseded longer than Options.Grace ago) is read again from a
// reloaded view. Between tries it backs off with jitter, so that writers
// contending for one object do not spin. The reader f returns is read
// until its first error. Changes to other objects of the group never make f
// run again.
func (g *Group) OperateStream(ctx context.Context, name string, f func(io.Reader) (io.Reader, error)) error {
	if err := g.checkName(name); err != nil {
		return &OpError{Op: "operate", Group: g.name, Name: name, Err: err}
	}
	for try := 0; ; try++ {
		if try > 0 && !sleep(ctx, g.opts.Clock, casBackoff(try-1)) {
			return ctx.Err()
		}
		var in io.ReadCloser = io.NopCloser(bytes.NewReader(nil))
		key := ""
		r, err := g.NewReader(ctx, name)
		switch {
		case err == nil:
			in, key = r, r.Key
		case !errors.Is(err, ErrNotExist):
			return err
		}
		out, err := f(in)
		in.Close()
		if err != nil && r != nil && errors.Is(r.err, ErrNotExist) && try+1 < maxOperate {
			// The version was replaced and deleted after a view within
			// IndexTTL showed it: read the current one.
			if _, err := g.reload(ctx); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		err = g.commitStream(ctx, name, key, out)
		if errors.Is(err, ErrConflict) && try+1 < maxOperate {
			continue
		}
		return err
	}
}

// maxOperate bounds the tries of one OperateStream.
const maxOperate = 1000

func (g *Group) commitStream(ctx context.Context, name, key string, out io.Reader) error {
	w, err := g.NewWriter(ctx, name, key)
	if err != nil {
		io.Copy(io.Discard, out)
		return err
	}
	if _, err := io.Copy(w, out); err != nil {
		io.Copy(io.Discard, out)
		return err
	}
	return w.Close()
}

// Operate is OperateStream on byte slices: f gets nil when name does not
// exist.
func (g *Group) Operate(ctx context.Context, name string, f func([]byte) ([]byte, error)) error {
	return g.OperateStream(ctx, name, func(r io.Reader) (io.Reader, error) {
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		if len(b) == 0 {
			b = nil
		}
		out, err := f(b)
		if err != nil {
			return nil, err
		}
		return bytes.NewReader(out), nil
	})
}

// OperateJSON transforms the JSON document name. f gets a pointer to a new
// value of t's type (t itself is never altered): the zero value when name
// does not exist or is empty, else the decoded document. What f returns is
// stored as JSON.
func (g *Group) OperateJSON(ctx context.Context, name string, t any, f func(any) (any, error)) error {
	typ := reflect.TypeOf(t)
	for typ != nil && typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ == nil {
		return errors.New("OperateJSON: t must not be nil")
	}
	return g.Operate(ctx, name, func(b []byte) ([]byte, error) {
		in := reflect.New(typ).Interface()
		if len(b) > 0 {
			if err := json.Unmarshal(b, in); err != nil {
				return nil, err
			}
		}
		out, err := f(in)
		if err != nil {
			return nil, err
		}
		return json.Marshal(out)
	})
}
