package storetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/core"
	"github.com/jonboulle/clockwork"
)

// Faults is the fault source a campaign runs under.
type Faults interface {
	// Pause stops injecting faults until Resume: the campaign checks the
	// store between operations while paused.
	Pause()
	Resume()
	// Interrupt arranges for cancel to be called while the next operation
	// runs (when the source decides to interrupt it); nil clears it.
	Interrupt(cancel func())
}

// CampaignConfig describes a campaign of randomized histories.
type CampaignConfig struct {
	Seed      uint64 // the first history's seed; history i has Seed+i
	Histories int    // per format
	Ops       int    // operations per history
	Formats   []string
	// NewStore returns an empty bucket for one history and its faults,
	// drawn from rnd (which depends only on the seed).
	NewStore func(t *testing.T, rnd *rand.Rand) (core.Store, Faults)
	// Clock is the groups' Options.Clock (nil: the system's). The
	// campaign's own waits and bounds are on the time package.
	Clock clockwork.Clock
}

// CampaignResult counts what a campaign did.
type CampaignResult struct {
	Histories, Ops                int
	OK, Refused, Failed, Canceled int // outcomes of operations
}

// Campaign runs short randomized histories of commits, removals, renames,
// locks and unlocks from two groups (hosts) on one store that injects
// faults, one operation at a time, and checks after every operation that
// the group is readable and holds exactly what the operations reported:
// every operation reported successful took effect, every operation
// reported failed (B2 unavailable, interrupted) changed nothing, and a
// conflict is reported only when the object really changed. No outcome
// may stay unknown. A failure names the seed of its history; run it alone
// with the same seed to replay it: the faults of one history follow from
// its seed.
func Campaign(t *testing.T, cfg CampaignConfig) CampaignResult {
	t.Helper()
	var res CampaignResult
	for _, format := range cfg.Formats {
		for i := 0; i < cfg.Histories; i++ {
			seed := cfg.Seed + uint64(i)
			h := &history{t: t, format: format, seed: seed, rnd: rand.New(rand.NewPCG(seed, 0x63616d70))}
			if !h.run(cfg, &res) {
				t.Fatalf("history %s seed %d failed (replay: -campaign.seed %d -campaign.histories 1)", format, seed, seed)
			}
			res.Histories++
		}
	}
	return res
}

type history struct {
	t      *testing.T
	format string
	seed   uint64
	rnd    *rand.Rand

	store  core.Store
	faults Faults
	hosts  [2]*core.Group
	locks  [2]*core.Mutex
	check  *core.Group

	model  map[string]modelObj // what the group must hold
	holder int                 // host holding the lock, -1 for none
}

type modelObj struct{ key, value string }

const lockName = ".b2cfs/locks/campaign"

var objNames = []string{"a", "b", "c", "d/e", "d/f"}

func (h *history) fail(format string, a ...any) bool {
	h.t.Errorf("%s seed %d: %s", h.format, h.seed, fmt.Sprintf(format, a...))
	return false
}

func (h *history) run(cfg CampaignConfig, res *CampaignResult) bool {
	h.store, h.faults = cfg.NewStore(h.t, h.rnd)
	ctx := context.Background()
	for i := range h.hosts {
		ttl := time.Duration(-1)
		if h.rnd.IntN(2) == 0 {
			ttl = time.Hour // a view that goes stale: commits find out by their compare-and-swap
		}
		g, err := core.NewGroup(h.store, "campaign", core.Options{Format: h.format, IndexTTL: ttl, Grace: -1,
			Host: fmt.Sprintf("host-%d", i), CommitTimeout: 20 * time.Second, LockTimeout: 20 * time.Second, Clock: cfg.Clock})
		if err != nil {
			return h.fail("%v", err)
		}
		defer g.Close()
		h.hosts[i] = g
		h.locks[i] = g.Mutex(ctx, lockName)
	}
	check, err := core.NewGroup(h.store, "campaign", core.Options{Format: h.format, IndexTTL: -1, Grace: -1, Clock: cfg.Clock})
	if err != nil {
		return h.fail("%v", err)
	}
	defer check.Close()
	h.check, h.model, h.holder = check, map[string]modelObj{}, -1
	for op := 0; op < cfg.Ops; op++ {
		if !h.step(op, res) {
			return false
		}
		res.Ops++
	}
	// Release the lock and let failed attempts clean up: it must end free.
	if h.holder >= 0 {
		h.faults.Pause()
		if err := h.locks[h.holder].UnlockContext(ctx); err != nil {
			return h.fail("final unlock: %v", err)
		}
		h.faults.Resume()
	}
	h.faults.Pause()
	defer h.faults.Resume()
	return h.waitLock(func(hs []core.Holder) bool { return len(hs) == 0 }, "lock free at the end")
}

