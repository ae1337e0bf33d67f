package core

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"time"
)

// LockMode is exclusive or shared.
type LockMode int

const (
	Exclusive LockMode = iota
	Shared
)

func (m LockMode) String() string {
	if m == Shared {
		return "shared"
	}
	return "exclusive"
}

// LockHeldError tells who holds a lock. It matches ErrLockHeld.
type LockHeldError struct{ Holders []Holder }

func (e *LockHeldError) Error() string {
	if len(e.Holders) == 0 {
		return ErrLockHeld.Error()
	}
	h := e.Holders[0]
	exp := "never expires"
	if !h.Expires.IsZero() {
		exp = "lease until " + h.Expires.Format(time.RFC3339)
	}
	return fmt.Sprintf("lock held (%s) by %s pid %d, %s", h.Mode, h.Host, h.PID, exp)
}

func (e *LockHeldError) Is(target error) bool { return target == ErrLockHeld }

// Mutex is a lock on one object of a group, held as a lease that renews
// itself in the background (the lease rules are in lease.go: no clocks of
// two hosts are compared). One Mutex is one owner: it holds the lock at
// most once. Methods are safe for concurrent use.
//
// Lock and Unlock make it a sync.Locker: they retry B2 failures with
// backoff (at most a few seconds apart) until they succeed or the context
// given to Group.Mutex ends; then they return without the change and Err
// reports why. The context forms return errors instead.
type Mutex struct {
	g     *Group
	name  string
	ctx   context.Context
	owner string
	pid   int

	mu       sync.Mutex
	held     bool      // GUARDED_BY(mu)
	mode     LockMode  // GUARDED_BY(mu)
	key      string    // GUARDED_BY(mu): key of the record this owner wrote last
	seq      int64     // GUARDED_BY(mu): Seq of this owner's latest entry
	trust    time.Time // GUARDED_BY(mu): Clock reading until which the lease is trusted
	queued   bool      // GUARDED_BY(mu): the record may hold a waiter entry of this owner
	queuedAt time.Time // GUARDED_BY(mu): Clock reading when that entry was sent
	stop     chan struct{}
	done     chan struct{}
	lost     chan struct{}
	undo     chan struct{} // GUARDED_BY(mu): closed when an interrupted attempt is undone
	err      error         // GUARDED_BY(mu): last error of Lock/Unlock
}

// MutexOption sets a property of a Mutex.
type MutexOption func(*Mutex)

// LockPID names the process the lock is held for, as the lock record
// shows it (default Options.PID).
func LockPID(pid int) MutexOption { return func(m *Mutex) { m.pid = pid } }

// Mutex returns a lock on name in the group. ctx bounds the sync.Locker
// forms and the background renewal.
func (g *Group) Mutex(ctx context.Context, name string, opts ...MutexOption) *Mutex {
	var b [8]byte
	rand.Read(b[:])
	m := &Mutex{g: g, name: name, ctx: ctx, owner: hex.EncodeToString(b[:]), pid: g.opts.PID}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Lock acquires the lock exclusively, as sync.Locker.
func (m *Mutex) Lock() {
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		err := m.LockContext(m.ctx, Exclusive)
		m.setErr(err)
		if err == nil || m.ctx.Err() != nil || errors.Is(err, errAlreadyHeld) {
			return
		}
		if !sleep(m.ctx, m.g.opts.Clock, backoff) {
			return
		}
	}
}

// Unlock releases the lock, as sync.Locker.
func (m *Mutex) Unlock() {
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		err := m.UnlockContext(m.ctx)
		m.setErr(err)
		if err == nil || m.ctx.Err() != nil || errors.Is(err, errNotHeld) {
			return
		}
		if !sleep(m.ctx, m.g.opts.Clock, backoff) {
			return
		}
	}
}

// Err returns the error that made the last Lock or Unlock give up, or nil.
func (m *Mutex) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

func (m *Mutex) setErr(err error) {
	m.mu.Lock()
	m.err = err
	m.mu.Unlock()
}

// Owner returns the id of this owner in lock records (Holder.Owner).
func (m *Mutex) Owner() string { return m.owner }

// Held reports whether this owner holds the lock and trusts its lease.
func (m *Mutex) Held() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.held && m.g.opts.Clock.Now().Before(m.trust)
}

