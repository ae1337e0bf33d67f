package storetest

import (
	"slices"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// HostClock is one simulated host's clock for core.Options.Clock, on a
// base clock shared by all hosts (in a testing/synctest bubble,
// clockwork.NewRealClock: the bubble's simulated time). Its readings run
// at rate times the base's from when it was made, and while it is paused
// its timers are kept, not delivered (a process stopped with SIGSTOP:
// time passes, nothing runs). Safe for concurrent use.
type HostClock struct {
	base  clockwork.Clock
	rate  float64
	epoch time.Time // base reading when made

	mu     sync.Mutex
	paused bool         // GUARDED_BY(mu)
	held   []*hostTimer // GUARDED_BY(mu); came due while paused
	armed  []*hostTimer // GUARDED_BY(mu); not due yet
}

var _ clockwork.Clock = (*HostClock)(nil)

// NewHostClock returns a clock running at rate (1: the base's pace) on
// base.
func NewHostClock(base clockwork.Clock, rate float64) *HostClock {
	return &HostClock{base: base, rate: rate, epoch: base.Now()}
}

// Now returns the host's reading.
func (h *HostClock) Now() time.Time {
	return h.epoch.Add(time.Duration(float64(h.base.Since(h.epoch)) * h.rate))
}

func (h *HostClock) Since(t time.Time) time.Duration { return h.Now().Sub(t) }
func (h *HostClock) Until(t time.Time) time.Duration { return t.Sub(h.Now()) }

// NewTimer fires once d has passed on the host's clock.
func (h *HostClock) NewTimer(d time.Duration) clockwork.Timer {
	t := &hostTimer{h: h, ch: make(chan time.Time, 1)}
	t.arm(d)
	return t
}

// AfterFunc calls f in its own goroutine once d has passed on the host's
// clock.
func (h *HostClock) AfterFunc(d time.Duration, f func()) clockwork.Timer {
	t := &hostTimer{h: h, f: f}
	t.arm(d)
	return t
}

func (h *HostClock) After(d time.Duration) <-chan time.Time { return h.NewTimer(d).Chan() }
func (h *HostClock) Sleep(d time.Duration)                  { <-h.After(d) }

// NewTicker ticks every d on the host's clock; ticks that find the
// previous one unread are dropped, as time.Ticker's are.
func (h *HostClock) NewTicker(d time.Duration) clockwork.Ticker {
	t := &hostTicker{every: d}
	t.timer = &hostTimer{h: h, ch: make(chan time.Time, 1)}
	t.timer.tick = t
	t.timer.arm(d)
	return t
}

// Pause keeps the host's timers from firing until Resume.
func (h *HostClock) Pause() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.paused = true
}

// Resume delivers the timers that came due while paused.
func (h *HostClock) Resume() {
	h.mu.Lock()
	h.paused = false
	held := h.held
	h.held = nil
	h.mu.Unlock()
	for _, t := range held {
		t.deliver()
	}
}

// hostTimer is a timer of a HostClock: on the base clock, d/rate long.
type hostTimer struct {
	h    *HostClock
	ch   chan time.Time // nil for AfterFunc
	f    func()
	tick *hostTicker // set for a ticker's timer

	base    clockwork.Timer // GUARDED_BY(h.mu)
	stopped bool            // GUARDED_BY(h.mu); a stopped ticker does not re-arm
}

func (t *hostTimer) Chan() <-chan time.Time { return t.ch }

// arm starts t for d on the host's clock.
func (t *hostTimer) arm(d time.Duration) {
	h := t.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if t.stopped {
		return
	}
	h.armed = append(h.armed, t)
	t.base = h.base.AfterFunc(time.Duration(float64(d)/h.rate), t.due)
}

// due runs when t's time has come: it is delivered, or held while the
// host is paused.
func (t *hostTimer) due() {
	h := t.h
	h.mu.Lock()
	if !slices.Contains(h.armed, t) {
		h.mu.Unlock()
		return // stopped meanwhile
	}
	h.armed = slices.DeleteFunc(h.armed, func(x *hostTimer) bool { return x == t })
	if h.paused {
		h.held = append(h.held, t)
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	t.deliver()
}

func (t *hostTimer) deliver() {
	now := t.h.Now()
	switch {
	case t.f != nil:
		go t.f()
	default:
		select {
		case t.ch <- now:
		default:
		}
	}
	if t.tick != nil {
		t.arm(t.tick.period())
	}
}

// Stop stops t; it reports whether t had not fired yet.
func (t *hostTimer) Stop() bool {
	h := t.h
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(h.armed) + len(h.held)
	t.stopped = true
	h.armed = slices.DeleteFunc(h.armed, func(x *hostTimer) bool { return x == t })
	h.held = slices.DeleteFunc(h.held, func(x *hostTimer) bool { return x == t })
	if t.base != nil {
		t.base.Stop()
	}
	return len(h.armed)+len(h.held) < n
}

// Reset stops t and starts it again for d.
func (t *hostTimer) Reset(d time.Duration) bool {
	active := t.Stop()
	t.h.mu.Lock()
	t.stopped = false
	t.h.mu.Unlock()
	t.arm(d)
	return active
}

// hostTicker is a ticker of a HostClock: a timer that re-arms itself.
type hostTicker struct {
	timer *hostTimer
	mu    sync.Mutex
	every time.Duration // GUARDED_BY(mu)
}

func (t *hostTicker) period() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.every
}

func (t *hostTicker) Chan() <-chan time.Time { return t.timer.ch }

func (t *hostTicker) Reset(d time.Duration) {
	t.mu.Lock()
	t.every = d
	t.mu.Unlock()
	t.timer.Reset(d)
}

func (t *hostTicker) Stop() { t.timer.Stop() }
