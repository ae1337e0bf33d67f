package core

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
)

// Group commit: the index changes of a Group share b2_update_bucket calls.
//
// Changes (commits, removals, renames, attribute changes, lock records)
// queue up; one committer at a time takes every change queued and sends
// them in one compare-and-swap, each checked against its own precondition
// on the index the batch builds on. A change whose precondition fails
// leaves the batch alone with its error, and the others land. While a
// batch is on its way, the changes that arrive form the next one, so the
// number of updates follows the number of round trips, not the number of
// changes. When a compare-and-swap fails because another host committed,
// the committer reads the bucket again at once the first time, and after
// a random pause (see backoff) the times after, and the changes that
// arrive meanwhile join the retry: hosts that keep colliding spread out,
// batches grow under contention, and listings per landed change fall,
// while a change that just joined (a lock attempt with its own deadline)
// does not inherit the long pause of changes refused many times.

// request is one change waiting for, or taking part in, a batch.
type request struct {
	ctx     context.Context
	mut     mutation
	loaded  bool // a view read since it was queued was checked
	refused int  // swaps of batches holding it that B2 refused
	// claimed is set, under batcher.mu, once a batch took the request
	// (from then on only the committer finishes it), or by its caller,
	// giving up before that (then no batch takes it).
	claimed bool
	err     error
	done    chan struct{}
}

// batcher queues requests for the committer. NewGroup makes it, with its
// arrived channel.
type batcher struct {
	mu      sync.Mutex
	pending []*request // GUARDED_BY(mu)
	running bool       // GUARDED_BY(mu); a committer goroutine is at work

	rtt     atomic.Int64  // how long B2 takes to answer an update on the Clock, ns (moving average)
	arrived chan struct{} // poked by every request queued; see linger
}

// maxBatchSwaps bounds the compare-and-swaps of one batch, a guard only:
// under contention its deadline (Options.CommitTimeout) ends it first,
// since every refused swap backs off (backoff).
const maxBatchSwaps = 1024

// lingerMax bounds the wait of linger: a small fraction of any round trip
// to B2, so that a lone writer is not slowed down.
const lingerMax = 2 * time.Millisecond

// linger waits on c, at most min(lingerMax, a sixteenth of an update's
// round trip), until n requests are queued.
func (b *batcher) linger(c clockwork.Clock, n int) {
	if n <= 1 {
		return
	}
	wait := min(lingerMax, time.Duration(b.rtt.Load())/16)
	t := c.NewTimer(wait)
	defer t.Stop()
	for {
		b.mu.Lock()
		queued := len(b.pending)
		b.mu.Unlock()
		if queued >= n {
			return
		}
		select {
		case <-b.arrived:
		case <-t.Chan():
			return
		}
	}
}

// observe records that B2 answered an update in d.
func (b *batcher) observe(d time.Duration) {
	old := b.rtt.Load()
	if old == 0 {
		b.rtt.Store(int64(d))
		return
	}
	b.rtt.Store(old + (int64(d)-old)/4)
}

// Backoff after a refused compare-and-swap, in round trips of an update.
const (
	backoffFloor = 5 * time.Millisecond // the round trip assumed at least
	backoffMax   = 8                    // round trips at most
)

// backoff returns the pause before retry n (0: the first) of a batch
// whose swap B2 refused: none for the first, which reads the bucket at
// once (a lock hand-off between hosts wants that: the other host's next
// commit is a moment away); then uniform between 0 and 2^(n-1) half round
// trips (at most backoffMax round trips), "full jitter", which spreads
// hosts that keep colliding.
//
// n counts the refusals of the change in the batch that has had the
// fewest (fewestRefusals).
func (b *batcher) backoff(n int) time.Duration {
	if n == 0 {
		return 0
	}
	rtt := max(time.Duration(b.rtt.Load()), backoffFloor)
	d := rtt / 2 << min(n-1, 4)
	d = min(d, backoffMax*rtt)
	return time.Duration(mrand.Int64N(int64(d) + 1))
}

