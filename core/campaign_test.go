package core_test

import (
	"flag"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/memstore"
	"github.com/b2cfs/b2cfs/core/storetest"
	"github.com/jonboulle/clockwork"
)

var (
	campaignSeed      = flag.Uint64("campaign.seed", 1, "seed of the campaign's first history (history i has seed+i)")
	campaignHistories = flag.Int("campaign.histories", 200, "randomized histories per on-bucket format")
	campaignOps       = flag.Int("campaign.ops", 30, "operations per history")
)

// TestCampaign runs the deterministic fault campaign on the in-memory
// store: histories of commits, removals, renames, locks and unlocks from
// two hosts, with lost replies, failures before the call, updates that
// get no answer, and interrupts, each history's mix of faults drawn from
// its seed. More histories:
//
//	go test ./core -run TestCampaign -campaign.histories 5000 -v
func TestCampaign(t *testing.T) {
	t.Parallel() // CPU only (time is simulated): beside the other long tests
	sim(t, testCampaign)
}

func testCampaign(t *testing.T) {
	start := time.Now()
	var faults []*injector
	res := storetest.Campaign(t, storetest.CampaignConfig{
		Seed: *campaignSeed, Histories: *campaignHistories, Ops: *campaignOps,
		Formats: []string{core.FormatB2cfs, core.FormatBlazer}, Clock: clockwork.NewRealClock(),
		NewStore: func(t *testing.T, rnd *rand.Rand) (core.Store, storetest.Faults) {
			s := memstore.New()
			in := newInjector(rnd.Uint64())
			in.lost = []float64{0, 0.1, 0.3, 0.5}[rnd.IntN(4)]
			in.fail = []float64{0, 0.05, 0.2}[rnd.IntN(3)]
			in.unknown = []float64{0, 0.2}[rnd.IntN(2)]
			in.cancel = []float64{0, 0.1}[rnd.IntN(2)]
			in.attach(s)
			faults = append(faults, in)
			return s, in
		},
	})
	total := map[string]int{}
	for _, in := range faults {
		for k, v := range in.injected() {
			total[k] += v
		}
	}
	t.Logf("campaign: seeds %d..%d, %d histories, %d operations (%d ok, %d refused, %d failed, %d interrupted); faults injected %v; %v simulated",
		*campaignSeed, *campaignSeed+uint64(*campaignHistories)-1, res.Histories, res.Ops, res.OK, res.Refused, res.Failed, res.Canceled, total, time.Since(start).Round(time.Millisecond))
	if total["lost"] == 0 || total["fail"] == 0 || total["unknown"] == 0 || total["cancel"] == 0 {
		t.Fatalf("some kind of fault was never injected (%v): the campaign proved less than it claims", total)
	}
}