var (
	errAlreadyHeld = errors.New("lock already held by this owner")
	errNotHeld     = errors.New("lock not held by this owner")
)

// Polling bounds of LockContext.
const (
	pollMin = 50 * time.Millisecond
	pollMax = time.Second
)

// queueAfter is how long a waiter waits before it takes its place in the
// lock record's queue, and how long a waiter must have been seen there
// before it holds back owners that came later: short waits (a local
// hand-off, a lock held for a moment) cost no record writes, and a host
// whose waiters keep handing the lock to each other lets a remote waiter
// in after this long.
const queueAfter = 300 * time.Millisecond

// LockContext acquires the lock in mode, waiting while it is held
// elsewhere, and returns ctx.Err() when ctx ends. Waiters are served in
// order: the waiters of one Group queue in memory, the first of them polls
// B2 (with backoff, at most pollMax apart) and holds the group's place in
// the lock record's queue of waiters, which orders the hosts; a release by
// another owner of the same Group wakes the first waiter at once. Leases
// that lapsed are taken over.
func (m *Mutex) LockContext(ctx context.Context, mode LockMode) error {
	start := m.g.opts.Clock.Now()
	t := m.g.joinQueue(m.name)
	defer t.leave()
	select {
	case <-t.head:
	case <-ctx.Done():
		return ctx.Err()
	}
	since := m.g.opts.Clock.Now()
	for backoff := pollMin; ; backoff = min(2*backoff, pollMax) {
		err := m.tryLock(ctx, mode, m.g.opts.Clock.Now().Sub(since) >= queueAfter)
		if err == nil {
			m.g.opts.Metrics.LockAcquired(mode, m.g.opts.Clock.Since(start))
		}
		if !errors.Is(err, ErrLockHeld) {
			if err != nil {
				m.leaveRecordQueue(ctx)
			}
			return err
		}
		jitter := time.Duration(mrand.Int64N(int64(backoff) / 4))
		timer := m.g.opts.Clock.NewTimer(backoff - jitter)
		select {
		case <-timer.Chan():
		case <-t.kick:
			timer.Stop()
			backoff = pollMin / 2
		case <-ctx.Done():
			timer.Stop()
			m.leaveRecordQueue(ctx)
			return ctx.Err()
		}
	}
}

// leaveRecordQueue removes, in the background, this owner's waiter entry
// from the lock record when it may have one.
func (m *Mutex) leaveRecordQueue(ctx context.Context) {
	m.mu.Lock()
	queued := m.queued
	m.mu.Unlock()
	if queued {
		m.cleanUp(ctx, nil)
	}
}

// TryLock acquires the lock in mode or returns at once: a *LockHeldError
// (matching ErrLockHeld) when another owner holds it incompatibly, or an
// incompatible waiter has queued for it (for at least queueAfter).
func (m *Mutex) TryLock(ctx context.Context, mode LockMode) error {
	err := m.tryLock(ctx, mode, false)
	if err == nil {
		m.g.opts.Metrics.LockAcquired(mode, 0)
	}
	return err
}

// tryLock makes one attempt that ctx does not cut short: its commit may
// already have reached B2, and a lock written but not known as held would
// linger until its lease expired. If ctx ends first, tryLock returns
// ctx.Err() at once, and an attempt that still succeeds is undone in the
// background. An attempt that gets no verdict while B2 answers none of the
// Group's swaps for Options.LockTimeout (B2 slow; refusals under contention
// are answers, see Options.LockTimeout), or before the store declares B2
// unreachable, fails with
// ErrUnavailable, and whatever it may have written is removed in the
// background. The next attempt waits for
// such clean-ups. With queue set, a refused attempt joins the record's
// queue of waiters (or keeps its place there).
func (m *Mutex) tryLock(ctx context.Context, mode LockMode, queue bool) error {
	m.mu.Lock()
	undo := m.undo
	m.mu.Unlock()
	if undo != nil {
		select {
		case <-undo:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	clock := m.g.opts.Clock
	timeout := min(m.g.opts.LockTimeout, m.g.opts.LeaseTTL)
	done := make(chan error, 1)
	actx, cancel := withTimeout(context.WithoutCancel(ctx), clock, max(timeout, m.g.opts.CommitTimeout))
	go func() {
		defer cancel()
		done <- m.attempt(actx, mode, queue)
	}()
	timer := clock.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case err := <-done:
			return m.verdict(ctx, err)
		case <-timer.Chan():
			// Refused swaps are answers: other hosts commit, and this
			// attempt waits its turn as long as B2 keeps answering.
			if quiet := clock.Since(time.Unix(0, m.g.answered.Load())); quiet < timeout {
				timer.Reset(timeout - quiet)
				continue
			}
			return m.noVerdict(ctx, done, fmt.Errorf("%w: no answer from B2 within %v", ErrUnavailable, timeout))
		case <-m.g.outage():
			return m.noVerdict(ctx, done, fmt.Errorf("%w: B2 became unreachable", ErrUnavailable))
		case <-ctx.Done():
			m.cleanUp(ctx, done)
			return ctx.Err()
		}
	}
}

