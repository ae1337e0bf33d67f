package core_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/memstore"
	"github.com/b2cfs/b2cfs/core/storetest"
)

const lease = 600 * time.Millisecond

func TestLockExcludesAndReleases(t *testing.T) { bothFormats(t, testLockExcludesAndReleases) }

func testLockExcludesAndReleases(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	a := newGroup(t, s, format, core.Options{LeaseTTL: lease, Host: "host-a"})
	b := newGroup(t, s, format, core.Options{LeaseTTL: lease, Host: "host-b"})
	ma, mb := a.Mutex(ctx, "lock"), b.Mutex(ctx, "lock")
	if err := ma.TryLock(ctx, core.Exclusive); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := mb.TryLock(ctx, core.Exclusive)
	var held *core.LockHeldError
	if !errors.As(err, &held) || !errors.Is(err, core.ErrLockHeld) {
		t.Fatalf("TryLock on a held lock: %v, want LockHeldError", err)
	}
	if held.Holders[0].Host != "host-a" {
		t.Fatalf("holder = %+v, want host-a", held.Holders[0])
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("TryLock took %v", d)
	}
	if err := ma.UnlockContext(ctx); err != nil {
		t.Fatal(err)
	}
	if err := mb.TryLock(ctx, core.Exclusive); err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	if err := mb.UnlockContext(ctx); err != nil {
		t.Fatal(err)
	}
	// Released locks leave no entry in the index.
	if _, err := storetest.Key(ctx, a, "lock"); !errors.Is(err, core.ErrNotExist) {
		t.Fatalf("lock object after release: %v", err)
	}
}

func TestLeaseRenewedPastManyTTLs(t *testing.T) { bothFormats(t, testLeaseRenewedPastManyTTLs) }

func testLeaseRenewedPastManyTTLs(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	a := newGroup(t, s, format, core.Options{LeaseTTL: lease})
	b := newGroup(t, s, format, core.Options{LeaseTTL: lease})
	ma := a.Mutex(ctx, "lock")
	if err := ma.TryLock(ctx, core.Exclusive); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(5 * lease)
	for time.Now().Before(end) {
		if err := b.Mutex(ctx, "lock").TryLock(ctx, core.Exclusive); !errors.Is(err, core.ErrLockHeld) {
			t.Fatalf("live holder lost its lock: %v", err)
		}
		time.Sleep(lease / 4)
	}
	select {
	case <-ma.Lost():
		t.Fatal("live holder reported a lost lock")
	default:
	}
	if err := ma.UnlockContext(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestDeadHolderExpires(t *testing.T) { bothFormats(t, testDeadHolderExpires) }

func testDeadHolderExpires(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	a := newGroup(t, s, format, core.Options{LeaseTTL: lease})
	b := newGroup(t, s, format, core.Options{LeaseTTL: lease})
	// The holder "dies": its context ends, so renewal stops.
	dead, kill := context.WithCancel(ctx)
	if err := a.Mutex(dead, "lock").TryLock(ctx, core.Exclusive); err != nil {
		t.Fatal(err)
	}
	kill()
	took := time.Now()
	mb := b.Mutex(ctx, "lock")
	if err := mb.TryLock(ctx, core.Exclusive); !errors.Is(err, core.ErrLockHeld) {
		t.Fatalf("lock taken before the lease expired: %v", err)
	}
	if err := mb.LockContext(ctx, core.Exclusive); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(took); d < lease/2 {
		t.Fatalf("lock taken over after %v, lease is %v", d, lease)
	}
	mb.UnlockContext(ctx)
}

func TestLeaseLostWhenRenewalFails(t *testing.T) { bothFormats(t, testLeaseLostWhenRenewalFails) }

func testLeaseLostWhenRenewalFails(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	a := newGroup(t, s, format, core.Options{LeaseTTL: lease})
	ma := a.Mutex(ctx, "lock")
	if err := ma.TryLock(ctx, core.Exclusive); err != nil {
		t.Fatal(err)
	}
	s.SetFault(func(op string) error { return errors.New("b2 down") })
	select {
	case <-ma.Lost():
	case <-time.After(10 * lease):
		t.Fatal("holder never noticed its lease was lost")
	}
	s.SetFault(nil)
}

func TestSharedAndExclusive(t *testing.T) { bothFormats(t, testSharedAndExclusive) }

func testSharedAndExclusive(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	g1 := newGroup(t, s, format, core.Options{LeaseTTL: lease})
	g2 := newGroup(t, s, format, core.Options{LeaseTTL: lease})
	g3 := newGroup(t, s, format, core.Options{LeaseTTL: lease})
	s1, s2, x := g1.Mutex(ctx, "l"), g2.Mutex(ctx, "l"), g3.Mutex(ctx, "l")
	if err := s1.TryLock(ctx, core.Shared); err != nil {
		t.Fatal(err)
	}
	if err := s2.TryLock(ctx, core.Shared); err != nil {
		t.Fatalf("second shared holder refused: %v", err)
	}
	if err := x.TryLock(ctx, core.Exclusive); !errors.Is(err, core.ErrLockHeld) {
		t.Fatalf("exclusive beside shared holders: %v", err)
	}
	got := make(chan error, 1)
	go func() { got <- x.LockContext(ctx, core.Exclusive) }()
	s1.UnlockContext(ctx)
	select {
	case err := <-got:
		t.Fatalf("exclusive lock granted with one shared holder left: %v", err)
	case <-time.After(3 * lease):
	}
	s2.UnlockContext(ctx)
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("exclusive lock not granted after the shared holders left")
	}
	if err := s1.TryLock(ctx, core.Shared); !errors.Is(err, core.ErrLockHeld) {
		t.Fatalf("shared beside exclusive: %v", err)
	}
	x.UnlockContext(ctx)
}

func TestBlockedLockEndsWithContext(t *testing.T) { bothFormats(t, testBlockedLockEndsWithContext) }

func testBlockedLockEndsWithContext(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	a := newGroup(t, s, format, core.Options{LeaseTTL: lease})
	b := newGroup(t, s, format, core.Options{LeaseTTL: lease})
	ma := a.Mutex(ctx, "lock")
	if err := ma.TryLock(ctx, core.Exclusive); err != nil {
		t.Fatal(err)
	}
	defer ma.UnlockContext(ctx)
	wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := b.Mutex(ctx, "lock").LockContext(wctx, core.Exclusive)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocked lock: %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("blocked lock returned %v after its context ended", d-500*time.Millisecond)
	}
}

