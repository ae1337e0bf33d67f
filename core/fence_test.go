package core_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/memstore"
	"github.com/b2cfs/b2cfs/core/storetest"
	"github.com/jonboulle/clockwork"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer = storetest.SyncBuffer

// waitUntil polls cond until it holds, failing after a generous bound (in
// a bubble, of simulated time: each poll lets time move on by 1 ms once
// every other goroutine waits).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// put commits content as the next version of name, under ctx's fences,
// based on the current version (so that only a fence can refuse it).
func put(ctx context.Context, g *core.Group, name, content string) error {
	key, err := storetest.Key(ctx, g, name)
	if errors.Is(err, core.ErrNotExist) {
		key, err = "", nil
	}
	if err != nil {
		return err
	}
	_, err = g.Commit(ctx, name, key, strings.NewReader(content), int64(len(content)))
	return err
}

const simLease = 30 * time.Second

// A holder frozen past its lease (its renewals never ran) cannot commit
// once another host took the lock and committed: the fence refuses it,
// the data stays the new holder's, and the log says why.
func TestStaleHolderCannotCommit(t *testing.T) { bothFormats(t, testStaleHolderCannotCommit) }

func testStaleHolderCannotCommit(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	base := clockwork.NewRealClock() // the bubble's time
	ca, cb := storetest.NewHostClock(base, 1), storetest.NewHostClock(base, 1)
	var logA syncBuffer
	a := newGroup(t, s, format, core.Options{LeaseTTL: simLease, Clock: ca, IndexTTL: -1, Host: "host-a",
		Logger: slog.New(slog.NewTextHandler(&logA, nil))})
	b := newGroup(t, s, format, core.Options{LeaseTTL: simLease, Clock: cb, IndexTTL: -1, Host: "host-b"})
	ma, mb := a.Mutex(ctx, "lock"), b.Mutex(ctx, "lock")
	if err := ma.TryLock(ctx, core.Exclusive); err != nil {
		t.Fatal(err)
	}
	if err := put(ma.Fence(ctx), a, "data", "a1"); err != nil {
		t.Fatalf("fenced commit of a live holder: %v", err)
	}
	ca.Pause() // kill -STOP: time passes, host A runs nothing
	if err := mb.TryLock(ctx, core.Exclusive); !errors.Is(err, core.ErrLockHeld) {
		t.Fatalf("lock of a live lease taken: %v", err)
	}
	time.Sleep(simLease) // past A's lease, but B has not seen it silent for TTL plus the margin
	if err := mb.TryLock(ctx, core.Exclusive); !errors.Is(err, core.ErrLockHeld) {
		t.Fatalf("lock taken after %v of silence: %v", simLease, err)
	}
	time.Sleep(simLease / 5)
	if err := mb.TryLock(ctx, core.Exclusive); err != nil {
		t.Fatalf("lock of a lapsed lease: %v", err)
	}
	if err := put(mb.Fence(ctx), b, "data", "b1"); err != nil {
		t.Fatal(err)
	}
	if ma.Held() {
		t.Fatal("a holder past its lease still reports the lock held")
	}
	ca.Resume() // kill -CONT: the overdue renewal runs and finds the lease lapsed
	waitUntil(t, "A knows its lock is lost", func() bool { return isClosed(ma.Lost()) })
	err := put(ma.Fence(ctx), a, "data", "a2")
	if !errors.Is(err, core.ErrLockLost) {
		t.Fatalf("stale holder's commit: %v, want ErrLockLost", err)
	}
	if got := read(t, b, "data"); got != "b1" {
		t.Fatalf("data = %q, want the new holder's b1", got)
	}
	if !strings.Contains(logA.String(), "LOCK LOST") {
		t.Fatalf("stale holder logged no LOCK LOST:\n%s", logA.String())
	}
	if err := mb.UnlockContext(ctx); err != nil {
		t.Fatal(err)
	}
}

