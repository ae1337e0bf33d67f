package b2

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/b2cfs/b2cfs/core"
)

// health tracks whether B2 answers, so that an outage costs the calls
// made during it nothing instead of their whole Timeout.
//
// B2 is declared unreachable when a connection cannot be made (refused,
// no route, no name), or when an attempt gets no answer within its
// deadline and then probeMisses probes in a row get none either, nor does
// any other call meanwhile (a black hole: packets dropped, or a listener
// that never answers), unless B2 is busy: a transfer of a MiB or more is
// under way, or one moved bytes within the last probeTimeout. A probe
// queued behind a saturated link, a B2 busy storing parts, or a host (or
// B2) starved of CPU for a few seconds is no evidence of an outage; a
// transfer stalled in a black hole ends on its own deadline
// (Config.Timeout without a byte moving), and the next probe then decides.
// With the default CallTimeout a black hole is declared within about 9 s:
// 2 s for the attempt, then three probes of 2 s, 0.5 s apart. That is
// still within a call's bound (Config.Timeout, 10 s by default), and on a
// loaded machine two probes were not enough: a mount got no answer for
// 6.5 s while the emulator answered another.
//
// Until B2 answers again, every call fails at once with
// core.ErrUnavailable, calls under way included (their attempts are cut
// short): an operation that waited for B2 would hold the kernel's lock on
// its directory, and every lookup there would wait too. A probe is sent
// every probeEvery, and any answer to any call (an error answer included)
// ends the outage. One log line marks each change. Safe for concurrent
// use.
type health struct {
	probe func(context.Context) error // nil, or an error that is an answer of B2 (answered), means reachable
	log   *slog.Logger

	mu      sync.Mutex
	since   time.Time       // GUARDED_BY(mu); when B2 was declared unreachable; zero while reachable
	cause   error           // GUARDED_BY(mu); why
	probing bool            // GUARDED_BY(mu); a prober goroutine runs
	out     atomic.Bool     // since is set: read without mu on every answer (a download's every read)
	clock   mono            // reads the times below
	moved   atomic.Int64    // when a transfer last moved bytes (clock); never: notYet
	heard   atomic.Uint64   // answers B2 has given, counted
	running atomic.Int32    // attempts under way of transfers of busyBytes or more
	down    context.Context // GUARDED_BY(mu); ends when B2 is declared unreachable
	goDown  context.CancelFunc
	closed  chan struct{}
}

// probeEvery is how often an unreachable B2 is probed, and probeTimeout
// how long a probe waits for its answer: B2 is found back within
// probeEvery of its return, or probeEvery+probeTimeout when a probe was
// lost in the outage. probeMisses probes in a row without an answer
// declare an outage: one probe of 2 s after an attempt of 2 s took a
// machine starved of CPU for 4 s for a B2 that had gone, and two probes
// one whose mount went 6.5 s without an answer.
const (
	probeEvery   = 500 * time.Millisecond
	probeTimeout = 2 * time.Second
	probeMisses  = 3
)

func newHealth(probe func(context.Context) error, log *slog.Logger) *health {
	h := &health{probe: probe, log: log, closed: make(chan struct{}), clock: newMono()}
	h.moved.Store(notYet)
	h.down, h.goDown = context.WithCancel(context.Background())
	return h
}

// mono reads a monotonic clock, in nanoseconds since it was made, for the
// atomics that record when something last happened: Unix times read from
// the wall clock would move when it is set.
type mono struct{ epoch time.Time }

func newMono() mono { return mono{epoch: time.Now()} }

func (m mono) now() int64                  { return int64(time.Since(m.epoch)) }
func (m mono) since(t int64) time.Duration { return time.Duration(m.now() - t) }

// notYet is a mono time long past: what never happened.
const notYet = math.MinInt64 / 2

// errDown is the cause of attempts cut short by an outage.
var errDown = fmt.Errorf("%w: B2 unreachable", core.ErrUnavailable)

