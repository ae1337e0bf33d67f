package fs

import (
	"context"
	"reflect"
	"strings"
	"time"

	"bazil.org/fuse"
	fusefs "bazil.org/fuse/fs"
)

// serverConfig returns the bazil server configuration: nil, unless
// Config.ObserveOp asks for the latency of every request.
func (f *FS) serverConfig() *fusefs.Config {
	observe := f.cfg.ObserveOp
	if observe == nil {
		return nil
	}
	return &fusefs.Config{
		// bazil gives every request a context that it cancels once the
		// response has been sent (or the kernel interrupted the request),
		// so the time to that moment is the operation's latency, measured
		// without touching any handler.
		WithContext: func(ctx context.Context, req fuse.Request) context.Context {
			start := time.Now()
			op := opName(req)
			context.AfterFunc(ctx, func() { observe(op, time.Since(start)) })
			return ctx
		},
	}
}

// opName names a request by its type: *fuse.ReadRequest is "Read".
func opName(req fuse.Request) string {
	t := reflect.TypeOf(req)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return strings.TrimSuffix(t.Name(), "Request")
}
