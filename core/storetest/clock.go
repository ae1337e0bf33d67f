package storetest

import (
	"slices"
	"sort"
	"sync"
	"time"
)

// FakeClock is simulated time for core.Options.Clock: it moves only when
// Advance is called, and fires the timers then due. Host gives each
// simulated host its own view of it, running at its own rate and
// pausable. Safe for concurrent use.
type FakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer // GUARDED_BY(mu); not yet due
	hosts  []*HostClock // GUARDED_BY(mu)
}

type fakeTimer struct {
	at   time.Time
	host *HostClock // nil: the FakeClock's own
	ch   chan time.Time
}

// NewFakeClock returns a clock at an arbitrary fixed instant.
func NewFakeClock() *FakeClock {
	return &FakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// Now returns the simulated time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer fires once d of simulated time has passed; the function
// returned stops it.
func (c *FakeClock) NewTimer(d time.Duration) (<-chan time.Time, func()) { return c.timer(d, nil) }

func (c *FakeClock) timer(d time.Duration, h *HostClock) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), host: h, ch: make(chan time.Time, 1)}
	if d <= 0 {
		c.fireLocked(t)
	} else {
		c.timers = append(c.timers, t)
	}
	return t.ch, func() { c.stop(t) }
}

// stop forgets t if it has not been delivered.
func (c *FakeClock) stop(t *fakeTimer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timers = slices.DeleteFunc(c.timers, func(x *fakeTimer) bool { return x == t })
	if t.host != nil {
		t.host.held = slices.DeleteFunc(t.host.held, func(x *fakeTimer) bool { return x == t })
	}
}

// fireLocked delivers t, or keeps it for its host's Resume while the host
// is paused. LOCKS_REQUIRED(c.mu)
func (c *FakeClock) fireLocked(t *fakeTimer) {
	if h := t.host; h != nil && h.paused {
		h.held = append(h.held, t)
		return
	}
	t.ch <- c.now
}

// Advance moves time by d and fires the timers due, in order.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
	n := 0
	for n < len(c.timers) && !c.timers[n].at.After(c.now) {
		c.fireLocked(c.timers[n])
		n++
	}
	c.timers = c.timers[n:]
}

// Waiting returns how many timers have not been delivered, those paused
// hosts keep included. A test lets background work settle by waiting
// until as many timers as it expects are armed again.
func (c *FakeClock) Waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.timers)
	for _, h := range c.hosts {
		n += len(h.held)
	}
	return n
}

// HostClock is one host's view of a FakeClock (a core.Clock): its
// readings run at rate times the FakeClock's from when it was made, and
// while it is paused its timers are kept, not delivered (a process
// stopped with SIGSTOP: time passes, nothing runs).
type HostClock struct {
	c      *FakeClock
	rate   float64
	epoch  time.Time
	paused bool         // GUARDED_BY(c.mu)
	held   []*fakeTimer // GUARDED_BY(c.mu)
}

// Host returns a view of c running at rate (1: the same pace).
func (c *FakeClock) Host(rate float64) *HostClock {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := &HostClock{c: c, rate: rate, epoch: c.now}
	c.hosts = append(c.hosts, h)
	return h
}

// Now returns the host's reading.
func (h *HostClock) Now() time.Time {
	now := h.c.Now()
	return h.epoch.Add(time.Duration(float64(now.Sub(h.epoch)) * h.rate))
}

// NewTimer fires once d has passed on the host's clock.
func (h *HostClock) NewTimer(d time.Duration) (<-chan time.Time, func()) {
	return h.c.timer(time.Duration(float64(d)/h.rate), h)
}

// Pause keeps the host's timers from firing until Resume.
func (h *HostClock) Pause() {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	h.paused = true
}

// Resume delivers the timers that came due while paused.
func (h *HostClock) Resume() {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	h.paused = false
	for _, t := range h.held {
		t.ch <- h.c.now
	}
	h.held = nil
}