// check returns, while B2 is reachable, a context that ends when B2 is
// declared unreachable; else an error wrapping core.ErrUnavailable that
// says since when and why not.
func (h *health) check() (context.Context, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.since.IsZero() {
		return h.down, nil
	}
	return nil, fmt.Errorf("%w: B2 unreachable since %s (%v); probed every %v",
		core.ErrUnavailable, h.since.Format(time.TimeOnly), h.cause, probeEvery)
}

// outage returns a context that ends when B2 is declared unreachable (at
// once, if it is).
func (h *health) outage() context.Context {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.down
}

// reachable reports whether B2 answers, and if not since when.
func (h *health) reachable() (bool, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.since.IsZero(), h.since
}

// answered records that B2 answered a request.
func (h *health) answered() {
	h.heard.Add(1)
	if !h.out.Load() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.since.IsZero() {
		return
	}
	h.log.Warn("B2 reachable again", "after", time.Since(h.since).Round(time.Millisecond).String())
	h.since, h.cause = time.Time{}, nil
	h.out.Store(false)
	h.down, h.goDown = context.WithCancel(context.Background())
}

// progress records that a transfer moved bytes.
func (h *health) progress() { h.moved.Store(h.clock.now()) }

// busyBytes is the least a transfer moves for B2 to be busy with it (see
// transfer).
const busyBytes = 1 << 20

// transfer records the start of an attempt that makes B2 store n bytes,
// and returns the function that records its end. While it runs, an attempt
// and a probe without an answer do not declare B2 unreachable if n is at
// least busyBytes: B2 may be busy storing it.
func (h *health) transfer(n int64) func() {
	if n < busyBytes {
		return func() {}
	}
	h.running.Add(1)
	return func() { h.running.Add(-1) }
}

// busy reports whether a transfer of at least busyBytes is under way, or
// any transfer moved bytes within the last probeTimeout.
func (h *health) busy() bool {
	return h.running.Load() > 0 || h.clock.since(h.moved.Load()) < probeTimeout
}

// refused records that a connection to B2 could not be made: B2 is
// unreachable now.
func (h *health) refused(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.downLocked(err)
	h.startProbingLocked()
}

// silent records that an attempt got no answer within its deadline: a
// probe decides whether B2 is unreachable or only slow for that call.
func (h *health) silent() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.startProbingLocked()
}

// downLocked declares B2 unreachable. LOCKS_REQUIRED(mu)
func (h *health) downLocked(cause error) {
	if !h.since.IsZero() {
		return
	}
	h.since, h.cause = time.Now(), cause
	h.out.Store(true)
	h.goDown()
	h.log.Warn("B2 unreachable: calls fail at once until it answers again; reads answer from the last view",
		"err", cause.Error())
}

// startProbingLocked starts the prober unless it runs. LOCKS_REQUIRED(mu)
func (h *health) startProbingLocked() {
	if h.probing {
		return
	}
	h.probing = true
	go h.probeLoop()
}

// probeLoop probes B2 until it answers: at once, then every probeEvery.
// probeMisses probes in a row without an answer, and no answer to any
// other call since the first, declare B2 unreachable.
func (h *health) probeLoop() {
	defer func() {
		h.mu.Lock()
		h.probing = false
		h.mu.Unlock()
	}()
	start := h.heard.Load()
	for misses := 1; ; misses++ {
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		err := h.probe(ctx)
		cancel()
		if err == nil {
			h.answered()
			return
		}
		h.mu.Lock()
		if h.since.IsZero() {
			if h.heard.Load() > start {
				h.mu.Unlock()
				return // B2 answered another call: it is there
			}
			if misses >= probeMisses && !h.busy() {
				h.downLocked(fmt.Errorf("no answer to %d probes after a call got none: %v", misses, err))
			}
		}
		h.mu.Unlock()
		t := time.NewTimer(probeEvery)
		select {
		case <-t.C:
		case <-h.closed:
			t.Stop()
			return
		}
		if ok, _ := h.reachable(); ok && (misses >= probeMisses || h.heard.Load() > start) {
			return // another call's answer ended the outage, or B2 was busy, not gone
		}
	}
}

// close stops probing.
func (h *health) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.closed:
	default:
		close(h.closed)
	}
}
