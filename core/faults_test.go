package core_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/memstore"
)

// updateLatency is how long an update of the bucket info takes in the
// tests where several hosts commit while replies are lost: tens of
// milliseconds, as on B2, and in a bubble it costs no real time. A commit
// whose reply was lost recognises itself only while fewer than LogLen
// commits came after it. Instant updates let the other hosts commit that
// many while a loaded machine keeps the read-back off the CPU; with a
// latency in simulated time, no other update lands while the read-back
// still has work to do, since time stands still until it waits.
const updateLatency = 10 * time.Millisecond

// changes are the memstore operations that change the bucket.
var changes = map[string]bool{"UpdateBucketInfo": true, "Upload": true, "Delete": true, "Copy": true}

// injector draws faults for a memstore from a seeded generator, on both
// sides of a call: before it (the call fails and changes nothing: B2
// unreachable, 5xx, 429; or, for UpdateBucketInfo, no answer although B2
// did not apply it), and after it (applied, reply lost). At most max
// faults in a row hit one operation name, so every loop that retries
// finishes. Safe for concurrent use; with one caller at a time the faults
// are the same for the same seed.
type injector struct {
	mu      sync.Mutex
	rnd     *rand.Rand
	fail    float64       // before: fails, not applied
	unknown float64       // before, UpdateBucketInfo: no answer, not applied
	lost    float64       // after a change: applied, reply lost
	cancel  float64       // before a change: the caller's context is cancelled, the call goes on
	latency time.Duration // how long an update takes (simulated time: see updateLatency)
	max     int
	consec  map[string]int
	counts  map[string]int // faults injected, by kind
	stop    func()         // cancels the context of the operation under way
	paused  bool
}

func newInjector(seed uint64) *injector {
	return &injector{rnd: rand.New(rand.NewPCG(seed, 0x62326366)), max: 3,
		consec: map[string]int{}, counts: map[string]int{}}
}

// attach makes in the fault source of s.
func (in *injector) attach(s *memstore.Store) {
	s.SetFault(in.before)
	s.SetLostReply(in.after)
}

// Interrupt sets the cancel function of the operation under way (nil:
// none), which a cancel fault calls.
func (in *injector) Interrupt(f func()) {
	in.mu.Lock()
	in.stop = f
	in.mu.Unlock()
}

// Pause and Resume stop and restart injecting.
func (in *injector) Pause()  { in.setPaused(true) }
func (in *injector) Resume() { in.setPaused(false) }

func (in *injector) setPaused(p bool) {
	in.mu.Lock()
	in.paused = p
	in.mu.Unlock()
}

// draw reports whether a fault of probability p hits op, within the bound.
// LOCKS_REQUIRED(in.mu)
func (in *injector) draw(op string, p float64) bool {
	if p <= 0 || in.paused || in.consec[op] >= in.max || in.rnd.Float64() >= p {
		return false
	}
	in.consec[op]++
	return true
}

func (in *injector) before(op string) error {
	err := in.decide(op)
	if op == "UpdateBucketInfo" && in.latency > 0 {
		time.Sleep(in.latency) // not holding in.mu: other calls go on meanwhile
	}
	return err
}

// decide draws the fault, if any, that hits op before it runs.
func (in *injector) decide(op string) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	switch {
	case in.draw(op, in.fail):
		in.counts["fail"]++
		return fmt.Errorf("%w: injected failure of %s", core.ErrUnavailable, op)
	case op == "UpdateBucketInfo" && in.draw(op, in.unknown):
		in.counts["unknown"]++
		return fmt.Errorf("%w: injected: no answer to %s (not applied)", core.ErrUnknownOutcome, op)
	case changes[op] && in.stop != nil && in.draw(op+"/cancel", in.cancel):
		in.counts["cancel"]++
		in.stop()
		return nil
	}
	in.consec[op], in.consec[op+"/cancel"] = 0, 0
	return nil
}

func (in *injector) after(op string) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.draw(op+"/after", in.lost) {
		in.counts["lost"]++
		return fmt.Errorf("injected: reply to %s lost", op)
	}
	in.consec[op+"/after"] = 0
	return nil
}

// injected returns the faults injected so far, by kind.
func (in *injector) injected() map[string]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := map[string]int{}
	for k, v := range in.counts {
		out[k] = v
	}
	return out
}