func TestBlazerStyleLock(t *testing.T) { bothFormats(t, testBlazerStyleLock) }

func testBlazerStyleLock(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	g := newGroup(t, s, format, core.Options{LeaseTTL: lease})
	// Blazer's Mutex writes the single byte 0x01 and never expires.
	if _, err := g.Commit(ctx, "lock", "", strings.NewReader("\x01"), 1); err != nil {
		t.Fatal(err)
	}
	m := g.Mutex(ctx, "lock")
	if err := m.TryLock(ctx, core.Exclusive); !errors.Is(err, core.ErrLockHeld) {
		t.Fatalf("lock over blazer's: %v", err)
	}
	time.Sleep(2 * lease)
	if err := m.TryLock(ctx, core.Exclusive); !errors.Is(err, core.ErrLockHeld) {
		t.Fatalf("blazer's lock expired by itself: %v", err)
	}
	hs, err := g.ForceUnlock(ctx, "lock")
	if err != nil || len(hs) != 1 || hs[0].Owner != "blazer" {
		t.Fatalf("ForceUnlock = %+v, %v", hs, err)
	}
	if err := m.TryLock(ctx, core.Exclusive); err != nil {
		t.Fatalf("lock after force-unlock: %v", err)
	}
	m.UnlockContext(ctx)
}

func TestSyncLockerCounter(t *testing.T) { bothFormats(t, testSyncLockerCounter) }

func testSyncLockerCounter(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	var wg sync.WaitGroup
	counter := 0
	for i := 0; i < 4; i++ {
		g := newGroup(t, s, format, core.Options{LeaseTTL: 2 * time.Second})
		wg.Add(1)
		go func() {
			defer wg.Done()
			var m sync.Locker = g.Mutex(ctx, "lock")
			for j := 0; j < 5; j++ {
				m.Lock()
				c := counter // racy unless the lock excludes
				time.Sleep(time.Millisecond)
				counter = c + 1
				m.Unlock()
			}
		}()
	}
	wg.Wait()
	if counter != 20 {
		t.Fatalf("counter = %d, want 20", counter)
	}
}

func TestLockCost(t *testing.T) { bothFormats(t, testLockCost) }

