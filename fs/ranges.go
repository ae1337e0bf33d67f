package fs

import "github.com/b2cfs/b2cfs/core"

// lockRange is one byte range a POSIX lock owner holds: bytes start to end,
// both included (as the kernel sends them; a lock to the end of the file
// ends at offsetMax), read (core.Shared) or write (core.Exclusive).
type lockRange struct {
	start, end uint64
	mode       core.LockMode
}

// rangeSet is what one POSIX lock owner holds on one file: disjoint ranges
// in ascending order, with no two adjacent ranges of the same mode (they
// are merged, as the kernel merges them). The zero value is empty. A
// rangeSet is a value: its methods return a new set and never change the
// ranges of the one they are called on, so a set once published can be read
// without a lock.
type rangeSet []lockRange

// with returns the set after the owner locks start..end in mode: the new
// range replaces whatever parts of the owner's ranges it overlaps (POSIX
// upgrades, downgrades and splits its own locks that way) and merges with
// neighbours of the same mode.
func (s rangeSet) with(start, end uint64, mode core.LockMode) rangeSet {
	out := make(rangeSet, 0, len(s)+2)
	placed := false
	for _, r := range s.without(start, end) {
		if !placed && r.start > end {
			out = out.add(lockRange{start, end, mode})
			placed = true
		}
		out = out.add(r)
	}
	if !placed {
		out = out.add(lockRange{start, end, mode})
	}
	return out
}

// add appends r, which starts after every range of s, merging it with the
// last range when they touch and have the same mode.
func (s rangeSet) add(r lockRange) rangeSet {
	if n := len(s); n > 0 {
		last := &s[n-1]
		if last.mode == r.mode && last.end < r.start && last.end+1 == r.start {
			last.end = r.end
			return s
		}
	}
	return append(s, r)
}

// without returns the set after the owner unlocks start..end: ranges
// inside it go, ranges across its edges are cut, and one that contains it
// is split in two.
func (s rangeSet) without(start, end uint64) rangeSet {
	var out rangeSet
	for _, r := range s {
		if r.end < start || r.start > end {
			out = append(out, r)
			continue
		}
		if r.start < start {
			out = append(out, lockRange{r.start, start - 1, r.mode})
		}
		if r.end > end {
			out = append(out, lockRange{end + 1, r.end, r.mode})
		}
	}
	return out
}

// mode returns the distributed mode the set needs: exclusive when any
// range is a write lock, shared when all are read locks; ok is false when
// the set is empty and nothing is needed.
func (s rangeSet) mode() (mode core.LockMode, ok bool) {
	if len(s) == 0 {
		return core.Shared, false
	}
	for _, r := range s {
		if r.mode == core.Exclusive {
			return core.Exclusive, true
		}
	}
	return core.Shared, true
}