// step runs one random operation and checks the store against the model.
func (h *history) step(op int, res *CampaignResult) bool {
	host := h.rnd.IntN(2)
	g := h.hosts[host]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h.faults.Interrupt(cancel)
	defer h.faults.Interrupt(nil)
	next := h.clone()
	var err error
	var what string
	switch r := h.rnd.IntN(10); {
	case r < 4: // commit, usually with the right key
		name := objNames[h.rnd.IntN(len(objNames))]
		cur, exists := h.model[name]
		key := cur.key
		if h.rnd.IntN(5) == 0 {
			key = h.staleKey(cur.key)
		}
		value := fmt.Sprintf("s%d-op%d", h.seed, op)
		what = fmt.Sprintf("commit %s (key %.6s) = %s", name, key, value)
		var nk string
		nk, err = g.Commit(ctx, name, key, strings.NewReader(value), int64(len(value)))
		want := (exists && key == cur.key) || (!exists && key == "")
		if !h.agree(what, err, want) {
			return false
		}
		next[name] = modelObj{key: nk, value: value}
	case r < 6: // remove
		name := objNames[h.rnd.IntN(len(objNames))]
		cur, exists := h.model[name]
		key := cur.key
		if h.rnd.IntN(5) == 0 {
			key = h.staleKey(cur.key)
		}
		what = fmt.Sprintf("remove %s (key %.6s)", name, key)
		err = g.Remove(ctx, name, key)
		if !h.agree(what, err, exists && key == cur.key) {
			return false
		}
		delete(next, name)
	case r < 8: // rename, maybe over an existing object
		from := objNames[h.rnd.IntN(len(objNames))]
		to := objNames[h.rnd.IntN(len(objNames))]
		cur, exists := h.model[from]
		if from == to {
			to = from + ".moved"
		}
		what = fmt.Sprintf("rename %s (key %.6s) -> %s", from, cur.key, to)
		moves := []core.Move{{From: from, To: to, Key: cur.key, ToKey: h.model[to].key}}
		err = g.Rename(ctx, moves)
		if !h.agree(what, err, exists) {
			return false
		}
		delete(next, from)
		next[to] = modelObj{key: moves[0].NewKey, value: cur.value}
	default: // lock or unlock
		return h.lockStep(ctx, host, res)
	}
	count(res, err)
	if err == nil {
		h.model = next
	}
	return h.verify(what, err)
}

// agree checks a reported outcome against the model before the operation:
// want says whether its precondition held.
func (h *history) agree(what string, err error, want bool) bool {
	switch {
	case errors.Is(err, core.ErrUnknownOutcome):
		return h.fail("%s: outcome left unknown: %v", what, err)
	case err == nil && !want:
		return h.fail("%s succeeded, but its precondition did not hold", what)
	case (errors.Is(err, core.ErrConflict) || errors.Is(err, core.ErrNotExist)) && want:
		return h.fail("%s: false conflict: %v", what, err)
	case err != nil && !errors.Is(err, core.ErrConflict) && !errors.Is(err, core.ErrNotExist) &&
		!errors.Is(err, core.ErrUnavailable) && !errors.Is(err, context.Canceled):
		return h.fail("%s: unexpected error: %v", what, err)
	}
	return true
}

func count(res *CampaignResult, err error) {
	switch {
	case err == nil:
		res.OK++
	case errors.Is(err, core.ErrConflict) || errors.Is(err, core.ErrNotExist) || errors.Is(err, core.ErrLockHeld):
		res.Refused++
	case errors.Is(err, context.Canceled):
		res.Canceled++
	default:
		res.Failed++
	}
}

