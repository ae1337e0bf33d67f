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

// Holder is one entry of a lock record: who holds the lock, how, and until
// when. A zero Expires means the lease never expires (blazer's locks).
type Holder struct {
	Owner    string    `json:"owner"`
	Host     string    `json:"host"`
	PID      int       `json:"pid"`
	Mode     string    `json:"mode"`
	Acquired time.Time `json:"acquired"`
	Expires  time.Time `json:"expires"`
}

func (h Holder) expired(now time.Time) bool { return !h.Expires.IsZero() && !now.Before(h.Expires) }

// lockRecord is the content of a held lock object. Blazer treats any
// non-empty content as held, so it excludes this record's holders.
type lockRecord struct {
	Version int      `json:"b2cfsLock"`
	Holders []Holder `json:"holders"`
}

// blazerHolder stands for a lock written by blazer's Mutex (content 0x01).
var blazerHolder = Holder{Owner: "blazer", Host: "?", Mode: "exclusive"}

func parseRecord(b []byte) []Holder {
	if len(b) == 0 {
		return nil
	}
	var rec lockRecord
	if json.Unmarshal(b, &rec) == nil && rec.Version >= 1 {
		return rec.Holders
	}
	return []Holder{blazerHolder}
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
// itself in the background. One Mutex is one owner: it holds the lock at
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

	mu       sync.Mutex
	held     bool      // GUARDED_BY(mu)
	mode     LockMode  // GUARDED_BY(mu)
	key      string    // GUARDED_BY(mu): key of the record this owner wrote last
	acquired time.Time // GUARDED_BY(mu)
	expires  time.Time // GUARDED_BY(mu): end of the lease as last written
	stop     chan struct{}
	done     chan struct{}
	lost     chan struct{}
	undo     chan struct{} // GUARDED_BY(mu): closed when an interrupted attempt is undone
	err      error         // GUARDED_BY(mu): last error of Lock/Unlock
}

// Mutex returns a lock on name in the group. ctx bounds the sync.Locker
// forms and the background renewal.
func (g *Group) Mutex(ctx context.Context, name string) *Mutex {
	var b [8]byte
	rand.Read(b[:])
	return &Mutex{g: g, name: name, ctx: ctx, owner: hex.EncodeToString(b[:])}
}

