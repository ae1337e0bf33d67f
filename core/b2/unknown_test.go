package b2_test

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/b2cfs/b2cfs/b2emu"
	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/b2"
	"github.com/b2cfs/b2cfs/core/storetest"
)

// stateChanging are the B2 calls that change a bucket.
var stateChanging = []string{"b2_update_bucket", "b2_upload_file", "b2_upload_part", "b2_finish_large_file",
	"b2_delete_file_version", "b2_copy_file", "b2_hide_file"}

// callTimeout is the attempt deadline of stores in these tests, and
// lateWait how long the emulator holds back a late reply: past it.
const (
	callTimeout = 2 * time.Second
	lateWait    = 3 * time.Second
)

// loseAll makes the emulator apply rate of the calls that change the
// bucket and lose their replies, in every way it can. Updates take 10 ms,
// as B2's take tens: the emulator alone, under the race detector, can
// commit faster than any bucket on B2, and a commit whose reply was lost
// recognises itself only while fewer than the commit log's 32 commits
// came after it.
func loseAll(srv *b2emu.Server, rate float64) {
	for _, c := range stateChanging {
		f := b2emu.Fault{LostRate: rate, LostAs: b2emu.LostMixed, LateWait: lateWait, MaxConsecutive: 3}
		if c == "b2_update_bucket" {
			f.Latency = 10 * time.Millisecond
		}
		srv.SetFault(c, f)
	}
}

func clearFaults(srv *b2emu.Server) {
	for _, c := range append(stateChanging, "*", "b2_list_buckets", "b2_download_file_by_name") {
		srv.SetFault(c, b2emu.Fault{})
	}
}

func lostTotal(srv *b2emu.Server) int64 {
	var n int64
	for _, v := range srv.Stats().Lost {
		n += v
	}
	return n
}

// hosts returns n groups of one new bucket, each on its own store (a host).
func hosts(t *testing.T, srv *b2emu.Server, url string, n int, opts core.Options) []*core.Group {
	t.Helper()
	return newGroupsWith(t, srv, url, n, opts, b2.Config{CallTimeout: callTimeout})
}

// readAll opens the group afresh and reads every object: the group must
// be readable and every object it references intact.
func readAll(t *testing.T, g *core.Group) map[string]string {
	t.Helper()
	ctx := testCtx(t)
	entries, err := storetest.Keys(ctx, g)
	if err != nil {
		t.Fatalf("group unreadable: %v", err)
	}
	out := map[string]string{}
	for name, key := range entries {
		r := g.OpenVersion(ctx, name, key)
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatalf("%s unreadable: %v", name, err)
		}
		out[name] = string(b)
	}
	return out
}

// TestLostRepliesOnB2 is the scenario on the emulator through the
// B2 adapter: 30 % of the replies to every call that changes the bucket
// are lost after it was applied (connection dropped, 500, 503, or sent
// after the client's deadline).
func TestLostRepliesOnB2(t *testing.T) {
	bothFormatsEach(t, []string{"increments", "linearizable", "locks"}, testLostRepliesOnB2)
}

func testLostRepliesOnB2(t *testing.T, format, c string) {
	srv, url := emulator(t, b2emu.Config{})
	switch c {
	case "increments":
		gs := hosts(t, srv, url, 3, core.Options{Format: format, Grace: 50 * time.Millisecond})
		loseAll(srv, 0.3)
		before := lostTotal(srv)
		failed := storetest.FaultyIncrements(t, gs[:2], gs[2], 10, 20)
		t.Logf("2 hosts x 5 workers x 20 increments = 200 with %d replies lost; %d increments reported failed and retried", lostTotal(srv)-before, failed)
		if lostTotal(srv) == before {
			t.Fatal("no reply was lost")
		}
		clearFaults(srv)
		readAll(t, gs[2])
	case "linearizable":
		gs := hosts(t, srv, url, 3, core.Options{Format: format, IndexTTL: -1, Grace: -1})
		loseAll(srv, 0.3)
		before := lostTotal(srv)
		storetest.Linearizable(t, gs, 15)
		t.Logf("%d replies lost", lostTotal(srv)-before)
		clearFaults(srv)
		readAll(t, gs[0])
	case "locks":
		gs := hosts(t, srv, url, 3, core.Options{Format: format, Grace: 50 * time.Millisecond, LockTimeout: 20 * time.Second})
		loseAll(srv, 0.3)
		before := lostTotal(srv)
		failed := storetest.LockedIncrements(t, gs[:2], gs[2], ".b2cfs/locks/counter", 25)
		t.Logf("2 hosts x 25 lock-protected increments = 50 with %d replies lost; %d steps failed and retried", lostTotal(srv)-before, failed)
		clearFaults(srv)
		readAll(t, gs[2])
	}
}