// noVerdict ends an attempt that is still running for want of an answer:
// it returns the attempt's verdict if it has just come, else err, and the
// attempt is undone in the background.
func (m *Mutex) noVerdict(ctx context.Context, done chan error, err error) error {
	select {
	case err := <-done:
		return m.verdict(ctx, err)
	default:
	}
	m.cleanUp(ctx, done)
	return &OpError{Op: "lock", Group: m.g.name, Name: m.name, Err: err}
}

// verdict returns the outcome of a finished attempt; a failure other than
// "held" may have written the record all the same, so it is cleaned up.
func (m *Mutex) verdict(ctx context.Context, err error) error {
	if err == nil || errors.Is(err, ErrLockHeld) || errors.Is(err, errAlreadyHeld) {
		return err
	}
	m.cleanUp(ctx, nil)
	if errors.Is(err, context.DeadlineExceeded) {
		return &OpError{Op: "lock", Group: m.g.name, Name: m.name,
			Err: fmt.Errorf("%w: no verdict in time: %v", ErrUnavailable, err)}
	}
	return err
}

// cleanUp undoes, in the background, an attempt whose outcome the caller
// does not wait for (done not nil: it is still running) or does not know
// (done nil: it failed, perhaps after writing the record), and a waiter
// entry this owner may have left in the record.
func (m *Mutex) cleanUp(ctx context.Context, done <-chan error) {
	undone := make(chan struct{})
	m.mu.Lock()
	prev := m.undo
	m.undo = undone
	m.mu.Unlock()
	go func() {
		defer close(undone)
		if prev != nil {
			<-prev // clean-ups run one after the other, each on what the last left
		}
		uctx, cancel := withTimeout(context.WithoutCancel(ctx), m.g.opts.Clock, time.Minute)
		defer cancel()
		undo := m.dropSelf
		if done != nil {
			switch err := <-done; {
			case err == nil:
				undo = m.UnlockContext
			case errors.Is(err, ErrLockHeld), errors.Is(err, errAlreadyHeld):
				m.mu.Lock()
				queued := m.queued
				m.mu.Unlock()
				if !queued {
					return
				}
			}
		}
		var err error
		for try := 0; ; try++ {
			if err = undo(uctx); err == nil || errors.Is(err, errNotHeld) {
				return
			}
			if !sleep(uctx, m.g.opts.Clock, casBackoff(try)) {
				break
			}
		}
		m.abandon()
		m.g.opts.Logger.Warn("abandoned lock attempt not cleaned up; its lease will expire", "group", m.g.name, "lock", m.name, "err", err)
	}()
}

// abandon stops renewing a lock this owner could not release: its lease
// then lapses and others may take it.
func (m *Mutex) abandon() {
	m.mu.Lock()
	if !m.held {
		m.mu.Unlock()
		return
	}
	m.held, m.key = false, ""
	stop, done := m.stop, m.done
	m.mu.Unlock()
	close(stop)
	<-done
}

