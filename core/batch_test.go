package core_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/memstore"
	"github.com/b2cfs/b2cfs/core/storetest"
)

// gatedStore holds back the first b2_update_bucket after arm until
// release, so that a test can queue changes behind it.
type gatedStore struct {
	*memstore.Store
	armed   atomic.Bool
	held    chan struct{} // receives once the held update waits
	release chan struct{}
}

func newGatedStore() *gatedStore {
	return &gatedStore{Store: memstore.New(), held: make(chan struct{}, 1), release: make(chan struct{})}
}

func (s *gatedStore) UpdateBucketInfo(ctx context.Context, rev int64, info map[string]string) (core.BucketInfo, error) {
	if s.armed.CompareAndSwap(true, false) {
		s.held <- struct{}{}
		<-s.release
	}
	return s.Store.UpdateBucketInfo(ctx, rev, info)
}

// commitBehindGate commits n new objects f0..f(n-1) to g at once: f0's
// update is held by s's gate until the other n-1 commits are queued
// behind it, then released. It returns each commit's error.
func commitBehindGate(t *testing.T, ctx context.Context, s *gatedStore, g *core.Group, n int) []error {
	t.Helper()
	s.armed.Store(true)
	var wg sync.WaitGroup
	errs := make([]error, n)
	commit := func(i int) {
		wg.Go(func() {
			_, errs[i] = g.Commit(ctx, fmt.Sprintf("f%d", i), "", strings.NewReader(fmt.Sprint(i)), 1)
		})
	}
	commit(0)
	<-s.held // the first commit's update is on its way
	for i := 1; i < n; i++ {
		commit(i)
	}
	waitFor(t, fmt.Sprintf("%d queued commits", n-1), func() bool { return g.Queued() == n-1 })
	close(s.release)
	wg.Wait()
	return errs
}

// waitFor polls cond with a generous bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestConcurrentCommitsShareUpdates(t *testing.T) {
	bothFormats(t, testConcurrentCommitsShareUpdates)
}

// Eight commits of different files at once cost two updates: the first
// goes alone, the seven that queued behind it share the second.
func testConcurrentCommitsShareUpdates(t *testing.T, format string) {
	ctx := testCtx(t)
	s := newGatedStore()
	g := newGroup(t, s, format, core.Options{})
	if _, err := g.Commit(ctx, "seed", "", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	before := s.Calls()
	errs := commitBehindGate(t, ctx, s, g, 8)
	for i, err := range errs {
		if err != nil {
			t.Errorf("commit f%d: %v", i, err)
		}
	}
	after := s.Calls()
	if d := after["UpdateBucketInfo"] - before["UpdateBucketInfo"]; d != 2 {
		t.Errorf("8 concurrent commits made %d updates, want 2", d)
	}
	if d := after["BucketInfo"] - before["BucketInfo"]; d != 0 {
		t.Errorf("8 concurrent commits made %d listings, want 0", d)
	}
	for i := range errs {
		if got := read(t, g, fmt.Sprintf("f%d", i)); got != fmt.Sprint(i) {
			t.Errorf("f%d = %q, want %q", i, got, fmt.Sprint(i))
		}
	}
}

func TestBatchConflictFailsAlone(t *testing.T) { bothFormats(t, testBatchConflictFailsAlone) }

// A change whose precondition fails leaves its batch with ErrConflict;
// the others in the same update land.
func testBatchConflictFailsAlone(t *testing.T, format string) {
	ctx := testCtx(t)
	s := newGatedStore()
	g := newGroup(t, s, format, core.Options{})
	keys := map[string]string{}
	for _, n := range []string{"a", "b", "c"} {
		k, err := g.Commit(ctx, n, "", strings.NewReader(n+"0"), 2)
		if err != nil {
			t.Fatal(err)
		}
		keys[n] = k
	}
	s.armed.Store(true)
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := g.Commit(ctx, "first", "", strings.NewReader("1"), 1); err != nil {
			t.Errorf("commit first: %v", err)
		}
	})
	<-s.held
	errs := map[string]error{}
	var mu sync.Mutex
	for _, n := range []string{"a", "b", "c"} {
		key := keys[n]
		if n == "b" {
			key = strings.Repeat("0", 40) // not b's version: someone else's view
		}
		wg.Go(func() {
			_, err := g.Commit(ctx, n, key, strings.NewReader(n+"1"), 2)
			mu.Lock()
			errs[n] = err
			mu.Unlock()
		})
	}
	waitFor(t, "three queued commits", func() bool { return g.Queued() == 3 })
	close(s.release)
	wg.Wait()
	if errs["a"] != nil || errs["c"] != nil {
		t.Errorf("commits of a and c: %v, %v; want both to land", errs["a"], errs["c"])
	}
	if !errors.Is(errs["b"], core.ErrConflict) {
		t.Errorf("commit of b on a wrong version: %v, want ErrConflict", errs["b"])
	}
	for n, want := range map[string]string{"a": "a1", "b": "b0", "c": "c1", "first": "1"} {
		if got := read(t, g, n); got != want {
			t.Errorf("%s = %q, want %q", n, got, want)
		}
	}
}

func TestBatchUnderLostReplies(t *testing.T) {
	bothFormatsEach(t, []string{"reply lost", "refused"}, testBatchUnderLostReplies)
}