// Lock acquires the lock exclusively, as sync.Locker.
func (m *Mutex) Lock() {
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		err := m.LockContext(m.ctx, Exclusive)
		m.setErr(err)
		if err == nil || m.ctx.Err() != nil || errors.Is(err, errAlreadyHeld) {
			return
		}
		if !sleep(m.ctx, backoff) {
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
		if !sleep(m.ctx, backoff) {
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

var (
	errAlreadyHeld = errors.New("lock already held by this owner")
	errNotHeld     = errors.New("lock not held by this owner")
)

// LockContext acquires the lock in mode, waiting while it is held
// elsewhere: it polls with backoff (at most about a second apart) and
// returns ctx.Err() when ctx ends. Expired leases are taken over.
func (m *Mutex) LockContext(ctx context.Context, mode LockMode) error {
	start := time.Now()
	for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		err := m.tryLock(ctx, mode)
		if err == nil {
			m.g.opts.Metrics.LockAcquired(mode, time.Since(start))
		}
		if !errors.Is(err, ErrLockHeld) {
			return err
		}
		jitter := time.Duration(mrand.Int64N(int64(backoff) / 4))
		if !sleep(ctx, backoff-jitter) {
			return ctx.Err()
		}
	}
}

// TryLock acquires the lock in mode or returns at once: a *LockHeldError
// (matching ErrLockHeld) when another owner holds it incompatibly.
func (m *Mutex) TryLock(ctx context.Context, mode LockMode) error {
	err := m.tryLock(ctx, mode)
	if err == nil {
		m.g.opts.Metrics.LockAcquired(mode, 0)
	}
	return err
}

// tryLock makes one attempt that ctx does not cut short: its commit may
// already have reached B2, and a lock written but not known as held would
// linger until its lease expired. If ctx ends first, tryLock returns
// ctx.Err() at once, and an attempt that still succeeds is undone in the
// background. An attempt that gets no verdict within Options.LockTimeout
// (B2 slow or unreachable) fails with ErrUnavailable, and whatever it may
// have written is removed in the background. The next attempt waits for
// such clean-ups.
func (m *Mutex) tryLock(ctx context.Context, mode LockMode) error {
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
	timeout := min(m.g.opts.LockTimeout, m.g.opts.LeaseTTL)
	done := make(chan error, 1)
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	go func() {
		defer cancel()
		done <- m.attempt(actx, mode)
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return m.verdict(ctx, err)
	case <-timer.C:
		select {
		case err := <-done:
			return m.verdict(ctx, err)
		default:
		}
		m.cleanUp(ctx, done)
		return &OpError{Op: "lock", Group: m.g.name, Name: m.name,
			Err: fmt.Errorf("%w: no verdict within %v", ErrUnavailable, timeout)}
	case <-ctx.Done():
		m.cleanUp(ctx, done)
		return ctx.Err()
	}
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
// (done nil: it failed, perhaps after writing the record).
func (m *Mutex) cleanUp(ctx context.Context, done <-chan error) {
	undone := make(chan struct{})
	m.mu.Lock()
	m.undo = undone
	m.mu.Unlock()
	go func() {
		defer close(undone)
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		undo := m.dropSelf
		if done != nil {
			switch err := <-done; {
			case err == nil:
				undo = m.UnlockContext
			case errors.Is(err, ErrLockHeld), errors.Is(err, errAlreadyHeld):
				return
			}
		}
		var err error
		for try := 0; ; try++ {
			if err = undo(uctx); err == nil || errors.Is(err, errNotHeld) {
				return
			}
			if !sleep(uctx, casBackoff(try)) {
				break
			}
		}
		m.abandon()
		m.g.opts.Logger.Warn("abandoned lock attempt not cleaned up; its lease will expire", "group", m.g.name, "lock", m.name, "err", err)
	}()
}

// abandon stops renewing a lock this owner could not release: its lease
// then expires and others may take it.
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

// dropSelf removes this owner from the lock record, if a failed attempt
// wrote it there.
func (m *Mutex) dropSelf(ctx context.Context) error {
	if _, err := m.g.reload(ctx); err != nil {
		return err
	}
	_, err := m.update(ctx, false, func(hs []Holder) ([]Holder, error) {
		var rest []Holder
		for _, h := range hs {
			if h.Owner != m.owner {
				rest = append(rest, h)
			}
		}
		if len(rest) == len(hs) {
			return nil, errNotHeld // not there: nothing to undo
		}
		return rest, nil
	})
	if errors.Is(err, errNotHeld) {
		return nil
	}
	return err
}

// attempt tries once to take the lock in mode.
func (m *Mutex) attempt(ctx context.Context, mode LockMode) error {
	m.mu.Lock()
	held := m.held
	m.mu.Unlock()
	if held {
		return &OpError{Op: "lock", Group: m.g.name, Name: m.name, Err: errAlreadyHeld}
	}
	var acquired time.Time
	key, err := m.update(ctx, true, func(hs []Holder) ([]Holder, error) {
		now := m.g.opts.Now()
		var live []Holder
		for _, h := range hs {
			if h.Owner != m.owner && !h.expired(now) {
				live = append(live, h)
			}
		}
		for _, h := range live {
			if mode == Exclusive || h.Mode != Shared.String() {
				return nil, &LockHeldError{Holders: live}
			}
		}
		acquired = now
		return append(live, m.me(mode, now)), nil
	})
	if err != nil {
		return &OpError{Op: "lock", Group: m.g.name, Name: m.name, Err: err}
	}
	m.mu.Lock()
	m.held, m.mode, m.key, m.acquired = true, mode, key, acquired
	m.expires = acquired.Add(m.g.opts.LeaseTTL)
	m.stop, m.done, m.lost = make(chan struct{}), make(chan struct{}), make(chan struct{})
	go m.renew(m.stop, m.done, m.lost)
	m.mu.Unlock()
	return nil
}

func (m *Mutex) me(mode LockMode, now time.Time) Holder {
	return Holder{Owner: m.owner, Host: m.g.opts.Host, PID: m.g.opts.PID, Mode: mode.String(),
		Acquired: now, Expires: now.Add(m.g.opts.LeaseTTL)}
}

// UnlockContext releases the lock. A lock that was lost (its lease taken
// over after expiry or forced open) is released without error.
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
	_, err := m.update(ctx, false, func(hs []Holder) ([]Holder, error) {
		var rest []Holder
		for _, h := range hs {
			if h.Owner != m.owner {
				rest = append(rest, h)
			}
		}
		return rest, nil
	})
	if err != nil && !m.g.opts.Now().Before(m.leaseEnd()) {
		// The lease ran out while the release kept failing: nobody holds
		// the lock any more, this owner included.
		m.lose(fmt.Sprintf("lease expired, release kept failing: %v", err))
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		// Still held: renew again until a later unlock succeeds.
		m.stop, m.done = make(chan struct{}), make(chan struct{})
		go m.renew(m.stop, m.done, m.lost)
		return &OpError{Op: "unlock", Group: m.g.name, Name: m.name, Err: err}
	}
	m.held, m.key = false, ""
	return nil
}

// TryConvert changes the mode of the held lock to mode, or returns at once
// a *LockHeldError (matching ErrLockHeld) when another live holder's mode
// conflicts with mode: exclusive conflicts with any other holder, shared
// with an exclusive one. It is one compare-and-swap of the lock record that
// rewrites this owner's holder entry (renewing its lease too), so the lock
// is never released on the way: nobody can take it in between, and a
// refused conversion leaves it held in its previous mode.
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
// most about a second apart), as LockContext does, and returns ctx.Err()
// when ctx ends, with the lock still held in its previous mode.
func (m *Mutex) ConvertContext(ctx context.Context, mode LockMode) error {
	for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		err := m.convert(ctx, mode)
		if !errors.Is(err, ErrLockHeld) {
			return err
		}
		jitter := time.Duration(mrand.Int64N(int64(backoff) / 4))
		if !sleep(ctx, backoff-jitter) {
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
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(m.g.opts.LockTimeout, m.g.opts.LeaseTTL))
	defer cancel()
	var gone bool
	_, err := m.update(actx, true, func(hs []Holder) ([]Holder, error) {
		now := m.g.opts.Now()
		var live []Holder
		var me *Holder
		for _, h := range hs {
			switch {
			case h.Owner == m.owner:
				me = &h
			case !h.expired(now):
				live = append(live, h)
			}
		}
		if me == nil {
			gone = true
			return nil, errNotHeld
		}
		for _, h := range live {
			if mode == Exclusive || h.Mode != Shared.String() {
				return nil, &LockHeldError{Holders: live}
			}
		}
		me.Mode = mode.String()
		me.Expires = now.Add(m.g.opts.LeaseTTL)
		return append(live, *me), nil
	})
	switch {
	case err == nil:
		m.mu.Lock()
		m.mode = mode
		m.mu.Unlock()
		return nil
	case gone:
		m.lose("lock was taken over or forced open")
	case errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrUnknownOutcome):
		err = fmt.Errorf("%w: no verdict in time: %v", ErrUnavailable, err)
	}
	return &OpError{Op: "convert", Group: m.g.name, Name: m.name, Err: err}
}

// leaseEnd is when the lease as last written ends.
func (m *Mutex) leaseEnd() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.expires
}