// Settle waits until the attempts that returned without a verdict
// (interrupted, or without an answer within Options.LockTimeout) have been
// undone in the background, or ctx ends. A program about to exit calls it
// so that it leaves no lock record behind to wait out its lease.
func (m *Mutex) Settle(ctx context.Context) error {
	m.mu.Lock()
	undo := m.undo
	m.mu.Unlock()
	if undo == nil {
		return nil
	}
	select {
	case <-undo:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dropSelf removes this owner's entries, holder or waiter, from the lock
// record, if a failed attempt or a lapsed lease left them there.
func (m *Mutex) dropSelf(ctx context.Context) error {
	if _, err := m.g.reload(ctx); err != nil {
		return err
	}
	_, err := m.update(ctx, false, func(rec lockRecord) (lockRecord, error) {
		out := rec.without(m.owner)
		if len(out.Holders) == len(rec.Holders) && len(out.Waiters) == len(rec.Waiters) {
			return rec, errNotHeld // not there: nothing to undo
		}
		return out, nil
	})
	if err == nil || errors.Is(err, errNotHeld) {
		m.mu.Lock()
		m.queued = false
		m.mu.Unlock()
		return nil
	}
	return err
}

// without returns r without owner's entries.
func (r lockRecord) without(owner string) lockRecord {
	out := lockRecord{Version: 1}
	for _, h := range r.Holders {
		if h.Owner != owner {
			out.Holders = append(out.Holders, h)
		}
	}
	for _, h := range r.Waiters {
		if h.Owner != owner {
			out.Waiters = append(out.Waiters, h)
		}
	}
	return out
}

// queuedError is the refusal of an attempt that wrote its waiter entry.
type queuedError struct{ held *LockHeldError }

func (e *queuedError) Error() string { return e.held.Error() }
func (e *queuedError) Unwrap() error { return e.held }

// attempt tries once to take the lock in mode; refused, with queue set, it
// joins the record's queue of waiters or refreshes its entry there.
func (m *Mutex) attempt(ctx context.Context, mode LockMode, queue bool) error {
	m.mu.Lock()
	held, queuedAt := m.held, m.queuedAt
	m.mu.Unlock()
	if held {
		return &OpError{Op: "lock", Group: m.g.name, Name: m.name, Err: errAlreadyHeld}
	}
	ttl := m.g.opts.LeaseTTL
	var sent time.Time
	key, err := m.update(ctx, true, func(rec lockRecord) (lockRecord, error) {
		now := m.g.opts.Clock.Now()
		holders := m.g.others(m.name, m.owner, rec.Holders, now)
		var ahead, behind []Holder // live waiters of other owners, before and after this one's entry
		var mine *Holder
		for _, w := range rec.Waiters {
			switch {
			case w.Owner == m.owner:
				mine = &w
			case !m.g.live(m.name, w, now):
			case mine == nil:
				ahead = append(ahead, w)
			default:
				behind = append(behind, w)
			}
		}
		var block []Holder
		for _, h := range holders {
			if h.conflicts(mode) {
				block = holders
				break
			}
		}
		for _, w := range ahead {
			if block == nil && w.conflicts(mode) && m.g.waited(m.name, w, now) >= queueAfter {
				block = ahead
			}
		}
		sent = now
		if block != nil {
			held := &LockHeldError{Holders: block}
			if !queue || mine != nil && now.Sub(queuedAt) < ttl/3 {
				return rec, held
			}
			waiters := append(append(ahead, m.entry(mode, mine)), behind...) // waiting since mine's time
			return lockRecord{Version: 1, Holders: holders, Waiters: waiters}, &queuedError{held}
		}
		return lockRecord{Version: 1, Holders: append(holders, m.entry(mode, nil)), Waiters: append(ahead, behind...)}, nil
	})
	var qe *queuedError
	if errors.As(err, &qe) {
		m.mu.Lock()
		m.queued, m.queuedAt = true, sent
		m.mu.Unlock()
		return &OpError{Op: "lock", Group: m.g.name, Name: m.name, Err: qe.held}
	}
	if err != nil {
		return &OpError{Op: "lock", Group: m.g.name, Name: m.name, Err: err}
	}
	m.mu.Lock()
	m.held, m.mode, m.key, m.queued = true, mode, key, false
	m.trust = sent.Add(ttl - leaseMargin(ttl))
	m.stop, m.done, m.lost = make(chan struct{}), make(chan struct{}), make(chan struct{})
	go m.renew(m.stop, m.done, m.lost)
	m.mu.Unlock()
	return nil
}

// nextSeq returns the Seq of this owner's next entry.
func (m *Mutex) nextSeq() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	return m.seq
}

// entry is this owner's next record entry in mode, written now, with the
// next Seq; an entry that rewrites prev (a renewal, a conversion, a
// waiter's refresh) keeps prev's Acquired.
func (m *Mutex) entry(mode LockMode, prev *Holder) Holder {
	now := m.g.opts.Now()
	h := Holder{Owner: m.owner, Host: m.g.opts.Host, PID: m.pid, Mode: mode.String(),
		Acquired: now, Expires: now.Add(m.g.opts.LeaseTTL), Seq: m.nextSeq(), LeaseMS: m.g.opts.LeaseTTL.Milliseconds()}
	if prev != nil {
		h.Acquired = prev.Acquired
	}
	return h
}

// UnlockContext releases the lock, and wakes the next waiter of the same
// Group at once. A lock lost while the call runs (its lease taken over or
// lapsed, or forced open) is released without error; a Mutex that did not
// hold the lock when the call began (never locked, released already, or
// lost before: Lost was closed) gets an error saying it is not held.
func (m *Mutex) UnlockContext(ctx context.Context) error {
	m.mu.Lock()
	if !m.held {
		m.mu.Unlock()
		return &OpError{Op: "unlock", Group: m.g.name, Name: m.name, Err: errNotHeld}
	}
	stop, done := m.stop, m.done
	m.mu.Unlock()
	close(stop)
	<-done
	m.mu.Lock()
	lost := !m.held // the renewal gave the lease up meanwhile
	m.mu.Unlock()
	if lost {
		return nil
	}
	_, err := m.update(ctx, false, func(rec lockRecord) (lockRecord, error) {
		out := rec.without(m.owner)
		out.Waiters = rec.Waiters
		return out, nil
	})
	if err != nil && !m.trusted() {
		// The lease lapsed while the release kept failing: nobody holds
		// the lock any more, this owner included.
		m.lose(fmt.Sprintf("lease lapsed, release kept failing: %v", err), false)
		return nil
	}
	m.mu.Lock()
	if err != nil {
		// Still held: renew again until a later unlock succeeds.
		m.stop, m.done = make(chan struct{}), make(chan struct{})
		go m.renew(m.stop, m.done, m.lost)
		m.mu.Unlock()
		return &OpError{Op: "unlock", Group: m.g.name, Name: m.name, Err: err}
	}
	m.held, m.key = false, ""
	m.mu.Unlock()
	m.g.kickQueue(m.name)
	return nil
}

// trusted reports whether the lease is still trusted (see lease.go).
func (m *Mutex) trusted() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.g.opts.Clock.Now().Before(m.trust)
}