func testLockCost(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	g := newGroup(t, s, format, core.Options{LeaseTTL: time.Minute})
	if _, err := g.Commit(ctx, "other", "", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	before := s.Calls()
	m := g.Mutex(ctx, "lock")
	if err := m.TryLock(ctx, core.Exclusive); err != nil {
		t.Fatal(err)
	}
	if err := m.UnlockContext(ctx); err != nil {
		t.Fatal(err)
	}
	after := s.Calls()
	got := map[string]int{}
	for op := range after {
		got[op] = after[op] - before[op]
	}
	uploads := 1 // the lock record
	if format == core.FormatB2cfs {
		uploads = 0 // the record is inline
	}
	if got["UpdateBucketInfo"] != 2 || got["BucketInfo"] != 0 || got["Download"] != 0 || got["Upload"] != uploads {
		t.Fatalf("lock+unlock calls %v, want %d uploads and 2 updates", got, uploads)
	}
}

func TestInterruptedLockLeavesNothing(t *testing.T) { bothFormats(t, testInterruptedLockLeavesNothing) }

func testInterruptedLockLeavesNothing(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	g := newGroup(t, s, format, core.Options{LeaseTTL: time.Minute})
	if _, err := g.Commit(ctx, "other", "", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	// The commit of the lock record is slow; the caller gives up meanwhile.
	s.SetFault(func(op string) error {
		if op == "UpdateBucketInfo" {
			time.Sleep(300 * time.Millisecond)
		}
		return nil
	})
	m := g.Mutex(ctx, "lock")
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := m.TryLock(cctx, core.Exclusive); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("interrupted TryLock: %v", err)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Fatalf("interrupted TryLock returned after %v", d)
	}
	s.SetFault(nil)
	// The attempt went through and is undone in the background.
	waitNoHolders(t, newGroup(t, s, format, core.Options{IndexTTL: -1}), "lock")
	// The Mutex is usable again.
	if err := m.TryLock(ctx, core.Exclusive); err != nil {
		t.Fatalf("lock after an interrupted attempt: %v", err)
	}
	m.UnlockContext(ctx)
}

func TestLockContendedIsNotUnavailable(t *testing.T) {
	bothFormats(t, testLockContendedIsNotUnavailable)
}

// refusingStore refuses every update for a while, each after a round trip,
// as B2 does while other hosts keep winning the compare-and-swap.
type refusingStore struct {
	core.Store
	until   time.Time
	refused atomic.Int64
}

func (s *refusingStore) UpdateBucketInfo(ctx context.Context, rev int64, info map[string]string) (core.BucketInfo, error) {
	if time.Now().Before(s.until) {
		time.Sleep(30 * time.Millisecond)
		s.refused.Add(1)
		return core.BucketInfo{}, core.ErrRevisionMismatch
	}
	return s.Store.UpdateBucketInfo(ctx, rev, info)
}

// testLockContendedIsNotUnavailable: an attempt whose swaps B2 keeps
// refusing for longer than LockTimeout is answered, not unanswered: it
// waits its turn and takes the lock, where it used to fail with
// ErrUnavailable (ENOLCK on a mount) under contention.
func testLockContendedIsNotUnavailable(t *testing.T, format string) {
	ctx := testCtx(t)
	const lockTimeout = time.Second
	s := &refusingStore{Store: memstore.New()}
	g := newGroup(t, s, format, core.Options{LeaseTTL: time.Minute, LockTimeout: lockTimeout})
	if _, err := g.Commit(ctx, "other", "", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s.until = start.Add(3 * lockTimeout)
	m := g.Mutex(ctx, "lock")
	if err := m.TryLock(ctx, core.Exclusive); err != nil {
		t.Fatalf("TryLock after %v of refused swaps: %v, want the lock", time.Since(start), err)
	}
	if d := time.Since(start); d < 3*lockTimeout {
		t.Errorf("TryLock returned after %v, before the refusals ended", d)
	}
	if n := s.refused.Load(); n < 10 {
		t.Errorf("%d swaps refused, want many", n)
	}
	if err := m.UnlockContext(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestLockTimeout(t *testing.T) { bothFormats(t, testLockTimeout) }

func testLockTimeout(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	g := newGroup(t, s, format, core.Options{LeaseTTL: time.Minute, LockTimeout: 100 * time.Millisecond})
	if _, err := g.Commit(ctx, "other", "", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	// B2 answers the commit of the lock record too late: the attempt has
	// no verdict in time, though the record lands.
	s.SetFault(func(op string) error {
		if op == "UpdateBucketInfo" {
			time.Sleep(300 * time.Millisecond)
		}
		return nil
	})
	m := g.Mutex(ctx, "lock")
	start := time.Now()
	err := m.TryLock(ctx, core.Exclusive)
	if !errors.Is(err, core.ErrUnavailable) || errors.Is(err, core.ErrLockHeld) {
		t.Fatalf("slow TryLock: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Fatalf("slow TryLock returned after %v, LockTimeout is 100ms", d)
	}
	s.SetFault(nil)
	waitNoHolders(t, newGroup(t, s, format, core.Options{IndexTTL: -1}), "lock")
	if err := m.TryLock(ctx, core.Exclusive); err != nil {
		t.Fatalf("lock after a timed-out attempt: %v", err)
	}
	m.UnlockContext(ctx)
}

// waitNoHolders waits up to 5 s (simulated in a bubble) for lock name of g
// to have no holder.
func waitNoHolders(t *testing.T, g *core.Group, name string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		hs, err := g.Holders(testCtx(t), name)
		if err != nil {
			t.Fatal(err)
		}
		if len(hs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock %s still held: %+v", name, hs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUnlockRacingLeaseLoss: during an outage, unlocks fail (and restart
// the renewal) while the renewal gives the lease up. That once closed the
// lost channel twice and panicked. The lock must end up released or lost,
// exactly once, and never panic. The rounds space the unlocks apart
// differently (in simulated time): closer than the renewal period (30 ms),
// the unlock finds the lease lapsed; at the period, the renewal and the
// unlock run at the same instant; further apart, the renewal gives the
// lease up between two unlocks, which then find the lock lost.
func TestUnlockRacingLeaseLoss(t *testing.T) { bothFormats(t, testUnlockRacingLeaseLoss) }

func testUnlockRacingLeaseLoss(t *testing.T, format string) {
	ctx := testCtx(t)
	for round, gap := range []time.Duration{time.Millisecond, 10 * time.Millisecond, 30 * time.Millisecond, 35 * time.Millisecond, 50 * time.Millisecond} {
		s := memstore.New()
		a := newGroup(t, s, format, core.Options{LeaseTTL: 90 * time.Millisecond})
		m := a.Mutex(ctx, "lock")
		if err := m.TryLock(ctx, core.Exclusive); err != nil {
			t.Fatal(err)
		}
		lost := m.Lost()
		s.SetFault(func(string) error { return errors.New("b2 down") })
		deadline := time.Now().Add(time.Minute)
		for {
			uctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
			err := m.UnlockContext(uctx)
			cancel()
			if err == nil {
				break // released: the lease was lost meanwhile
			}
			if isClosed(lost) && !m.Held() {
				break // lost by the renewal before this unlock began
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: unlock never settled: %v", round, err)
			}
			time.Sleep(gap)
		}
		select {
		case <-lost:
		default:
			t.Fatal("unlock returned nil during an outage, but the lease was not lost")
		}
		s.SetFault(nil)
		if err := m.TryLock(ctx, core.Exclusive); err != nil {
			t.Fatalf("lock again after the outage: %v", err)
		}
		if err := m.UnlockContext(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// holderModes returns the modes in lock name's record, as g (reloaded every
// time) sees it, with the hosts that hold them.
func holderModes(t *testing.T, g *core.Group, name string) map[string]string {
	t.Helper()
	hs, err := g.Holders(testCtx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, h := range hs {
		if _, dup := out[h.Host]; dup {
			t.Fatalf("host %s holds the lock twice: %+v", h.Host, hs)
		}
		out[h.Host] = h.Mode
	}
	return out
}

// TestConvertUpgradeBlocked: an upgrade to exclusive is refused while
// another owner holds the lock shared, leaving the lock shared; a waiting
// upgrade ends with its context, still shared, and completes once the
// other holder has left.
func TestConvertUpgradeBlocked(t *testing.T) { bothFormats(t, testConvertUpgradeBlocked) }

func testConvertUpgradeBlocked(t *testing.T, format string) {
	ctx, _, hosts, check := convertSetup(t, format, "host-a", "host-b", "host-c")
	a, b, c := hosts[0], hosts[1], hosts[2]
	ma, mb := a.Mutex(ctx, "lock"), b.Mutex(ctx, "lock")
	mustTryLock(t, ctx, ma, core.Shared)
	mustTryLock(t, ctx, mb, core.Shared)
	err := ma.TryConvert(ctx, core.Exclusive)
	var held *core.LockHeldError
	if !errors.As(err, &held) || len(held.Holders) != 1 || held.Holders[0].Host != "host-b" {
		t.Fatalf("upgrade beside a shared holder: %v, want LockHeldError naming host-b", err)
	}
	if got := holderModes(t, check, "lock"); got["host-a"] != "shared" || got["host-b"] != "shared" || len(got) != 2 {
		t.Fatalf("holders after a refused upgrade: %v", got)
	}
	// Still held shared: another shared owner gets in, an exclusive one not.
	mc := c.Mutex(ctx, "lock")
	if err := mc.TryLock(ctx, core.Exclusive); !errors.Is(err, core.ErrLockHeld) {
		t.Fatalf("exclusive lock beside two shared holders: %v", err)
	}
	if err := mc.TryLock(ctx, core.Shared); err != nil {
		t.Fatalf("shared lock beside two shared holders: %v", err)
	}
	mustUnlock(t, ctx, mc)

	// A waiting upgrade ends with its context, still shared.
	wctx, cancel := context.WithTimeout(ctx, 400*time.Millisecond)
	start := time.Now()
	err = ma.ConvertContext(wctx, core.Exclusive)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocked upgrade: %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("blocked upgrade returned %v after it started (context: 400ms)", d)
	}
	if got := holderModes(t, check, "lock"); got["host-a"] != "shared" || len(got) != 2 {
		t.Fatalf("holders after an interrupted upgrade: %v", got)
	}

	// It completes once the other shared holder is gone.
	done := make(chan error, 1)
	go func() { done <- ma.ConvertContext(ctx, core.Exclusive) }()
	select {
	case err := <-done:
		t.Fatalf("upgrade granted beside a shared holder: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	mustUnlock(t, ctx, mb)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("upgrade not granted after the other holder left")
	}
	if got := holderModes(t, check, "lock"); got["host-a"] != "exclusive" || len(got) != 1 {
		t.Fatalf("holders after the upgrade: %v", got)
	}
	if err := mb.TryLock(ctx, core.Shared); !errors.Is(err, core.ErrLockHeld) {
		t.Fatalf("shared lock beside an upgraded holder: %v", err)
	}
	mustUnlock(t, ctx, ma)
	waitNoHolders(t, check, "lock")
}

// TestConvertDowngrade: an exclusive holder downgrades to shared in one
// update of the index (never releasing the lock in between), lets other
// shared owners in and still keeps exclusive ones out; upgrading back is
// refused while they hold it.
func TestConvertDowngrade(t *testing.T) { bothFormats(t, testConvertDowngrade) }

func testConvertDowngrade(t *testing.T, format string) {
	ctx, s, hosts, check := convertSetup(t, format, "host-a", "host-b")
	a, b := hosts[0], hosts[1]
	ma, mb := a.Mutex(ctx, "lock"), b.Mutex(ctx, "lock")
	mustTryLock(t, ctx, ma, core.Exclusive)
	if err := mb.TryLock(ctx, core.Shared); !errors.Is(err, core.ErrLockHeld) {
		t.Fatalf("shared lock beside an exclusive holder: %v", err)
	}
	before := s.Calls()
	if err := ma.TryConvert(ctx, core.Shared); err != nil {
		t.Fatalf("downgrade: %v", err)
	}
	after := s.Calls()
	if n := after["UpdateBucketInfo"] - before["UpdateBucketInfo"]; n != 1 {
		t.Fatalf("downgrade made %d index updates, want 1 (one compare-and-swap)", n)
	}
	if got := holderModes(t, check, "lock"); got["host-a"] != "shared" || len(got) != 1 {
		t.Fatalf("holders after the downgrade: %v", got)
	}
	if err := mb.TryLock(ctx, core.Shared); err != nil {
		t.Fatalf("shared lock beside a downgraded holder: %v", err)
	}
	if err := b.Mutex(ctx, "lock").TryLock(ctx, core.Exclusive); !errors.Is(err, core.ErrLockHeld) {
		t.Fatalf("exclusive lock beside shared holders: %v", err)
	}
	if err := ma.TryConvert(ctx, core.Exclusive); !errors.Is(err, core.ErrLockHeld) {
		t.Fatalf("upgrade back beside a shared holder: %v", err)
	}
	// Converting to the mode held rewrites the entry and changes nothing.
	if err := ma.TryConvert(ctx, core.Shared); err != nil {
		t.Fatalf("shared to shared: %v", err)
	}
	if got := holderModes(t, check, "lock"); got["host-a"] != "shared" || got["host-b"] != "shared" || len(got) != 2 {
		t.Fatalf("holders: %v", got)
	}
	mb.UnlockContext(ctx)
	ma.UnlockContext(ctx)
	waitNoHolders(t, check, "lock")
}

// TestConvertLostReplies: conversions whose replies are lost (B2 applied
// the update, the answer never came) are settled by reading the bucket
// back, as any commit: each reports success and the record shows the new
// mode, with one entry for the owner.
func TestConvertLostReplies(t *testing.T) { bothFormats(t, testConvertLostReplies) }

func testConvertLostReplies(t *testing.T, format string) {
	ctx, s, hosts, check := convertSetup(t, format, "host-a", "host-b")
	a, b := hosts[0], hosts[1]
	ma := a.Mutex(ctx, "lock")
	mustTryLock(t, ctx, ma, core.Shared)
	var lost atomic.Int64
	loseUpdateReplies := func() {
		s.SetLostReply(func(op string) error {
			if op == "UpdateBucketInfo" {
				lost.Add(1)
				return errors.New("connection reset")
			}
			return nil
		})
	}
	loseUpdateReplies()
	for i, mode := range []core.LockMode{core.Exclusive, core.Shared, core.Exclusive} {
		if err := ma.TryConvert(ctx, mode); err != nil {
			t.Fatalf("conversion %d to %v with its reply lost: %v", i, mode, err)
		}
		s.SetLostReply(nil)
		if got := holderModes(t, check, "lock"); got["host-a"] != mode.String() || len(got) != 1 {
			t.Fatalf("holders after conversion %d to %v: %v", i, mode, got)
		}
		mb := b.Mutex(ctx, "lock")
		err := mb.TryLock(ctx, core.Shared)
		if (mode == core.Exclusive) != errors.Is(err, core.ErrLockHeld) {
			t.Fatalf("shared lock beside a holder converted to %v: %v", mode, err)
		}
		if err == nil {
			mustUnlock(t, ctx, mb)
		}
		loseUpdateReplies()
	}
	s.SetLostReply(nil)
	if lost.Load() < 3 {
		t.Fatalf("%d replies lost: the test proved nothing", lost.Load())
	}
	mustUnlock(t, ctx, ma)
	waitNoHolders(t, check, "lock")
}

// TestConvertNotHeld: a lock that is not held cannot be converted, and a
// lock forced open meanwhile is reported lost by the conversion.
func TestConvertNotHeld(t *testing.T) { bothFormats(t, testConvertNotHeld) }

func testConvertNotHeld(t *testing.T, format string) {
	ctx, s, hosts, _ := convertSetup(t, format, "")
	a := hosts[0]
	m := a.Mutex(ctx, "lock")
	if err := m.TryConvert(ctx, core.Exclusive); err == nil || errors.Is(err, core.ErrLockHeld) {
		t.Fatalf("converting a lock not held: %v", err)
	}
	mustTryLock(t, ctx, m, core.Shared)
	lost := m.Lost()
	if _, err := newGroup(t, s, format, core.Options{IndexTTL: -1}).ForceUnlock(ctx, "lock"); err != nil {
		t.Fatal(err)
	}
	if err := m.TryConvert(ctx, core.Exclusive); err == nil || errors.Is(err, core.ErrLockHeld) {
		t.Fatalf("converting a lock forced open: %v", err)
	}
	select {
	case <-lost:
	default:
		t.Fatal("a conversion that found the lock forced open did not report it lost")
	}
	if err := m.TryLock(ctx, core.Exclusive); err != nil {
		t.Fatalf("lock again: %v", err)
	}
	m.UnlockContext(ctx)
}

// convertSetup returns a test context, a new store, one group on it per
// host (with a one-minute lease; host "" leaves the group's host unset)
// and a group that always reads the index afresh, for checking.
func convertSetup(t *testing.T, format string, hosts ...string) (context.Context, *memstore.Store, []*core.Group, *core.Group) {
	s := memstore.New()
	var gs []*core.Group
	for _, h := range hosts {
		gs = append(gs, newGroup(t, s, format, core.Options{LeaseTTL: time.Minute, Host: h}))
	}
	return testCtx(t), s, gs, newGroup(t, s, format, core.Options{IndexTTL: -1})
}

// mustTryLock takes m in mode at once or fails the test.
func mustTryLock(t *testing.T, ctx context.Context, m *core.Mutex, mode core.LockMode) {
	t.Helper()
	if err := m.TryLock(ctx, mode); err != nil {
		t.Fatal(err)
	}
}

// mustUnlock releases m or fails the test.
func mustUnlock(t *testing.T, ctx context.Context, m *core.Mutex) {
	t.Helper()
	if err := m.UnlockContext(ctx); err != nil {
		t.Fatal(err)
	}
}
