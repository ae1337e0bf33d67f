package core_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/memstore"
	"github.com/b2cfs/b2cfs/core/storetest"
)

// lostReplies is the fault mix of the first scenario: 30 % of the
// replies to calls that change the bucket are lost after B2 applied them.
// Updates take updateLatency, as on B2.
func lostReplies(seed uint64) *injector {
	in := newInjector(seed)
	in.lost = 0.3
	in.latency = updateLatency
	return in
}

func TestLostRepliesIncrements(t *testing.T) { bothFormats(t, testLostRepliesIncrements) }

func testLostRepliesIncrements(t *testing.T, format string) {
	s := memstore.New()
	in := lostReplies(1)
	in.attach(s)
	opts := core.Options{Grace: time.Millisecond}
	hosts := []*core.Group{newGroup(t, s, format, opts), newGroup(t, s, format, opts)}
	check := newGroup(t, s, format, core.Options{IndexTTL: -1, Grace: -1})
	failed := storetest.FaultyIncrements(t, hosts, check, 10, 20)
	got := in.injected()
	t.Logf("2 hosts x 5 workers x 20 increments: %d lost replies injected, %d increments reported failed and retried", got["lost"], failed)
	if got["lost"] == 0 {
		t.Fatal("no reply was lost: the test proved nothing")
	}
	s.SetFault(nil)
	s.SetLostReply(nil)
	checkReadable(t, s, format)
}

func TestLostRepliesLinearizable(t *testing.T) { bothFormats(t, testLostRepliesLinearizable) }

func testLostRepliesLinearizable(t *testing.T, format string) {
	s := memstore.New()
	in := lostReplies(2)
	in.fail = 0.05
	in.attach(s)
	var groups []*core.Group
	for i := 0; i < 3; i++ {
		groups = append(groups, newGroup(t, s, format, core.Options{IndexTTL: -1, Grace: -1}))
	}
	storetest.Linearizable(t, groups, 40)
	if in.injected()["lost"] == 0 {
		t.Fatal("no reply was lost: the test proved nothing")
	}
	s.SetFault(nil)
	s.SetLostReply(nil)
	checkReadable(t, s, format)
}

// checkReadable opens the group afresh and reads every object.
func checkReadable(t *testing.T, s core.Store, format string) map[string]string {
	t.Helper()
	g := newGroup(t, s, format, core.Options{IndexTTL: -1, Grace: -1})
	names, err := g.List(testCtx(t))
	if err != nil {
		t.Fatalf("group unreadable: %v", err)
	}
	out := map[string]string{}
	for _, n := range names {
		out[n] = read(t, g, n)
	}
	return out
}

// countingMetrics counts unknown outcomes by resolution.
type countingMetrics struct {
	core.Metrics
	unknown map[string]*atomic.Int64
}

func newCountingMetrics() *countingMetrics {
	m := &countingMetrics{Metrics: nopMetrics{}, unknown: map[string]*atomic.Int64{}}
	for _, r := range []string{"landed", "lost", "pending", "gone", "unresolved"} {
		m.unknown[r] = new(atomic.Int64)
	}
	return m
}

func (m *countingMetrics) UnknownOutcome(r string) { m.unknown[r].Add(1) }

type nopMetrics struct{}

func (nopMetrics) Committed(string)                          {}
func (nopMetrics) CASRetried()                               {}
func (nopMetrics) UnknownOutcome(string)                     {}
func (nopMetrics) LockAcquired(core.LockMode, time.Duration) {}
func (nopMetrics) LeaseRenewed()                             {}
func (nopMetrics) LeaseLost()                                {}

// TestUnknownOutcomeCost pins what one lost reply costs: one
// b2_list_buckets to read the bucket back when the update had landed, and
// that plus one more update when it had not.
func TestUnknownOutcomeCost(t *testing.T) {
	bothFormatsEach(t, []string{"landed", "not applied"}, testUnknownOutcomeCost)
}