// Lost is closed when a held lock is lost: its lease could not be renewed
// before it expired.
func (m *Mutex) Lost() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lost == nil {
		return nil
	}
	return m.lost
}

// renew keeps the lease alive until stop is closed.
func (m *Mutex) renew(stop <-chan struct{}, done, lost chan struct{}) {
	defer close(done)
	period := m.g.opts.LeaseTTL / 3
	wait := period
	for {
		select {
		case <-stop:
			return
		case <-m.ctx.Done():
			return
		case <-time.After(wait):
		}
		ctx, cancel := context.WithTimeout(m.ctx, period)
		var gone bool
		_, err := m.update(ctx, false, func(hs []Holder) ([]Holder, error) {
			now := m.g.opts.Now()
			for i, h := range hs {
				if h.Owner == m.owner {
					out := append([]Holder(nil), hs...)
					out[i].Expires = now.Add(m.g.opts.LeaseTTL)
					return out, nil
				}
			}
			gone = true
			return nil, errNotHeld
		})
		cancel()
		m.mu.Lock()
		expires := m.expires
		m.mu.Unlock()
		switch {
		case err == nil:
			m.g.opts.Metrics.LeaseRenewed()
			wait = period
			continue
		case gone:
			m.lose("lock was taken over or forced open")
			return
		case !m.g.opts.Now().Before(expires):
			m.lose(fmt.Sprintf("lease expired, renewal kept failing: %v", err))
			return
		}
		m.g.opts.Logger.Warn("lock lease renewal failed, retrying", "group", m.g.name, "lock", m.name, "err", err)
		wait = period / 4
	}
}

