package core

import (
	"encoding/json"
	"strconv"
	"time"
)

// Leases never compare the clocks of two hosts. A lock record names its
// holders (and waiters), and each entry changes whenever its owner renews
// it (Holder.Seq). Two rules, each on one host's own Clock (Options.Clock;
// clock.go), make a lease:
//
//   - A taker counts an entry as dead when the very same entry has stayed
//     in the record for the entry's lease TTL plus leaseMargin since the
//     taker first saw it. The entry was written before the taker saw it, so
//     its owner sent it earlier still.
//   - A holder trusts its lease until TTL minus leaseMargin after it sent
//     the last write of its entry that landed.
//
// So a taker takes over only after a holder stopped trusting its lease, as
// long as the two clocks' rates differ by less than leaseMargin/TTL (10 %,
// where real clocks differ by well under 0.01 %); wall-clock offsets, NTP
// steps included, play no part. The wall times in a record (Acquired,
// Expires) are for people to read. Whatever the clocks do, a commit made
// under a lock (Mutex.Fence) lands only if the lock record is still the one
// its holder wrote, checked in the commit's own compare-and-swap.
//
// A holder renews every TTL/3 and trusts its lease for 0.9 TTL, so a pause
// of up to TTL/2 (15 s with the default TTL of 30 s) never loses a lock; a
// longer one may, and then the holder learns it before it can commit.

// leaseMargin is the margin of both rules for a lease of ttl.
func leaseMargin(ttl time.Duration) time.Duration { return ttl / 10 }

// Holder is one entry of a lock record: who holds the lock (or waits for
// it), how, and, in the holder's own wall time, since and until when. A
// zero Expires means the lease never expires (blazer's locks).
type Holder struct {
	Owner    string    `json:"owner"`
	Host     string    `json:"host"`
	PID      int       `json:"pid"`
	Mode     string    `json:"mode"`
	Acquired time.Time `json:"acquired"`
	Expires  time.Time `json:"expires"`
	// Seq counts the writes of this entry: it changes with every renewal,
	// which is how other hosts see that the lease is kept.
	Seq int64 `json:"seq,omitempty"`
	// LeaseMS is the holder's lease TTL in milliseconds (0: the reader's
	// own Options.LeaseTTL).
	LeaseMS int64 `json:"lease_ms,omitempty"`
}

// ttl is the lease TTL of h, def when h does not say.
func (h Holder) ttl(def time.Duration) time.Duration {
	if h.LeaseMS > 0 {
		return time.Duration(h.LeaseMS) * time.Millisecond
	}
	return def
}

// LockMode returns the mode of h.
func (h Holder) LockMode() LockMode {
	if h.Mode == Shared.String() {
		return Shared
	}
	return Exclusive
}

// conflicts reports whether a lock in mode cannot be held beside h.
func (h Holder) conflicts(mode LockMode) bool { return mode == Exclusive || h.Mode != Shared.String() }

// lockRecord is the content of a held lock object. Blazer treats any
// non-empty content as held, so it excludes this record's holders (and,
// while only waiters are left, the waiters: the first of them takes the
// lock at its next poll).
type lockRecord struct {
	Version int      `json:"b2cfsLock"`
	Holders []Holder `json:"holders"`
	// Waiters queue for the lock in order of arrival, one per host (the
	// first waiter of each mount; the others queue in memory): a lock is
	// taken only by a waiter that no conflicting waiter precedes.
	Waiters []Holder `json:"waiters,omitempty"`
}

func (r lockRecord) empty() bool { return len(r.Holders) == 0 && len(r.Waiters) == 0 }

// blazerHolder stands for a lock written by blazer's Mutex (content 0x01).
var blazerHolder = Holder{Owner: "blazer", Host: "?", Mode: "exclusive"}

func parseRecord(b []byte) lockRecord {
	if len(b) == 0 {
		return lockRecord{}
	}
	var rec lockRecord
	if json.Unmarshal(b, &rec) == nil && rec.Version >= 1 {
		return rec
	}
	return lockRecord{Holders: []Holder{blazerHolder}}
}

// live reports whether entry h of lock name may still be kept by its
// owner, seen now on this group's Clock (the taker's rule above).
// Blazer's entries never expire.
func (g *Group) live(name string, h Holder, now time.Time) bool {
	if h.Expires.IsZero() {
		return true
	}
	ttl := h.ttl(g.opts.LeaseTTL)
	return g.waited(name, h, now) < ttl+leaseMargin(ttl)
}

// waited returns how long entry h of lock name has been seen unchanged,
// on this group's Clock (0 when first seen now).
func (g *Group) waited(name string, h Holder, now time.Time) time.Duration {
	id := name + "\x00" + h.Owner + "\x00" + h.Mode + "\x00" + strconv.FormatInt(h.Seq, 10) + "\x00" + h.Expires.Format(time.RFC3339Nano)
	first, ok := g.seen.Get(id)
	if !ok {
		g.seen.Add(id, now) // an evicted entry is seen anew: later, never sooner
		return 0
	}
	return now.Sub(first)
}

// others returns the entries of hs that belong to other owners than owner
// and are live.
func (g *Group) others(name, owner string, hs []Holder, now time.Time) []Holder {
	var out []Holder
	for _, h := range hs {
		if h.Owner != owner && g.live(name, h, now) {
			out = append(out, h)
		}
	}
	return out
}