// unknownOutcomeCases are the cases of TestUnknownOutcomeCost by name:
// whether B2 applied the update, and the calls and resolution expected.
var unknownOutcomeCases = map[string]struct {
	applied         bool
	lists, updates  int
	wantResolutions string
}{
	"landed":      {true, 1, 1, "landed"},
	"not applied": {false, 1, 2, "pending"},
}

func testUnknownOutcomeCost(t *testing.T, format, name string) {
	c := unknownOutcomeCases[name]
	ctx := testCtx(t)
	s := memstore.New()
	m := newCountingMetrics()
	g := newGroup(t, s, format, core.Options{Metrics: m})
	if _, err := g.Commit(ctx, "warm", "", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	var once atomic.Bool
	fault := func(op string) error {
		if op == "UpdateBucketInfo" && once.CompareAndSwap(false, true) {
			return errors.New("reply lost")
		}
		return nil
	}
	if c.applied {
		s.SetLostReply(fault)
	} else {
		s.SetFault(func(op string) error {
			if err := fault(op); err != nil {
				return fmt.Errorf("%w: %v", core.ErrUnknownOutcome, err)
			}
			return nil
		})
	}
	before := s.Calls()
	key, err := g.Commit(ctx, "f", "", strings.NewReader("hello"), 5)
	if err != nil {
		t.Fatalf("commit with one lost reply: %v", err)
	}
	after := s.Calls()
	lists := after["BucketInfo"] - before["BucketInfo"]
	updates := after["UpdateBucketInfo"] - before["UpdateBucketInfo"]
	t.Logf("one unknown outcome (%s): %d b2_list_buckets, %d b2_update_bucket", name, lists, updates)
	if lists != c.lists || updates != c.updates {
		t.Errorf("calls: %d lists and %d updates, want %d and %d", lists, updates, c.lists, c.updates)
	}
	if n := m.unknown[c.wantResolutions].Load(); n != 1 {
		t.Errorf("resolutions %q: %d, want 1", c.wantResolutions, n)
	}
	s.SetFault(nil)
	s.SetLostReply(nil)
	got := checkReadable(t, s, format)
	if got["f"] != "hello" {
		t.Errorf("f = %q after the commit, want hello", got["f"])
	}
	if k, _ := storetest.Key(ctx, newGroup(t, s, format, core.Options{IndexTTL: -1}), "f"); k != key {
		t.Errorf("key of f = %s, commit returned %s", k, key)
	}
}

// TestInterruptAfterSend cancels the caller's context while B2 has the
// update: the commit runs to its outcome and reports it.
func TestInterruptAfterSend(t *testing.T) { bothFormats(t, testInterruptAfterSend) }

func testInterruptAfterSend(t *testing.T, format string) {
	s := memstore.New()
	g := newGroup(t, s, format, core.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.SetFault(func(op string) error {
		if op == "UpdateBucketInfo" {
			cancel() // the interrupt arrives while the update is on its way
		}
		return nil
	})
	key, err := g.Commit(ctx, "f", "", strings.NewReader("kept"), 4)
	if err != nil {
		t.Fatalf("commit interrupted after its update was sent: %v (the update was applied)", err)
	}
	s.SetFault(nil)
	if got := checkReadable(t, s, format); got["f"] != "kept" || key == "" {
		t.Fatalf("after the interrupted commit: %q (key %q), want kept", got["f"], key)
	}

	// Interrupted before anything was sent: EINTR, and nothing changed.
	ctx2, cancel2 := context.WithCancel(context.Background())
	s.SetFault(func(op string) error {
		if op == "Upload" {
			cancel2()
		}
		return nil
	})
	gone := strings.Repeat("gone", core.InlineDefault) // too large to go inline: an upload
	_, err = g.Commit(ctx2, "g", "", strings.NewReader(gone), int64(len(gone)))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("commit interrupted during its upload: %v, want context.Canceled", err)
	}
	s.SetFault(nil)
	if got := checkReadable(t, s, format); len(got) != 1 {
		t.Fatalf("after the commit interrupted before its update: %v, want only f", got)
	}
}

// TestUnknownOutcomeUnresolved: the reply is lost and B2 cannot be read
// back within the commit's deadline. The commit must say so (matching
// ErrUnknownOutcome and ErrUnavailable), must not claim a conflict, and
// must keep what the index may reference: once B2 answers again the
// group is readable and holds the commit.
func TestUnknownOutcomeUnresolved(t *testing.T) { bothFormats(t, testUnknownOutcomeUnresolved) }

func testUnknownOutcomeUnresolved(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	g := newGroup(t, s, format, core.Options{CommitTimeout: 200 * time.Millisecond})
	if _, err := g.Commit(ctx, "warm", "", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	s.SetLostReply(func(op string) error {
		if op == "UpdateBucketInfo" {
			down.Store(true)
			return errors.New("reply lost")
		}
		return nil
	})
	s.SetFault(func(op string) error {
		if down.Load() {
			return fmt.Errorf("%w: outage", core.ErrUnavailable)
		}
		return nil
	})
	_, err := g.Commit(ctx, "f", "", strings.NewReader("landed"), 6)
	if !errors.Is(err, core.ErrUnknownOutcome) || !errors.Is(err, core.ErrUnavailable) || errors.Is(err, core.ErrConflict) {
		t.Fatalf("commit whose outcome cannot be learnt: %v, want unknown outcome, unavailable", err)
	}
	s.SetFault(nil)
	s.SetLostReply(nil)
	if got := checkReadable(t, s, format); got["f"] != "landed" {
		t.Fatalf("after the outage: f = %q, want landed (the update was applied)", got["f"])
	}
}

// TestUnknownOutcomeEvidenceGone: while a commit whose reply was lost
// waits to read the bucket back, more commits than the log keeps come
// after it. It cannot tell what happened, and says so.
func TestUnknownOutcomeEvidenceGone(t *testing.T) { bothFormats(t, testUnknownOutcomeEvidenceGone) }

func testUnknownOutcomeEvidenceGone(t *testing.T, format string) {
	ctx := testCtx(t)
	s := memstore.New()
	g := newGroup(t, s, format, core.Options{})
	other := newGroup(t, s, format, core.Options{})
	var fired atomic.Bool
	s.SetLostReply(func(op string) error {
		if op == "UpdateBucketInfo" && fired.CompareAndSwap(false, true) {
			key := ""
			for i := 0; i < core.LogLen+5; i++ {
				var err error
				if key, err = other.Commit(ctx, "o", key, strings.NewReader(fmt.Sprint(i)), int64(len(fmt.Sprint(i)))); err != nil {
					t.Errorf("other host: %v", err)
				}
			}
			return errors.New("reply lost")
		}
		return nil
	})
	_, err := g.Commit(ctx, "f", "", strings.NewReader("mine"), 4)
	if !errors.Is(err, core.ErrUnknownOutcome) {
		t.Fatalf("commit whose evidence was overwritten: %v, want unknown outcome", err)
	}
	s.SetLostReply(nil)
	if got := checkReadable(t, s, format); got["f"] != "mine" || len(got) != 2 {
		t.Fatalf("group after: %v, want f = mine and o", got)
	}
}

func TestLostRepliesLocks(t *testing.T) { bothFormats(t, testLostRepliesLocks) }

func testLostRepliesLocks(t *testing.T, format string) {
	s := memstore.New()
	in := lostReplies(3)
	in.attach(s)
	var hosts []*core.Group
	for i := 0; i < 2; i++ {
		hosts = append(hosts, newGroup(t, s, format, core.Options{Host: fmt.Sprintf("host-%d", i), Grace: time.Millisecond}))
	}
	check := newGroup(t, s, format, core.Options{IndexTTL: -1, Grace: -1})
	failed := storetest.LockedIncrements(t, hosts, check, ".b2cfs/locks/counter", 25)
	t.Logf("2 hosts x 25 locked increments: %d lost replies, %d steps failed and retried", in.injected()["lost"], failed)
	if in.injected()["lost"] == 0 {
		t.Fatal("no reply was lost: the test proved nothing")
	}
}