// lose gives up a held lock whose lease could not be kept. Only a renew
// goroutine calls it, and at most one runs at a time, but a lock is lost
// at most once per acquisition whatever the order of events.
func (m *Mutex) lose(why string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.held {
		return
	}
	m.held, m.key = false, ""
	close(m.lost)
	m.g.opts.Metrics.LeaseLost()
	m.g.opts.Logger.Error("LOCK LOST", "group", m.g.name, "lock", m.name, "reason", why)
}

// update rewrites the lock record with f(holders) by compare-and-swap on the
// lock object, removing the object when no holder is left. It first tries
// the record this owner wrote last, which costs no read. With acquire set,
// a record that shows the lock held is checked again on a reloaded view
// before f's verdict is returned, so a stale view never answers "held".
// It returns the key of the new record ("" when removed).
func (m *Mutex) update(ctx context.Context, acquire bool, f func([]Holder) ([]Holder, error)) (string, error) {
	m.mu.Lock()
	key, expires := m.key, m.expires
	m.mu.Unlock()
	reloaded := false
	for tries := 0; ; tries++ {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if tries >= maxSwaps {
			return "", fmt.Errorf("%w: lock record kept changing: %d tries", ErrUnavailable, tries)
		}
		if tries > 0 && !sleep(ctx, casBackoff(tries-1)) {
			return "", ctx.Err()
		}
		var hs []Holder
		if key != "" {
			hs = m.g.lockRecord(m.name, key)
		}
		if hs == nil || key == "" {
			var err error
			if key, hs, err = m.g.readLock(ctx, m.name); err != nil {
				return "", err
			}
		}
		out, err := f(hs)
		if errors.Is(err, ErrLockHeld) && acquire && !reloaded {
			if _, err := m.g.reload(ctx); err != nil {
				return "", err
			}
			reloaded, key = true, ""
			continue
		}
		if err != nil {
			return "", err
		}
		var nk string
		if len(out) == 0 {
			if key == "" {
				return "", nil
			}
			err = m.g.Remove(ctx, key, m.name)
		} else {
			data, _ := json.Marshal(lockRecord{Version: 1, Holders: out})
			nk, err = m.g.Commit(ctx, m.name, key, bytes.NewReader(data), int64(len(data)))
			if err == nil {
				m.g.records.Add(m.g.file(m.name, nk), out)
				for _, h := range out {
					if h.Owner == m.owner {
						expires = h.Expires
					}
				}
				m.mu.Lock()
				m.expires = expires
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
		return nk, err
	}
}

// lockRecord returns the cached holders of version key of lock name.
func (g *Group) lockRecord(name, key string) []Holder {
	hs, _ := g.records.Get(g.file(name, key))
	return hs
}

// readLock returns the current key and holders of lock name, from the view
// (reloading it when older than IndexTTL) and a cache of records by key.
func (g *Group) readLock(ctx context.Context, name string) (string, []Holder, error) {
	key, err := g.Key(ctx, name)
	if errors.Is(err, ErrNotExist) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	if hs, ok := g.records.Get(g.file(name, key)); ok {
		return key, hs, nil
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
		return "", nil, err
	}
	hs := parseRecord(b)
	if hs == nil {
		hs = []Holder{}
	}
	g.records.Add(g.file(name, key), hs)
	return key, hs, nil
}

// Holders returns who holds lock name, from a view no older than IndexTTL.
func (g *Group) Holders(ctx context.Context, name string) ([]Holder, error) {
	_, hs, err := g.readLock(ctx, name)
	return hs, err
}

// ForceUnlock clears lock name whoever holds it, blazer's locks included,
// and returns the holders it removed.
func (g *Group) ForceUnlock(ctx context.Context, name string) ([]Holder, error) {
	for tries := 0; ; tries++ {
		if tries >= maxSwaps {
			return nil, &OpError{Op: "unlock", Group: g.name, Name: name,
				Err: fmt.Errorf("%w: lock kept changing: %d tries", ErrUnavailable, tries)}
		}
		key, hs, err := g.readLock(ctx, name)
		if err != nil || key == "" {
			return hs, err
		}
		err = g.Remove(ctx, key, name)
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotExist) {
			if _, err := g.reload(ctx); err != nil {
				return nil, err
			}
			continue
		}
		return hs, err
	}
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