// TryConvert changes the mode of the held lock to mode, or returns at once
// a *LockHeldError (matching ErrLockHeld) when another live holder's mode
// conflicts with mode: exclusive conflicts with any other holder, shared
// with an exclusive one. It is one compare-and-swap of the lock record that
// rewrites this owner's holder entry (renewing its lease too), so the lock
// is never released on the way: nobody can take it in between, and a
// refused conversion leaves it held in its previous mode. Waiters do not
// hold up a conversion.
//
// Once under way, the attempt is not cut short by ctx: it runs to its
// outcome (bounded by Options.LockTimeout until its update is sent, like a
// lock attempt, and then by the commit's own deadline), so the caller
// learns which mode is held. A conversion whose reply was lost is settled
// as any commit is, by reading the bucket back. Only an error matching
// ErrUnknownOutcome leaves the mode in doubt: the record may show either,
// the lock stays held (and renewed) all the same, and converting again
// settles it. A lock that is not held, or was taken over or forced open
// meanwhile (it is then lost, see Lost), cannot be converted.
//
// Conversions and Unlock of one Mutex are not meant to run concurrently.
func (m *Mutex) TryConvert(ctx context.Context, mode LockMode) error {
	return m.convert(ctx, mode)
}

// ConvertContext converts the held lock to mode as TryConvert does,
// waiting while another holder's mode conflicts: it polls with backoff (at
// most pollMax apart), as LockContext does, and returns ctx.Err() when ctx
// ends, with the lock still held in its previous mode.
func (m *Mutex) ConvertContext(ctx context.Context, mode LockMode) error {
	for backoff := pollMin; ; backoff = min(2*backoff, pollMax) {
		err := m.convert(ctx, mode)
		if !errors.Is(err, ErrLockHeld) {
			return err
		}
		jitter := time.Duration(mrand.Int64N(int64(backoff) / 4))
		if !sleep(ctx, m.g.opts.Clock, backoff-jitter) {
			return ctx.Err()
		}
	}
}

