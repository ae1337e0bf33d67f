package core_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/memstore"
	"github.com/b2cfs/b2cfs/core/storetest"
	"github.com/jonboulle/clockwork"
)

// TestClockDrivesGroup pins the contract of Options.Clock with a
// clockwork.FakeClock: leases renew, lapse and are taken over, views
// expire, superseded versions are deleted and commits end at
// CommitTimeout only as that clock is advanced. It runs on real time, not
// in a bubble, and its durations are hours: a wait that went to the time
// package instead would not end within the real bounds here.
func TestClockDrivesGroup(t *testing.T) {
	const hour = time.Hour
	t.Run("renewal", func(t *testing.T) {
		ctx := testCtx(t)
		s := memstore.New()
		clk := clockwork.NewFakeClock()
		// Bounds on clk far above the nudges below, so that a nudge during
		// a renewal's update does not time the update out.
		a := newGroup(t, s, core.FormatB2cfs, core.Options{LeaseTTL: hour, Clock: clk, CommitTimeout: hour, LoadTimeout: hour})
		check := newGroup(t, s, core.FormatB2cfs, core.Options{IndexTTL: -1})
		m := a.Mutex(ctx, "lock")
		if err := m.TryLock(ctx, core.Exclusive); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			key, err := storetest.Key(ctx, check, "lock")
			if err != nil {
				t.Fatal(err)
			}
			armed(t, clk, "the renewal's timer")
			clk.Advance(hour / 3)
			// What armed saw may have been the last renewal's update, still
			// under way, with the next renewal's timer armed only after the
			// advance: nudge the clock on, far from the lease's end, until
			// the renewal lands.
			nudged := time.Now()
			waitUntil(t, "the lease renewed", func() bool {
				k, _ := storetest.Key(ctx, check, "lock")
				if k == key && time.Since(nudged) > 200*time.Millisecond {
					clk.Advance(hour / 30)
					nudged = time.Now()
				}
				return k != key
			})
			if !m.Held() {
				t.Fatalf("renewal %d: lease not trusted", i)
			}
		}
		if err := m.UnlockContext(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("takeover", func(t *testing.T) {
		ctx := testCtx(t)
		s := memstore.New()
		clk := clockwork.NewFakeClock()
		dead := newGroup(t, s, core.FormatB2cfs, core.Options{LeaseTTL: hour, Clock: clockwork.NewFakeClock()}) // never advanced: never renews
		b := newGroup(t, s, core.FormatB2cfs, core.Options{LeaseTTL: hour, LockTimeout: hour, Clock: clk, IndexTTL: -1})
		if err := dead.Mutex(ctx, "lock").TryLock(ctx, core.Exclusive); err != nil {
			t.Fatal(err)
		}
		m := b.Mutex(ctx, "lock")
		for _, step := range []time.Duration{0, hour, hour / 10} { // TTL plus the margin of a tenth
			clk.Advance(step)
			err := driven(clk, func() error { return m.TryLock(ctx, core.Exclusive) })
			if step != hour/10 && !errors.Is(err, core.ErrLockHeld) {
				t.Fatalf("after %v more: lock of an entry unchanged for less than TTL plus the margin: %v", step, err)
			}
			if step == hour/10 && err != nil {
				t.Fatalf("lock of an entry unchanged for TTL plus the margin: %v", err)
			}
		}
		if err := m.UnlockContext(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("index TTL", func(t *testing.T) {
		ctx := testCtx(t)
		s := memstore.New()
		clk := clockwork.NewFakeClock()
		a := newGroup(t, s, core.FormatB2cfs, core.Options{IndexTTL: hour, Clock: clk})
		b := newGroup(t, s, core.FormatB2cfs, core.Options{})
		has := func(name string) bool {
			names, err := a.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return slices.Contains(names, name)
		}
		has("x") // loads the view
		if err := put(ctx, b, "x", "1"); err != nil {
			t.Fatal(err)
		}
		clk.Advance(hour - time.Second)
		if has("x") {
			t.Fatal("a view younger than IndexTTL was reloaded")
		}
		clk.Advance(time.Second)
		if !has("x") {
			t.Fatal("a view as old as IndexTTL was not reloaded")
		}
	})
	t.Run("grace", func(t *testing.T) {
		ctx := testCtx(t)
		s := memstore.New()
		clk := clockwork.NewFakeClock()
		g := newGroup(t, s, core.FormatBlazer, core.Options{Grace: hour, Clock: clk})
		if err := put(ctx, g, "f", "1"); err != nil {
			t.Fatal(err)
		}
		if err := put(ctx, g, "f", "2"); err != nil { // supersedes 1
			t.Fatal(err)
		}
		armed(t, clk, "the deletion's timer")
		clk.Advance(hour - time.Second)
		time.Sleep(10 * time.Millisecond) // a deletion on another clock would show now (a loaded machine only hides it)
		if n := len(s.Files()); n != 2 {
			t.Fatalf("%d files within the grace period, want 2", n)
		}
		clk.Advance(time.Second)
		waitUntil(t, "the superseded version deleted", func() bool { return len(s.Files()) == 1 })
	})
	t.Run("commit timeout", func(t *testing.T) {
		ctx := testCtx(t)
		s := &hungStore{Store: memstore.New(), sent: make(chan context.Context, 1)}
		clk := clockwork.NewFakeClock()
		g := newGroup(t, s, core.FormatB2cfs, core.Options{CommitTimeout: hour, Clock: clk})
		if _, err := g.List(ctx); err != nil {
			t.Fatal(err)
		}
		s.hang.Store(true)
		done := make(chan error, 1)
		go func() { done <- put(ctx, g, "f", "x") }()
		uctx := <-s.sent // B2 has the update and does not answer
		if _, ok := uctx.Deadline(); ok {
			t.Error("the store was handed a deadline of the fake clock")
		}
		clk.Advance(hour)
		select {
		case err := <-done:
			if !errors.Is(err, core.ErrUnknownOutcome) {
				t.Fatalf("commit past CommitTimeout: %v, want an unknown outcome", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("CommitTimeout passed on the clock, the commit did not end")
		}
	})
}

// armed waits until a timer is armed on clk, failing after a generous
// bound: one armed on another clock never shows.
func armed(t *testing.T, clk *clockwork.FakeClock, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := clk.BlockUntilContext(ctx, 1); err != nil {
		t.Fatalf("%s not armed on the group's clock: %v", what, err)
	}
}

// driven returns f(), advancing clk by a millisecond every real one
// meanwhile, for the short waits f meets on it (the pause before it reads
// a lock record again): f then runs on clk's time plus a few milliseconds.
func driven(clk *clockwork.FakeClock, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			clk.Advance(time.Millisecond)
		}
	}
}

// hungStore is a memstore whose UpdateBucketInfo, while hang is set, is
// sent on sent and then answers only when its context ends.
type hungStore struct {
	*memstore.Store
	hang atomic.Bool
	sent chan context.Context
}

func (s *hungStore) UpdateBucketInfo(ctx context.Context, rev int64, info map[string]string) (core.BucketInfo, error) {
	if s.hang.Load() {
		s.sent <- ctx
		<-ctx.Done()
		return core.BucketInfo{}, errors.Join(core.ErrUnknownOutcome, ctx.Err())
	}
	return s.Store.UpdateBucketInfo(ctx, rev, info)
}