// apply commits mut with a compare-and-swap on the bucket revision, in a
// batch with the changes queued at the same time. It starts from the view
// it has, however old: a stale view fails the swap, and the view is then
// reloaded and mut applied again. A conflict (or a missing object) found
// on a view read before mut was queued is checked again on a fresh one.
//
// ctx bounds apply only until its change has been sent: from then on the
// change runs to its real outcome
// under the batch's deadline (Options.CommitTimeout), resolving lost
// replies (see resolve), and returns ctx.Err() only if that outcome is
// that nothing changed.
//
// A change made with a context of Mutex.Fence is checked against the lock
// in the same compare-and-swap.
func (g *Group) apply(ctx context.Context, mut mutation) error {
	err := g.enqueue(ctx, fenced(g.fences(ctx), mut))
	loseFenced(err)
	switch {
	case err == nil:
		g.opts.Metrics.Committed("ok")
	case errors.Is(err, ErrLockLost):
		g.opts.Metrics.Committed("fenced")
	case errors.Is(err, ErrConflict):
		g.opts.Metrics.Committed("conflict")
	case errors.Is(err, ErrGroupFull):
		g.opts.Metrics.Committed("full")
	default:
		g.opts.Metrics.Committed("error")
	}
	return err
}

// enqueue queues mut and waits for its outcome.
func (g *Group) enqueue(ctx context.Context, mut mutation) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &request{ctx: ctx, mut: mut, done: make(chan struct{})}
	b := &g.batch
	b.mu.Lock()
	b.pending = append(b.pending, r)
	select {
	case b.arrived <- struct{}{}:
	default:
	}
	if !b.running {
		b.running = true
		go g.commitLoop()
	}
	b.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
	}
	b.mu.Lock()
	if !r.claimed {
		r.claimed = true // the committer skips it
		b.mu.Unlock()
		return ctx.Err()
	}
	b.mu.Unlock()
	<-r.done // bounded by the batch's deadline
	return r.err
}

// claim takes the queued requests that are still wanted, marking them
// claimed, and drops those whose callers gave up meanwhile.
func (b *batcher) claim() []*request {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*request
	for _, r := range b.pending {
		if !r.claimed {
			r.claimed = true
			out = append(out, r)
		}
	}
	b.pending = nil
	return out
}

// commitLoop runs batches while requests are queued.
//
// Before each batch it lingers a moment (see linger) for as many requests
// as the batch before had: writers whose commits just landed queue their
// next ones right away, and a batch that leaves without them costs them a
// round trip of their own.
func (g *Group) commitLoop() {
	b := &g.batch
	last := 0 // requests in the batch before
	for {
		b.linger(g.opts.Clock, last)
		rs := b.claim()
		last = len(rs)
		if len(rs) == 0 {
			b.mu.Lock()
			if len(b.pending) == 0 {
				b.running = false
				b.mu.Unlock()
				return
			}
			b.mu.Unlock()
			continue
		}
		g.commitBatch(rs)
	}
}

// finish ends r with err.
func finish(r *request, err error) {
	r.err = err
	close(r.done)
}

// commitBatch runs rs to their outcomes: each lands, or fails alone on its
// own precondition, or with the batch when the update fails.
func (g *Group) commitBatch(rs []*request) {
	octx, cancel := withTimeout(context.Background(), g.opts.Clock, g.opts.CommitTimeout)
	defer cancel()
	failAll := func(err error) {
		for _, r := range rs {
			finish(r, err)
		}
	}
	v, err := g.current(octx, -1)
	if err != nil {
		failAll(err)
		return
	}
	// solo is set when the batch overflowed the index: its changes then go
	// one at a time, so that only one that does not fit fails.
	solo := false
	for swaps := 0; ; swaps++ {
		rs = g.dropCancelled(rs)
		if len(rs) == 0 {
			return
		}
		if swaps >= maxBatchSwaps {
			failAll(fmt.Errorf("%w: the bucket kept changing: %d compare-and-swaps failed", ErrUnavailable, swaps))
			return
		}
		if v.err != nil {
			failAll(v.err)
			return
		}
		idx, in, refused, retry := g.build(octx, v, rs, solo)
		if retry {
			if v, err = g.reload(octx); err != nil {
				failAll(err)
				return
			}
			markLoaded(rs)
			continue
		}
		rs = pending(rs)
		if len(in) == 0 {
			continue
		}
		a := &attempt{rev: v.rev, id: newCommitID()}
		idx.stamp(a.id)
		a.serial = idx.Serial
		if a.info, a.ch, err = g.encode(octx, v, idx); err != nil {
			if errors.Is(err, ErrGroupFull) && len(in) > 1 && !solo {
				solo = true
				continue
			}
			for _, r := range in {
				finish(r, err)
			}
			continue
		}
		bi, landed, err := g.send(octx, a)
		switch {
		case landed:
			for _, f := range a.ch.obsolete {
				g.del.later(f.name, f.id)
			}
			if nv, err := g.installLanded(octx, bi, v.format, a, g.opts.Clock.Now()); err == nil {
				v = nv // what changes are left (solo) build on
			} // else the view stays older: the next swap finds out
			for _, r := range in {
				finish(r, nil)
			}
			for _, f := range refused {
				finish(f.r, f.err)
			}
			solo = false
		case err == nil || errors.Is(err, errMoved):
			// Known not to have landed: another change came first. Back
			// off, so that other hosts' commits go through and the
			// changes arriving here join this batch, then read the
			// bucket and apply every change to it again.
			g.opts.Metrics.CASRetried()
			g.forget(a)
			if errors.Is(err, errMoved) {
				if !sleep(octx, g.opts.Clock, g.batch.backoff(fewestRefusals(in))) {
					failAll(fmt.Errorf("%w: the bucket kept changing", ErrUnavailable))
					return
				}
				rs = append(rs, g.batch.claim()...)
				if v, err = g.reload(octx); err != nil {
					failAll(fmt.Errorf("%w: reloading after a failed compare-and-swap: %v", ErrUnavailable, err))
					return
				}
			} else if v, err = g.install(octx, bi, g.opts.Clock.Now()); err != nil {
				failAll(err)
				return
			}
			markLoaded(rs)
		case errors.Is(err, ErrUnknownOutcome):
			for _, r := range in {
				finish(r, err) // may have landed: keep everything it references
			}
		default:
			g.forget(a)
			if errors.Is(err, ErrInfoRejected) {
				err = fmt.Errorf("%w: %v", ErrGroupFull, err)
			}
			for _, r := range in {
				finish(r, err)
			}
		}
	}
}