// convert makes one conversion attempt (see TryConvert).
func (m *Mutex) convert(ctx context.Context, mode LockMode) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	held := m.held
	m.mu.Unlock()
	if !held {
		return &OpError{Op: "convert", Group: m.g.name, Name: m.name, Err: errNotHeld}
	}
	actx, cancel := withTimeout(context.WithoutCancel(ctx), m.g.opts.Clock, min(m.g.opts.LockTimeout, m.g.opts.LeaseTTL))
	defer cancel()
	var gone bool
	var sent time.Time
	_, err := m.update(actx, true, func(rec lockRecord) (lockRecord, error) {
		now := m.g.opts.Clock.Now()
		var me *Holder
		for _, h := range rec.Holders {
			if h.Owner == m.owner {
				me = &h
			}
		}
		if me == nil {
			gone = true
			return rec, errNotHeld
		}
		live := m.g.others(m.name, m.owner, rec.Holders, now)
		for _, h := range live {
			if h.conflicts(mode) {
				return rec, &LockHeldError{Holders: live}
			}
		}
		sent = now
		return lockRecord{Version: 1, Holders: append(live, m.entry(mode, me)), Waiters: rec.Waiters}, nil
	})
	switch {
	case err == nil:
		m.mu.Lock()
		m.mode = mode
		m.trust = sent.Add(m.g.opts.LeaseTTL - leaseMargin(m.g.opts.LeaseTTL))
		m.mu.Unlock()
		return nil
	case gone:
		m.lose("lock was taken over or forced open", false)
	case errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrUnknownOutcome):
		err = fmt.Errorf("%w: no verdict in time: %v", ErrUnavailable, err)
	}
	return &OpError{Op: "convert", Group: m.g.name, Name: m.name, Err: err}
}

// Lost is closed when a held lock is lost: its lease lapsed before it
// could be renewed, or it was taken over or forced open, or a fenced
// change found it so.
func (m *Mutex) Lost() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lost == nil {
		return nil
	}
	return m.lost
}

// renew keeps the lease alive until stop is closed or the lock is lost.
func (m *Mutex) renew(stop <-chan struct{}, done, lost chan struct{}) {
	defer close(done)
	ttl := m.g.opts.LeaseTTL
	period := ttl / 3
	wait := period
	for {
		tick := m.g.opts.Clock.NewTimer(wait)
		select {
		case <-stop:
		case <-m.ctx.Done():
		case <-lost:
		case <-tick.Chan():
		}
		tick.Stop()
		select {
		case <-stop:
			return
		case <-m.ctx.Done():
			return
		case <-lost:
			return
		default:
		}
		if !m.trusted() {
			// Paused (or starved) past the lease: another host may have
			// taken the lock already.
			m.lose("lease lapsed before it could be renewed (was this process paused?)", true)
			return
		}
		var gone bool
		var sent time.Time
		ctx, cancel := withTimeout(m.ctx, m.g.opts.Clock, period)
		_, err := m.update(ctx, false, func(rec lockRecord) (lockRecord, error) {
			for i, h := range rec.Holders {
				if h.Owner == m.owner {
					out := rec
					out.Holders = slices.Clone(rec.Holders)
					out.Holders[i] = m.entry(h.LockMode(), &h)
					sent = m.g.opts.Clock.Now()
					return out, nil
				}
			}
			gone = true
			return rec, errNotHeld
		})
		cancel()
		switch {
		case err == nil:
			m.mu.Lock()
			m.trust = sent.Add(ttl - leaseMargin(ttl))
			m.mu.Unlock()
			m.g.opts.Metrics.LeaseRenewed()
			wait = period
			continue
		case gone:
			m.lose("lock was taken over or forced open", false)
			return
		case !m.trusted():
			m.lose(fmt.Sprintf("lease lapsed, renewal kept failing: %v", err), true)
			return
		}
		m.g.opts.Logger.Warn("lock lease renewal failed, retrying", "group", m.g.name, "lock", m.name, "err", err)
		wait = period / 4
	}
}