func (h *history) lockStep(ctx context.Context, host int, res *CampaignResult) bool {
	m := h.locks[host]
	if h.holder == host {
		err := m.UnlockContext(ctx)
		count(res, err)
		if err == nil {
			h.holder = -1
		} else if errors.Is(err, core.ErrUnknownOutcome) {
			return h.fail("unlock by host %d: outcome left unknown: %v", host, err)
		}
		return h.verifyLock(fmt.Sprintf("unlock by host %d", host), err)
	}
	err := m.TryLock(ctx, core.Exclusive)
	count(res, err)
	others := h.holder >= 0
	what := fmt.Sprintf("lock by host %d", host)
	switch {
	case err == nil && h.holder >= 0:
		return h.fail("%s succeeded while host %d holds the lock", what, h.holder)
	case err == nil:
		h.holder = host
	case errors.Is(err, core.ErrLockHeld) && !others:
		return h.fail("%s: false busy: %v", what, err)
	case errors.Is(err, core.ErrLockHeld):
	case errors.Is(err, core.ErrUnknownOutcome):
		return h.fail("%s: outcome left unknown: %v", what, err)
	case errors.Is(err, core.ErrUnavailable) || errors.Is(err, context.Canceled):
		// Its record may be there until the clean-up in the background
		// has run: wait for it, with faults, while nothing else runs, so
		// that the faults it meets follow from the seed too.
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		serr := m.Settle(sctx)
		cancel()
		if serr != nil {
			return h.fail("%s: the failed attempt was never undone: %v", what, serr)
		}
	default:
		return h.fail("%s: unexpected error: %v", what, err)
	}
	return h.verifyLock(what, err)
}

// verifyLock waits for lingering failed attempts to be cleaned up, then
// checks the lock record holds exactly the model's holder.
func (h *history) verifyLock(what string, err error) bool {
	h.faults.Pause()
	defer h.faults.Resume()
	want := ""
	if h.holder >= 0 {
		want = fmt.Sprintf("host-%d", h.holder)
	}
	return h.waitLock(func(hs []core.Holder) bool {
		return (want == "" && len(hs) == 0) || (len(hs) == 1 && hs[0].Host == want)
	}, fmt.Sprintf("after %s (%v): holder %q", what, err, want)) && h.verify(what, err)
}

// waitLock polls the lock record until ok holds, with a generous bound:
// clean-ups of failed attempts run in the background.
func (h *history) waitLock(ok func([]core.Holder) bool, what string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var hs []core.Holder
	var err error
	for ctx.Err() == nil {
		if hs, err = h.check.Holders(ctx, lockName); err == nil && ok(hs) {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return h.fail("%s: lock record never settled: holders %+v, err %v", what, hs, err)
}

// verify checks with faults paused that the group is readable and holds
// exactly the model.
func (h *history) verify(what string, opErr error) bool {
	h.faults.Pause()
	defer h.faults.Resume()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	entries, err := Keys(ctx, h.check)
	if err != nil {
		return h.fail("after %s (%v): group unreadable: %v", what, opErr, err)
	}
	var got, want []string
	for name, key := range entries {
		if name == lockName {
			continue
		}
		r := h.check.OpenVersion(ctx, name, key)
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return h.fail("after %s (%v): %s unreadable: %v", what, opErr, name, err)
		}
		got = append(got, name+"="+string(b))
		if m, ok := h.model[name]; ok && m.key != key && m.key != "" {
			return h.fail("after %s (%v): %s has key %.6s, the model %.6s", what, opErr, name, key, m.key)
		}
	}
	for name, m := range h.model {
		want = append(want, name+"="+m.value)
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		return h.fail("after %s (%v):\n  store %v\n  model %v", what, opErr, got, want)
	}
	return true
}

func (h *history) clone() map[string]modelObj {
	out := make(map[string]modelObj, len(h.model))
	for k, v := range h.model {
		out[k] = v
	}
	return out
}

// staleKey returns a key other than cur: empty, or one never committed.
func (h *history) staleKey(cur string) string {
	if cur != "" && h.rnd.IntN(2) == 0 {
		return ""
	}
	return fmt.Sprintf("%040x", h.rnd.Uint64())
}
