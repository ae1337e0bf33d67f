package b2_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	blazer "github.com/Backblaze/blazer/b2"
	"github.com/Backblaze/blazer/x/consistent"

	"github.com/b2cfs/b2cfs/b2emu"
	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/b2"
	"github.com/b2cfs/b2cfs/core/storetest"
)

// pair is one bucket seen by core and by blazer's x/consistent, each with
// its own B2 client (two hosts).
type pair struct {
	srv    *b2emu.Server
	url    string
	bucket string
	core   *core.Group
	blazer *consistent.Group
	bb     *blazer.Bucket
}

// newPair makes a pair; core uses blazer's format unless opts says.
func newPair(t testing.TB, opts core.Options) *pair {
	t.Helper()
	if opts.Format == "" {
		opts.Format = core.FormatBlazer
	}
	srv, url := emulator(t, b2emu.Config{})
	bucket := fmt.Sprintf("bucket-%d", bucketSeq.Add(1))
	if err := srv.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	g, err := core.NewGroup(open(t, srv, url, b2.Config{Bucket: bucket}), "shared", simOptions(opts))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	p := &pair{srv: srv, url: url, bucket: bucket, core: g}
	p.blazer, p.bb = p.newBlazer(t)
	return p
}

// newBlazer returns a blazer group on its own client: blazer's Group is not
// safe for concurrent use.
func (p *pair) newBlazer(t testing.TB) (*consistent.Group, *blazer.Bucket) {
	t.Helper()
	ctx := context.Background()
	client, err := blazer.NewClient(ctx, "b2cfs-emu-key-id", "b2cfs-emu-key", blazer.APIBase(p.url), blazer.Transport(transport(t, p.url)))
	if err != nil {
		t.Fatal(err)
	}
	bb, err := client.Bucket(ctx, p.bucket)
	if err != nil {
		t.Fatal(err)
	}
	return consistent.NewGroup(bb, "shared"), bb
}

func blazerRead(t testing.TB, g *consistent.Group, name string) string {
	t.Helper()
	r, err := g.NewReader(context.Background(), name)
	if err != nil {
		t.Fatalf("blazer read %q: %v", name, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("blazer read %q: %v", name, err)
	}
	return string(b)
}

func TestBlazerInteropReadWrite(t *testing.T) { sim(t, testBlazerInteropReadWrite) }

func testBlazerInteropReadWrite(t *testing.T) {
	p := newPair(t, core.Options{IndexTTL: -1})
	ctx := testCtx(t)
	if _, err := p.core.Commit(ctx, "from-core", "", strings.NewReader("hello blazer"), 12); err != nil {
		t.Fatal(err)
	}
	if got := blazerRead(t, p.blazer, "from-core"); got != "hello blazer" {
		t.Fatalf("blazer reads %q", got)
	}
	if err := p.blazer.Operate(ctx, "from-blazer", func([]byte) ([]byte, error) { return []byte("hello core"), nil }); err != nil {
		t.Fatal(err)
	}
	r, err := p.core.NewReader(ctx, "from-blazer")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "hello core" {
		t.Fatalf("core reads %q", b)
	}
	names, err := p.blazer.List(ctx)
	if err != nil || len(names) != 2 {
		t.Fatalf("blazer lists %v, %v", names, err)
	}
	// A stale key from core is refused after blazer's write.
	k, _ := storetest.Key(ctx, p.core, "from-blazer")
	if err := p.blazer.Operate(ctx, "from-blazer", func([]byte) ([]byte, error) { return []byte("v2"), nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := p.core.Commit(ctx, "from-blazer", k, strings.NewReader("x"), 1); !errors.Is(err, core.ErrConflict) {
		t.Fatalf("stale commit after blazer's write: %v", err)
	}
}

func TestBlazerInteropIncrements(t *testing.T) { sim(t, testBlazerInteropIncrements) }

func testBlazerInteropIncrements(t *testing.T) {
	p := newPair(t, core.Options{})
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		bg, _ := p.newBlazer(t)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 8; i++ {
				var err error
				if w%2 == 0 {
					err = p.core.Operate(ctx, "counter", storetest.Increment)
				} else {
					err = bg.Operate(ctx, "counter", storetest.Increment)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := blazerRead(t, p.blazer, "counter"); got != "32" {
		t.Fatalf("counter = %s, want 32", got)
	}
}

func TestBlazerInteropMutex(t *testing.T) { sim(t, testBlazerInteropMutex) }

func testBlazerInteropMutex(t *testing.T) {
	p := newPair(t, core.Options{LeaseTTL: 5 * time.Second})
	ctx := testCtx(t)
	m := p.core.Mutex(ctx, "lock")
	if err := m.TryLock(ctx, core.Exclusive); err != nil {
		t.Fatal(err)
	}
	bm := p.blazer.Mutex(ctx, "lock")
	got := make(chan struct{})
	go func() { bm.Lock(); close(got) }()
	select {
	case <-got:
		t.Fatal("blazer's Mutex locked while core held the lock")
	case <-time.After(2500 * time.Millisecond):
	}
	if err := m.UnlockContext(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("blazer's Mutex did not get the released lock")
	}
	if err := p.core.Mutex(ctx, "lock").TryLock(ctx, core.Exclusive); !errors.Is(err, core.ErrLockHeld) {
		t.Fatalf("core locked while blazer held the lock: %v", err)
	}
	bm.Unlock()
	m2 := p.core.Mutex(ctx, "lock")
	if err := m2.LockContext(ctx, core.Exclusive); err != nil {
		t.Fatalf("core after blazer's unlock: %v", err)
	}
	m2.UnlockContext(ctx)
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