// lose gives up a held lock whose lease could not be kept. A lock is lost
// at most once per acquisition whatever the order of events. With drop
// set, the record may still show this owner: its entry is removed in the
// background, so that others need not wait for it to lapse.
func (m *Mutex) lose(why string, drop bool) {
	m.mu.Lock()
	if !m.held {
		m.mu.Unlock()
		return
	}
	m.held, m.key = false, ""
	lost := m.lost
	m.mu.Unlock()
	// Logged before Lost says so, so that whoever watches Lost finds the
	// line written.
	m.g.opts.Metrics.LeaseLost()
	m.g.opts.Logger.Error("LOCK LOST", "group", m.g.name, "lock", m.name, "reason", why)
	close(lost)
	if drop {
		go func() {
			ctx, cancel := withTimeout(context.Background(), m.g.opts.Clock, m.g.opts.LockTimeout)
			defer cancel()
			m.dropSelf(ctx)
		}()
	}
}

// check is the fence of one change (see Fence): idx is the index the
// change would replace.
func (m *Mutex) check(idx *index) error {
	m.mu.Lock()
	held, key, trust := m.held, m.key, m.trust
	m.mu.Unlock()
	switch e, ok := idx.Entries[m.name]; {
	case !held:
		return &fenceError{m: m, why: "not held"}
	case !m.g.opts.Clock.Now().Before(trust):
		return &fenceError{m: m, why: "lease lapsed", lapsed: true}
	case !ok:
		return &fenceError{m: m, why: "forced open"}
	case e.Key != key:
		// Another host changed the record (a waiter queued, a shared
		// holder renewed): it is still this owner's if it names it.
		rec, ok := m.g.records.Get(m.g.file(m.name, e.Key))
		if !ok {
			return &fenceUnknown{m: m, key: e.Key}
		}
		for _, h := range rec.Holders {
			if h.Owner == m.owner {
				return nil
			}
		}
		return &fenceError{m: m, why: "taken over or forced open"}
	}
	return nil
}

// update rewrites the lock record with f(record) by compare-and-swap on
// the lock object, removing the object when no entry is left. It first
// tries the record this owner wrote last, which costs no read. With
// acquire set, a record that shows the lock held is checked again on a
// reloaded view before f's verdict is returned, so a stale view never
// answers "held". When f returns a *queuedError, its record is written
// all the same and the error returned once it landed. update returns the
// key of the new record ("" when removed).
func (m *Mutex) update(ctx context.Context, acquire bool, f func(lockRecord) (lockRecord, error)) (string, error) {
	ctx = unfenced(ctx)
	m.mu.Lock()
	key := m.key
	m.mu.Unlock()
	reloaded := false
	for tries := 0; ; tries++ {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if tries >= maxSwaps {
			return "", fmt.Errorf("%w: lock record kept changing: %d tries", ErrUnavailable, tries)
		}
		// The record changes at the pace of lock hand-offs: retry soon.
		if tries > 0 && !sleep(ctx, m.g.opts.Clock, casBackoff(min(tries-1, 3))) {
			return "", ctx.Err()
		}
		var rec lockRecord
		ok := false
		if key != "" {
			rec, ok = m.g.records.Get(m.g.file(m.name, key))
		}
		if !ok {
			var err error
			if key, rec, err = m.g.readLock(ctx, m.name); err != nil {
				return "", err
			}
		}
		out, ferr := f(rec)
		if errors.Is(ferr, ErrLockHeld) && acquire && !reloaded {
			if _, err := m.g.reload(ctx); err != nil {
				return "", err
			}
			reloaded, key = true, ""
			continue
		}
		var qe *queuedError
		if ferr != nil && !errors.As(ferr, &qe) {
			return "", ferr
		}
		var nk string
		var err error
		if out.empty() {
			if key == "" {
				return "", ferr
			}
			err = m.g.Remove(ctx, m.name, key)
		} else {
			out.Version = 1
			data, _ := json.Marshal(out)
			nk, err = m.g.Commit(ctx, m.name, key, bytes.NewReader(data), int64(len(data)))
			if err == nil {
				m.g.records.Add(m.g.file(m.name, nk), out)
				m.mu.Lock()
				if m.held {
					m.key = nk
				}
				m.mu.Unlock()
			}
		}
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotExist) {
			key = "" // someone else changed the lock object: read it again
			continue
		}
		if err != nil {
			return "", err
		}
		return nk, ferr
	}
}