// refusal is a request whose change failed on the index a batch builds,
// with its error.
type refusal struct {
	r   *request
	err error
}

// build applies the changes of rs to a clone of v's index, each on the
// state the ones before it left, and returns that index with the requests
// it holds (at most one when solo). A change that fails is refused; its
// request may be finished with that error only once the batch landed,
// since the failure may come from a change before it in the batch (two
// commits of one version of a file: the second conflicts with the first
// only if the first lands), or at once when the batch holds no change.
// When a failure may come from a stale view (one read before the request
// was queued), retry asks for a fresh view first. A change that needs a
// lock record another host wrote has it read, and is applied after.
func (g *Group) build(ctx context.Context, v *view, rs []*request, solo bool) (idx *index, in []*request, refused []refusal, retry bool) {
	idx = v.idx.clone()
	for _, r := range rs {
		if solo && len(in) == 1 {
			break
		}
		next := idx
		if len(rs) > 1 {
			next = idx.clone() // a failing change must leave no trace
		}
		for {
			err := r.mut(next)
			var fu *fenceUnknown
			if errors.As(err, &fu) {
				if _, err := g.recordAt(ctx, fu.m.name, fu.key); err != nil {
					refused = append(refused, refusal{r, err})
					break
				}
				if len(rs) > 1 {
					next = idx.clone()
				}
				continue
			}
			switch {
			case err == nil:
				idx = next
				in = append(in, r)
			case (errors.Is(err, ErrConflict) || errors.Is(err, ErrNotExist) || errors.Is(err, ErrLockLost)) && !r.loaded:
				return nil, nil, nil, true
			default:
				refused = append(refused, refusal{r, err})
			}
			break
		}
	}
	if len(in) == 0 {
		for _, f := range refused {
			finish(f.r, f.err)
		}
		refused = nil
	}
	return idx, in, refused, false
}

// pending returns the requests of rs not finished yet.
func pending(rs []*request) []*request {
	out := rs[:0:0]
	for _, r := range rs {
		select {
		case <-r.done:
		default:
			out = append(out, r)
		}
	}
	return out
}

// dropCancelled finishes the requests of rs whose context ended (nothing
// of theirs was sent, or what was sent is known not to have landed) and
// returns the others.
func (g *Group) dropCancelled(rs []*request) []*request {
	rs = pending(rs)
	out := rs[:0:0]
	for _, r := range rs {
		if err := r.ctx.Err(); err != nil {
			finish(r, err)
			continue
		}
		out = append(out, r)
	}
	return out
}

func markLoaded(rs []*request) {
	for _, r := range rs {
		r.loaded = true
	}
}

// fewestRefusals counts a refusal for every request of in, and returns
// the fewest refusals any of them has had, less one: the retry number for
// backoff.
func fewestRefusals(in []*request) int {
	n := -1
	for _, r := range in {
		r.refused++
		if n < 0 || r.refused < n {
			n = r.refused
		}
	}
	return max(n-1, 0)
}