// A batch whose update B2 applied while the reply was lost, or which
// failed before B2 saw it, still tells each of its changes the truth:
// every commit reported done is stored, every one reported failed is not,
// and none is left unknown.
func testBatchUnderLostReplies(t *testing.T, format, fault string) {
	ctx := testCtx(t)
	s := newGatedStore()
	g := newGroup(t, s, format, core.Options{})
	if _, err := g.Commit(ctx, "seed", "", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	// The second update from now on, the batch's, meets the fault.
	var updates atomic.Int32
	faultHere := func(op string) bool { return op == "UpdateBucketInfo" && updates.Add(1) == 2 }
	injected := errors.New("injected")
	switch fault {
	case "reply lost":
		s.SetLostReply(func(op string) error {
			if faultHere(op) {
				return injected
			}
			return nil
		})
	case "refused":
		s.SetFault(func(op string) error {
			if faultHere(op) {
				return fmt.Errorf("%w: %w", core.ErrUnavailable, injected)
			}
			return nil
		})
	}
	errs := commitBehindGate(t, ctx, s, g, 6)
	s.SetLostReply(nil)
	s.SetFault(nil)
	if updates.Load() < 2 {
		t.Fatal("the fault was never injected")
	}
	names, err := newGroup(t, s.Store, format, core.Options{}).List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		name := fmt.Sprintf("f%d", i)
		stored := slices.Contains(names, name)
		switch {
		case errors.Is(err, core.ErrUnknownOutcome):
			t.Errorf("commit %s: outcome left unknown: %v", name, err)
		case err == nil && !stored:
			t.Errorf("commit %s reported done, not stored", name)
		case err != nil && stored:
			t.Errorf("commit %s reported failed (%v), but stored", name, err)
		}
	}
}

// A batch that would overflow a blazer-format index goes one change at a
// time: the changes that fit land, only those that do not fail with
// ErrGroupFull, and the store keeps nothing of them.
func TestBatchOverflowGoesOneByOne(t *testing.T) { sim(t, testBatchOverflowGoesOneByOne) }

func testBatchOverflowGoesOneByOne(t *testing.T) {
	ctx := testCtx(t)
	s := newGatedStore()
	g := newGroup(t, s, core.FormatBlazer, core.Options{Grace: -1})
	n := 0
	for ; ; n++ { // fill the index up to its last few names
		name := fmt.Sprintf("file-%03d", n)
		if _, err := g.Commit(ctx, name, "", strings.NewReader("x"), 1); err != nil {
			if !errors.Is(err, core.ErrGroupFull) {
				t.Fatal(err)
			}
			break
		}
	}
	// Make room for two more names: remove two.
	for _, name := range []string{"file-000", "file-001"} {
		k, err := storetest.Key(ctx, g, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Remove(ctx, name, k); err != nil {
			t.Fatal(err)
		}
	}
	k2, err := storetest.Key(ctx, g, "file-002")
	if err != nil {
		t.Fatal(err)
	}
	before := s.Calls()
	s.armed.Store(true)
	var wg sync.WaitGroup
	wg.Go(func() {
		k := k2
		if _, err := g.Commit(ctx, "file-002", k, strings.NewReader("y"), 1); err != nil {
			t.Errorf("rewrite: %v", err)
		}
	})
	<-s.held
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = g.Commit(ctx, fmt.Sprintf("new-%03d", i), "", strings.NewReader("z"), 1)
		})
	}
	waitFor(t, "four queued commits", func() bool { return g.Queued() == 4 })
	close(s.release)
	wg.Wait()
	landed, full := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			landed++
		case errors.Is(err, core.ErrGroupFull):
			full++
		default:
			t.Errorf("commit: %v, want success or ErrGroupFull", err)
		}
	}
	if landed != 2 || full != 2 {
		t.Errorf("4 new names with room for 2: %d landed, %d ErrGroupFull; want 2 and 2", landed, full)
	}
	// Each change that landed built on the state the one before left: no
	// swap was refused, so nothing was read back.
	if d := s.Calls()["BucketInfo"] - before["BucketInfo"]; d != 0 {
		t.Errorf("the batch read the bucket %d times, want 0", d)
	}
	names, err := newGroup(t, s.Store, core.FormatBlazer, core.Options{}).List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != n {
		t.Errorf("group holds %d names, want %d", len(names), n)
	}
}

// A commit interrupted while it waits for a batch returns at once with
// the interrupt, and nothing of it is stored.
func TestQueuedCommitInterrupted(t *testing.T) { sim(t, testQueuedCommitInterrupted) }

func testQueuedCommitInterrupted(t *testing.T) {
	ctx := testCtx(t)
	s := newGatedStore()
	g := newGroup(t, s, core.FormatB2cfs, core.Options{})
	if _, err := g.Commit(ctx, "seed", "", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	s.armed.Store(true)
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := g.Commit(ctx, "first", "", strings.NewReader("1"), 1); err != nil {
			t.Errorf("commit first: %v", err)
		}
	})
	<-s.held
	ictx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := g.Commit(ictx, "interrupted", "", strings.NewReader("2"), 1)
		done <- err
	}()
	waitFor(t, "a queued commit", func() bool { return g.Queued() == 1 })
	cancel()
	select { // the batch ahead of it is still held: it must not wait for it
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("queued commit interrupted: %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Error("a queued commit did not return when interrupted")
	}
	close(s.release)
	wg.Wait()
	names, err := newGroup(t, s.Store, core.FormatB2cfs, core.Options{}).List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(names, "interrupted") || !slices.Contains(names, "first") {
		t.Errorf("group holds %v: want first, and not the interrupted commit", names)
	}
}