// readLock returns the current key and record of lock name, from the view
// (reloading it when older than IndexTTL) and a cache of records by key.
func (g *Group) readLock(ctx context.Context, name string) (string, lockRecord, error) {
	key, err := g.key(ctx, name)
	if errors.Is(err, ErrNotExist) {
		return "", lockRecord{}, nil
	}
	if err != nil {
		return "", lockRecord{}, err
	}
	rec, err := g.recordAt(ctx, name, key)
	return key, rec, err
}

// recordAt returns the record of version key of lock name.
func (g *Group) recordAt(ctx context.Context, name, key string) (lockRecord, error) {
	if rec, ok := g.records.Get(g.file(name, key)); ok {
		return rec, nil
	}
	r := g.OpenVersion(ctx, name, key)
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if errors.Is(err, ErrNotExist) {
		// The record's data is gone (a group damaged by an old b2cfs that
		// deleted the data of commits whose reply was lost): nobody can
		// hold a lock whose record cannot be read, so it is free, and the
		// next lock or unlock replaces the entry.
		g.opts.Logger.Warn("lock record missing; treating the lock as free", "group", g.name, "lock", name, "key", key)
		b, err = nil, nil
	}
	if err != nil {
		return lockRecord{}, err
	}
	rec := parseRecord(b)
	g.records.Add(g.file(name, key), rec)
	return rec, nil
}

// Holders returns who holds lock name, from a view no older than IndexTTL.
func (g *Group) Holders(ctx context.Context, name string) ([]Holder, error) {
	_, rec, err := g.readLock(ctx, name)
	return rec.Holders, err
}

// ForceUnlock clears lock name whoever holds it, blazer's locks included,
// and returns the holders it removed.
func (g *Group) ForceUnlock(ctx context.Context, name string) ([]Holder, error) {
	for tries := 0; ; tries++ {
		if tries >= maxSwaps {
			return nil, &OpError{Op: "unlock", Group: g.name, Name: name,
				Err: fmt.Errorf("%w: lock kept changing: %d tries", ErrUnavailable, tries)}
		}
		key, rec, err := g.readLock(ctx, name)
		if err != nil || key == "" {
			return rec.Holders, err
		}
		err = g.Remove(ctx, name, key)
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotExist) {
			if _, err := g.reload(ctx); err != nil {
				return nil, err
			}
			continue
		}
		return rec.Holders, err
	}
}

// lockQueue orders the waiters of one lock in one Group (see LockContext).
type lockQueue struct{ waiters []*ticket } // GUARDED_BY(Group.qmu)

// ticket is one waiter's place in a lockQueue: head is closed when it
// comes first, kick wakes it when the lock was released here.
type ticket struct {
	g    *Group
	name string
	head chan struct{}
	kick chan struct{}
}

func (g *Group) joinQueue(name string) *ticket {
	g.qmu.Lock()
	defer g.qmu.Unlock()
	q := g.queues[name]
	if q == nil {
		q = &lockQueue{}
		g.queues[name] = q
	}
	t := &ticket{g: g, name: name, head: make(chan struct{}), kick: make(chan struct{}, 1)}
	q.waiters = append(q.waiters, t)
	if len(q.waiters) == 1 {
		close(t.head)
	}
	return t
}

func (t *ticket) leave() {
	t.g.qmu.Lock()
	defer t.g.qmu.Unlock()
	q := t.g.queues[t.name]
	i := slices.Index(q.waiters, t)
	q.waiters = slices.Delete(q.waiters, i, i+1)
	switch {
	case len(q.waiters) == 0:
		delete(t.g.queues, t.name)
	case i == 0:
		close(q.waiters[0].head)
	}
}

// kickQueue wakes the first waiter for lock name, if any.
func (g *Group) kickQueue(name string) {
	g.qmu.Lock()
	defer g.qmu.Unlock()
	if q := g.queues[name]; q != nil {
		select {
		case q.waiters[0].kick <- struct{}{}:
		default:
		}
	}
}