// A holder whose clock did not move (a suspended machine, a clock that
// lies) still trusts its lease after another host took the lock over; the
// compare-and-swap refuses its commit all the same, and it learns that
// its lock is lost.
func TestFenceRefusesTakenOverLock(t *testing.T) { bothFormats(t, testFenceRefusesTakenOverLock) }

func testFenceRefusesTakenOverLock(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	ca := clockwork.NewFakeClock() // A's clock: never advanced
	a := newGroup(t, s, format, core.Options{LeaseTTL: simLease, Clock: ca})
	b := newGroup(t, s, format, core.Options{LeaseTTL: simLease, IndexTTL: -1}) // on the bubble's time
	ma, mb := a.Mutex(ctx, "lock"), b.Mutex(ctx, "lock")
	if err := ma.TryLock(ctx, core.Exclusive); err != nil {
		t.Fatal(err)
	}
	if err := mb.TryLock(ctx, core.Exclusive); !errors.Is(err, core.ErrLockHeld) {
		t.Fatalf("lock of a live lease taken: %v", err)
	}
	time.Sleep(2 * simLease)
	if err := mb.TryLock(ctx, core.Exclusive); err != nil {
		t.Fatal(err)
	}
	if err := put(mb.Fence(ctx), b, "data", "b1"); err != nil {
		t.Fatal(err)
	}
	if !ma.Held() {
		t.Fatal("A's clock did not move, so it should still trust its lease")
	}
	if err := put(ma.Fence(ctx), a, "data", "a1"); !errors.Is(err, core.ErrLockLost) {
		t.Fatalf("commit under a lock taken over: %v, want ErrLockLost", err)
	}
	if !isClosed(ma.Lost()) || ma.Held() {
		t.Fatal("the refused holder does not know its lock is lost")
	}
	if got := read(t, b, "data"); got != "b1" {
		t.Fatalf("data = %q, want b1", got)
	}
}

// A fenced commit costs what an unfenced one costs: the check rides on the
// commit's own update.
func TestFencedCommitCost(t *testing.T) { bothFormats(t, testFencedCommitCost) }

func testFencedCommitCost(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	g := newGroup(t, s, format, core.Options{LeaseTTL: time.Minute})
	m := g.Mutex(ctx, "lock")
	if err := m.TryLock(ctx, core.Exclusive); err != nil {
		t.Fatal(err)
	}
	cost := func(ctx context.Context, content string) map[string]int {
		before := s.Calls()
		if err := put(ctx, g, "data", content); err != nil {
			t.Fatal(err)
		}
		after := s.Calls()
		d := map[string]int{}
		for op := range after {
			if n := after[op] - before[op]; n != 0 {
				d[op] = n
			}
		}
		return d
	}
	cost(ctx, "warm-up")
	plain, fenced := cost(ctx, "plain"), cost(m.Fence(ctx), "fenced")
	if fmt.Sprint(plain) != fmt.Sprint(fenced) {
		t.Fatalf("fenced commit calls %v, unfenced %v", fenced, plain)
	}
}

// Another host changing the record of a held lock (queueing as a waiter,
// or renewing its shared hold) does not fence the holder out.
func TestFenceAcrossForeignRecordChanges(t *testing.T) {
	bothFormats(t, testFenceAcrossForeignRecordChanges)
}

