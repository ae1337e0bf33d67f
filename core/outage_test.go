package core_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/memstore"
)

// darkStore is a memstore behind an endpoint that can go dark: while
// dark, BucketInfo waits for its context to end (a black hole), other
// calls fail with ErrUnavailable, and Outage's channel is closed once the
// store has declared the outage (declare).
type darkStore struct {
	*memstore.Store
	dark atomic.Bool
	mu   sync.Mutex
	out  chan struct{}
}

func newDarkStore() *darkStore { return &darkStore{Store: memstore.New(), out: make(chan struct{})} }

func (s *darkStore) BucketInfo(ctx context.Context) (core.BucketInfo, error) {
	if s.dark.Load() {
		<-ctx.Done()
		return core.BucketInfo{}, fmt.Errorf("%w: no answer: %v", core.ErrUnavailable, ctx.Err())
	}
	return s.Store.BucketInfo(ctx)
}

func (s *darkStore) UpdateBucketInfo(ctx context.Context, rev int64, info map[string]string) (core.BucketInfo, error) {
	if s.dark.Load() {
		return core.BucketInfo{}, fmt.Errorf("%w: refused", core.ErrUnavailable)
	}
	return s.Store.UpdateBucketInfo(ctx, rev, info)
}

func (s *darkStore) Outage() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out
}

func (s *darkStore) declare() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.out)
}

// TestStaleOnOutage: with StaleOnOutage, reads answer from the last view
// while B2 does not answer, as soon as the store declares the outage and
// without waiting for the hung reload; commits still fail. Without it,
// reads fail.
func TestStaleOnOutage(t *testing.T) {
	bothFormatsEach(t, []string{"stale=true", "stale=false"}, func(t *testing.T, format, c string) {
		testStaleOnOutage(t, format, c == "stale=true")
	})
}

func testStaleOnOutage(t *testing.T, format string, stale bool) {
	s := newDarkStore()
	opts := core.Options{StaleOnOutage: stale, IndexTTL: time.Second}
	if !stale {
		opts.LoadTimeout = 500 * time.Millisecond // the hung reload's end
	}
	g := newGroup(t, s, format, opts)
	ctx := testCtx(t)
	if err := put(ctx, g, "f", "v1"); err != nil {
		t.Fatal(err)
	}
	if got := read(t, g, "f"); got != "v1" {
		t.Fatalf("f = %q before the outage", got)
	}

	s.dark.Store(true)
	time.Sleep(time.Minute) // the view is older than IndexTTL
	s.declare()
	done := make(chan error, 1)
	var got string
	go func() {
		r, err := g.NewReader(ctx, "f")
		if err == nil {
			var b []byte
			b, err = io.ReadAll(r)
			got = string(b)
			r.Close()
		}
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("a read during a declared outage waited for the hung reload")
	}
	if stale && (err != nil || got != "v1") {
		t.Fatalf("read during the outage: %q, %v; want the last view's v1", got, err)
	}
	if !stale && !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("read during the outage without StaleOnOutage: %q, %v; want ErrUnavailable", got, err)
	}
	if err := put(ctx, g, "f", "v2"); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("commit during the outage: %v, want ErrUnavailable", err)
	}

	s.dark.Store(false)
	if err := put(ctx, g, "f", "v3"); err != nil {
		t.Fatalf("commit after the outage: %v", err)
	}
	if got := read(t, g, "f"); got != "v3" {
		t.Fatalf("f = %q after the outage, want v3", got)
	}
}
