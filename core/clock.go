package core

import (
	"context"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// A Group reads time and waits on one Clock (Options.Clock): the readings
// of leases (lease.go) and of view age (IndexTTL), and every timer of its
// own: lease renewal, lock polling and backoff, the lock timeout, the
// batch committer's linger and compare-and-swap backoff, the grace period
// of the deleter, and the deadlines it sets itself (CommitTimeout,
// LoadTimeout, LockTimeout and the bounds of background clean-ups). A
// fake clock thus drives all of them, and nothing else does. What stays
// on real time: the wall times of Options.Now (modification times, the
// times lock records show people), the caller's own contexts, and
// whatever the Store does inside a call (core/b2's per-call HTTP
// deadlines and retry pauses). Fsck and CollectGarbage work on a Store,
// not a Group, and take their own Now.

// bootClock is the default Clock: the system's timers, with readings of
// CLOCK_BOOTTIME (bootTime), which counts time while the machine is
// suspended, so that a host that slept does not trust a lease that lapsed
// meanwhile. Its timers run on the monotonic clock and may fire late
// after a suspend, which only delays a renewal that then finds the lease
// lapsed.
type bootClock struct{ clockwork.Clock }

func (bootClock) Now() time.Time                  { return bootTime() }
func (bootClock) Since(t time.Time) time.Duration { return bootTime().Sub(t) }
func (bootClock) Until(t time.Time) time.Duration { return t.Sub(bootTime()) }

// withTimeout is context.WithTimeout with d measured on c: the returned
// context ends d after the call on c, when parent ends, or when cancel is
// called, and its Err is then context.DeadlineExceeded, parent's error,
// or context.Canceled. On the default clock it is context.WithTimeout;
// on another Clock its Deadline is parent's (a deadline on a fake clock
// means nothing to a store that hands it to the network). It is not
// clockwork.WithTimeout, whose contexts (v0.5.0) block in Err until they
// end.
func withTimeout(parent context.Context, c clockwork.Clock, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := c.(bootClock); ok {
		return context.WithTimeout(parent, d)
	}
	ctx := &clockContext{parent: parent, done: make(chan struct{})}
	if err := parent.Err(); err != nil {
		ctx.end(err)
		return ctx, func() {}
	}
	if d <= 0 {
		ctx.end(context.DeadlineExceeded)
		return ctx, func() {}
	}
	t := c.AfterFunc(d, func() { ctx.end(context.DeadlineExceeded) })
	stop := context.AfterFunc(parent, func() { ctx.end(parent.Err()) })
	return ctx, func() {
		t.Stop()
		stop()
		ctx.end(context.Canceled)
	}
}

// clockContext is the context of withTimeout on a Clock other than the
// default. Contexts derived from it see its Err, since its Done is its
// own channel.
type clockContext struct {
	parent context.Context
	done   chan struct{}
	mu     sync.Mutex
	err    error // GUARDED_BY(mu); set once, when done is closed
}

func (c *clockContext) Deadline() (time.Time, bool) { return c.parent.Deadline() }
func (c *clockContext) Done() <-chan struct{}       { return c.done }
func (c *clockContext) Value(key any) any           { return c.parent.Value(key) }

func (c *clockContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// end ends c with err, unless it has ended already.
func (c *clockContext) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
		close(c.done)
	}
}

// sleep waits d on c or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, c clockwork.Clock, d time.Duration) bool {
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return true
	case <-ctx.Done():
		return false
	}
}