func testFenceAcrossForeignRecordChanges(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	// Renewals every second (of simulated time).
	const renewing = 3 * time.Second
	a := newGroup(t, s, format, core.Options{LeaseTTL: renewing})
	b := newGroup(t, s, format, core.Options{LeaseTTL: renewing, IndexTTL: -1})
	ma, mb := a.Mutex(ctx, "lock"), b.Mutex(ctx, "lock")
	if err := ma.TryLock(ctx, core.Exclusive); err != nil {
		t.Fatal(err)
	}
	key0, _ := storetest.Key(ctx, b, "lock")
	got := make(chan error, 1)
	go func() { got <- mb.LockContext(ctx, core.Exclusive) }()
	waitUntil(t, "B queued in the record", func() bool {
		k, _ := storetest.Key(ctx, b, "lock")
		return k != key0
	})
	if err := put(ma.Fence(ctx), a, "data", "a1"); err != nil {
		t.Fatalf("fenced commit after a waiter queued: %v", err)
	}
	if err := ma.UnlockContext(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if err := mb.UnlockContext(ctx); err != nil {
		t.Fatal(err)
	}

	// Shared holders: B's renewals change the record A's fence checks.
	if err := ma.TryLock(ctx, core.Shared); err != nil {
		t.Fatal(err)
	}
	if err := mb.TryLock(ctx, core.Shared); err != nil {
		t.Fatal(err)
	}
	key1, _ := storetest.Key(ctx, b, "lock")
	waitUntil(t, "a renewal changed the record", func() bool {
		k, _ := storetest.Key(ctx, b, "lock")
		return k != key1
	})
	if err := put(ma.Fence(ctx), a, "data", "a2"); err != nil {
		t.Fatalf("fenced commit of a shared holder after another renewed: %v", err)
	}
}

// Waiters of one group are served in order of arrival, and a release
// hands the lock to the next at once (no poll).
func TestLocalWaitersInOrder(t *testing.T) { sim(t, testLocalWaitersInOrder) }

func testLocalWaitersInOrder(t *testing.T) {
	ctx := testCtx(t)
	s := memstore.New()
	g := newGroup(t, s, core.FormatB2cfs, core.Options{LeaseTTL: time.Minute})
	first := g.Mutex(ctx, "lock")
	if err := first.TryLock(ctx, core.Exclusive); err != nil {
		t.Fatal(err)
	}
	const n = 4
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range n {
		m := g.Mutex(ctx, "lock")
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.LockContext(ctx, core.Exclusive); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			if err := m.UnlockContext(ctx); err != nil {
				t.Error(err)
			}
		}()
		// Let waiter i queue before waiter i+1 arrives.
		waitUntil(t, fmt.Sprintf("waiter %d queued", i), func() bool { return g.QueueLen("lock") == i+1 })
	}
	if err := first.UnlockContext(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if fmt.Sprint(order) != "[0 1 2 3]" {
		t.Fatalf("waiters served in order %v", order)
	}
}

// Randomized histories of three hosts whose clocks are offset by up to
// ±60 s and run at rates up to 5 % apart, some of them paused (SIGSTOP)
// while holding: two hosts never both trust an exclusive hold, a fenced
// commit lands exactly when its holder trusts its lease, and a host that
// was never paused while holding never loses its lock. Each history runs
// in its own bubble of simulated time, on which the hosts' clocks run.
func TestSkewedClockHistories(t *testing.T) {
	t.Parallel() // CPU only: beside the other long tests
	n := 1000
	if testing.Short() {
		n = 100
	}
	const workers = 2 // histories are CPU only: one worker per core
	for w := range uint64(workers) {
		t.Run(fmt.Sprint("worker", w), func(t *testing.T) {
			t.Parallel()
			for seed := w; seed < uint64(n); seed += workers {
				ok := false
				sim(t, func(t *testing.T) { ok = skewedHistory(t, seed) })
				if !ok {
					return
				}
			}
		})
	}
}

type simHost struct {
	g        *core.Group
	c        *storetest.HostClock
	m        *core.Mutex
	mode     core.LockMode
	holding  bool
	paused   bool
	wasPause bool // paused at some time while holding
}

func skewedHistory(t *testing.T, seed uint64) bool {
	ctx := testCtx(t)
	rng := rand.New(rand.NewPCG(seed, 13))
	s := memstore.New()
	base := clockwork.NewRealClock() // the bubble's time
	var hosts []*simHost
	for i := range 3 {
		skew := time.Duration(rng.Int64N(int64(120*time.Second))) - 60*time.Second
		hc := storetest.NewHostClock(base, 0.975+0.05*rng.Float64())
		g, err := core.NewGroup(s, "test", core.Options{LeaseTTL: simLease, Clock: hc, Host: fmt.Sprint("host-", i), IndexTTL: -1,
			Now: func() time.Time { return time.Now().Add(skew) }})
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		hosts = append(hosts, &simHost{g: g, c: hc, m: g.Mutex(ctx, "lock")})
	}
	fail := func(format string, args ...any) bool {
		t.Errorf("history %d: "+format, append([]any{seed}, args...)...)
		return false
	}
	// settle waits until the background work of every host (renewals,
	// clean-ups) waits for its next timer.
	settle := synctest.Wait
	for step := range 60 {
		h := hosts[rng.IntN(len(hosts))]
		switch r := rng.IntN(10); {
		case r < 3 && !h.paused && !h.holding:
			mode := core.Exclusive
			if rng.IntN(3) == 0 {
				mode = core.Shared
			}
			err := h.m.TryLock(ctx, mode)
			switch {
			case err == nil:
				h.holding, h.mode, h.wasPause = true, mode, false
			case !errors.Is(err, core.ErrLockHeld):
				return fail("step %d: lock: %v", step, err)
			}
		case r < 5 && !h.paused && h.holding:
			trusted := h.m.Held()
			if err := h.m.UnlockContext(ctx); err != nil && trusted {
				return fail("step %d: unlock of a trusted lock: %v", step, err)
			}
			h.holding = false
		case r < 7 && !h.paused && h.holding:
			trusted := h.m.Held()
			err := put(h.m.Fence(ctx), h.g, "data", fmt.Sprint(step))
			if trusted && err != nil {
				return fail("step %d: fenced commit of a trusted holder: %v", step, err)
			}
			if !trusted && !errors.Is(err, core.ErrLockLost) {
				return fail("step %d: fenced commit of a lapsed holder: %v, want ErrLockLost", step, err)
			}
		case r < 8:
			if h.paused {
				h.c.Resume()
			} else {
				h.c.Pause()
				h.wasPause = h.wasPause || h.holding
			}
			h.paused = !h.paused
		default:
			time.Sleep(time.Duration(rng.Int64N(int64(12 * time.Second))))
		}
		settle()
		excl, shared := 0, 0
		for i, h := range hosts {
			if h.holding && !h.wasPause && !h.paused && !h.m.Held() {
				return fail("step %d: host %d lost a lock it kept renewing", step, i)
			}
			if h.m.Held() {
				if h.mode == core.Exclusive {
					excl++
				} else {
					shared++
				}
			}
		}
		if excl > 1 || excl == 1 && shared > 0 {
			return fail("step %d: %d exclusive and %d shared holders trust their leases at once", step, excl, shared)
		}
	}
	for _, h := range hosts {
		if h.paused {
			h.c.Resume()
		}
		if h.holding {
			h.m.UnlockContext(ctx)
		}
	}
	return true
}

// A waiter that queued in the lock record and is then interrupted takes
// its entry out again: once the holder releases, nothing is left.
func TestInterruptedWaiterLeavesQueue(t *testing.T) { bothFormats(t, testInterruptedWaiterLeavesQueue) }

func testInterruptedWaiterLeavesQueue(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	a := newGroup(t, s, format, core.Options{LeaseTTL: time.Minute})
	b := newGroup(t, s, format, core.Options{LeaseTTL: time.Minute, IndexTTL: -1})
	ma, mb := a.Mutex(ctx, "lock"), b.Mutex(ctx, "lock")
	if err := ma.TryLock(ctx, core.Exclusive); err != nil {
		t.Fatal(err)
	}
	key0, _ := storetest.Key(ctx, b, "lock")
	wctx, cancel := context.WithCancel(ctx)
	got := make(chan error, 1)
	go func() { got <- mb.LockContext(wctx, core.Exclusive) }()
	waitUntil(t, "B queued in the record", func() bool {
		k, _ := storetest.Key(ctx, b, "lock")
		return k != key0
	})
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted wait: %v", err)
	}
	if err := mb.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ma.UnlockContext(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := storetest.Key(ctx, b, "lock"); !errors.Is(err, core.ErrNotExist) {
		t.Fatalf("lock object after the holder released and the waiter gave up: %v, want none", err)
	}
}