// emuFaults is a campaign's fault source on the emulator: lost replies of
// every kind, 5xx and 429 before the call, expired account tokens, and
// interrupts at a random moment of an operation.
type emuFaults struct {
	srv    *b2emu.Server
	faults map[string]b2emu.Fault
	rnd    *rand.Rand
	cancel float64 // probability of interrupting an operation

	mu    sync.Mutex
	timer *time.Timer
}

func (f *emuFaults) Pause() {
	for c := range f.faults {
		f.srv.SetFault(c, b2emu.Fault{})
	}
}

func (f *emuFaults) Resume() {
	for c, ft := range f.faults {
		f.srv.SetFault(c, ft)
	}
}

func (f *emuFaults) Interrupt(cancel func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.timer != nil {
		f.timer.Stop()
		f.timer = nil
	}
	if cancel != nil && f.rnd.Float64() < f.cancel {
		f.timer = time.AfterFunc(time.Duration(f.rnd.IntN(30))*time.Millisecond, cancel)
	}
}

// TestCampaignOnB2 runs the fault campaign through blazer and the B2
// adapter on the emulator, adding the faults only B2 has (5xx and 429
// answers the adapter retries, expired tokens). The emulator draws its
// faults from its own generator, so a failing history replays in its
// operations, not exactly in its faults. More histories:
//
//	go test ./core/b2 -run TestCampaignOnB2 -campaign.histories 200 -v
func TestCampaignOnB2(t *testing.T) {
	t.Parallel() // CPU only (time is simulated): beside the other long tests
	sim(t, testCampaignOnB2)
}

func testCampaignOnB2(t *testing.T) {
	srv, url := emulator(t, b2emu.Config{})
	start := time.Now()
	lost0 := lostTotal(srv)
	res := storetest.Campaign(t, storetest.CampaignConfig{
		Seed: *campaignSeed, Histories: *campaignHistories, Ops: *campaignOps,
		Formats: []string{core.FormatB2cfs, core.FormatBlazer}, Clock: clockwork.NewRealClock(),
		NewStore: func(t *testing.T, rnd *rand.Rand) (core.Store, storetest.Faults) {
			bucket := fmt.Sprintf("bucket-%d", bucketSeq.Add(1))
			if err := srv.CreateBucket(bucket); err != nil {
				t.Fatal(err)
			}
			s := open(t, srv, url, b2.Config{Bucket: bucket, CallTimeout: callTimeout, Attempts: 6})
			lost := []float64{0.1, 0.3}[rnd.IntN(2)]
			f := &emuFaults{srv: srv, rnd: rnd, cancel: []float64{0, 0.1}[rnd.IntN(2)], faults: map[string]b2emu.Fault{
				"b2_list_buckets":          {ErrorRate: 0.1, Status: 503},
				"b2_download_file_by_name": {ErrorRate: 0.1, Status: 500},
				"b2_get_upload_url":        {ErrorRate: 0.1, Status: 401, Code: "expired_auth_token"},
			}}
			for _, c := range stateChanging {
				modes := []b2emu.LostMode{b2emu.LostDrop, b2emu.Lost500, b2emu.Lost503}
				f.faults[c] = b2emu.Fault{LostRate: lost, LostAs: modes[rnd.IntN(len(modes))], ErrorRate: 0.1,
					Status: []int{429, 503, 401}[rnd.IntN(3)]}
			}
			f.Resume()
			return s, f
		},
	})
	clearFaults(srv)
	t.Logf("campaign on the emulator: seeds %d..%d, %d histories, %d operations (%d ok, %d refused, %d failed, %d interrupted), %d replies lost, %v",
		*campaignSeed, *campaignSeed+uint64(*campaignHistories)-1, res.Histories, res.Ops, res.OK, res.Refused, res.Failed, res.Canceled,
		lostTotal(srv)-lost0, time.Since(start).Round(time.Millisecond))
	if lostTotal(srv) == lost0 {
		t.Fatal("no reply was lost: the campaign proved nothing")
	}
}

var (
	campaignSeed      = flag.Uint64("campaign.seed", 1, "seed of the campaign's first history (history i has seed+i)")
	campaignHistories = flag.Int("campaign.histories", 25, "randomized histories per on-bucket format")
	campaignOps       = flag.Int("campaign.ops", 20, "operations per history")
)
