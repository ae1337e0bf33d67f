package fs

import (
	"fmt"
	"strings"
	"testing"

	"github.com/b2cfs/b2cfs/core"
)

// rangeOp is one step of a rangeSet test: lock start..end in mode ("r" or
// "w"), or unlock it ("u").
type rangeOp struct {
	op         string
	start, end uint64
}

// String shows a set as "r0-9 w20-29", "-" for empty, "max" for offsetMax.
func (s rangeSet) String() string {
	if len(s) == 0 {
		return "-"
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		m := "r"
		if r.mode == core.Exclusive {
			m = "w"
		}
		end := fmt.Sprint(r.end)
		if r.end == offsetMax {
			end = "max"
		}
		fmt.Fprintf(&b, "%s%d-%s", m, r.start, end)
	}
	return b.String()
}

func TestRangeSet(t *testing.T) {
	const max = offsetMax
	tests := []struct {
		name string
		ops  []rangeOp
		want string // the set after the ops
		mode string // its distributed mode: "exclusive", "shared" or "none"
	}{
		{"empty", nil, "-", "none"},
		{"one read", []rangeOp{{"r", 0, 9}}, "r0-9", "shared"},
		{"one write", []rangeOp{{"w", 5, 5}}, "w5-5", "exclusive"},
		{"whole file", []rangeOp{{"w", 0, max}}, "w0-max", "exclusive"},
		{"disjoint kept apart", []rangeOp{{"r", 20, 29}, {"r", 0, 9}}, "r0-9 r20-29", "shared"},
		{"adjacent same mode merge", []rangeOp{{"r", 0, 9}, {"r", 10, 19}}, "r0-19", "shared"},
		{"adjacent before merge", []rangeOp{{"r", 10, 19}, {"r", 0, 9}}, "r0-19", "shared"},
		{"adjacent other mode stay apart", []rangeOp{{"r", 0, 9}, {"w", 10, 19}}, "r0-9 w10-19", "exclusive"},
		{"gap filled merges three", []rangeOp{{"w", 0, 9}, {"w", 20, 29}, {"w", 10, 19}}, "w0-29", "exclusive"},
		{"overlap same mode merge", []rangeOp{{"r", 0, 9}, {"r", 5, 14}}, "r0-14", "shared"},
		{"upgrade in place", []rangeOp{{"r", 0, 9}, {"w", 0, 9}}, "w0-9", "exclusive"},
		{"downgrade in place", []rangeOp{{"w", 0, 9}, {"r", 0, 9}}, "r0-9", "shared"},
		{"upgrade of a middle splits", []rangeOp{{"r", 0, 99}, {"w", 40, 59}}, "r0-39 w40-59 r60-99", "exclusive"},
		{"downgrade of a middle splits", []rangeOp{{"w", 0, 99}, {"r", 40, 59}}, "w0-39 r40-59 w60-99", "exclusive"},
		{"downgrade of everything", []rangeOp{{"w", 0, 99}, {"r", 40, 59}, {"r", 0, max}}, "r0-max", "shared"},
		{"overlap across two ranges", []rangeOp{{"r", 0, 9}, {"r", 20, 29}, {"w", 5, 24}}, "r0-4 w5-24 r25-29", "exclusive"},
		{"new range covers old ones", []rangeOp{{"w", 3, 4}, {"r", 7, 8}, {"r", 0, 9}}, "r0-9", "shared"},
		{"unlock all", []rangeOp{{"w", 0, 9}, {"u", 0, max}}, "-", "none"},
		{"unlock nothing held", []rangeOp{{"u", 0, max}}, "-", "none"},
		{"unlock elsewhere", []rangeOp{{"r", 0, 9}, {"u", 10, 19}}, "r0-9", "shared"},
		{"partial unlock of the start", []rangeOp{{"r", 0, 9}, {"u", 0, 4}}, "r5-9", "shared"},
		{"partial unlock of the end", []rangeOp{{"r", 0, 9}, {"u", 5, 9}}, "r0-4", "shared"},
		{"partial unlock splits", []rangeOp{{"w", 0, max}, {"u", 10, 19}}, "w0-9 w20-max", "exclusive"},
		{"unlock of the write leaves reads", []rangeOp{{"r", 0, 9}, {"w", 10, 19}, {"u", 10, 19}}, "r0-9", "shared"},
		{"unlock across ranges", []rangeOp{{"r", 0, 9}, {"w", 20, 29}, {"u", 5, 24}}, "r0-4 w25-29", "exclusive"},
		{"unlock single bytes", []rangeOp{{"w", 0, 2}, {"u", 1, 1}}, "w0-0 w2-2", "exclusive"},
		{"relock after unlock merges", []rangeOp{{"w", 0, 2}, {"u", 1, 1}, {"w", 1, 1}}, "w0-2", "exclusive"},
		{"to the end", []rangeOp{{"r", 100, max}, {"w", 0, 99}}, "w0-99 r100-max", "exclusive"},
		{"last byte", []rangeOp{{"r", 0, max}, {"u", max, max}}, "r0-" + fmt.Sprint(uint64(max-1)), "shared"},
		{"last byte alone", []rangeOp{{"w", max, max}, {"r", 0, max - 1}}, "r0-" + fmt.Sprint(uint64(max-1)) + " w" + fmt.Sprint(uint64(max)) + "-max", "exclusive"},
		// sqlite's default locks on a database file (PENDING byte
		// 0x40000000, RESERVED 0x40000001, SHARED range 0x40000002 on).
		{"sqlite shared", []rangeOp{{"r", 0x40000000, 0x40000000}, {"r", 0x40000002, 0x400001ff}, {"u", 0x40000000, 0x40000000}}, "r1073741826-1073742335", "shared"},
		{"sqlite reserved", []rangeOp{{"r", 0x40000002, 0x400001ff}, {"w", 0x40000001, 0x40000001}}, "w1073741825-1073741825 r1073741826-1073742335", "exclusive"},
		{"sqlite exclusive", []rangeOp{{"r", 0x40000002, 0x400001ff}, {"w", 0x40000001, 0x40000001}, {"w", 0x40000000, 0x40000000}, {"w", 0x40000002, 0x400001ff}}, "w1073741824-1073742335", "exclusive"},
		{"sqlite back to shared", []rangeOp{{"w", 0x40000000, 0x400001ff}, {"r", 0x40000002, 0x400001ff}, {"u", 0x40000000, 0x40000001}}, "r1073741826-1073742335", "shared"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s rangeSet
			for _, op := range tc.ops {
				before := s.String()
				var next rangeSet
				switch op.op {
				case "r":
					next = s.with(op.start, op.end, core.Shared)
				case "w":
					next = s.with(op.start, op.end, core.Exclusive)
				case "u":
					next = s.without(op.start, op.end)
				default:
					t.Fatalf("bad op %q", op.op)
				}
				if s.String() != before {
					t.Fatalf("%s %d-%d changed the set it was called on: %s, was %s", op.op, op.start, op.end, s, before)
				}
				checkRangeSet(t, next)
				s = next
			}
			if got := s.String(); got != tc.want {
				t.Errorf("set = %s, want %s", got, tc.want)
			}
			mode := "none"
			if m, ok := s.mode(); ok {
				mode = m.String()
			}
			if mode != tc.mode {
				t.Errorf("mode = %s, want %s", mode, tc.mode)
			}
		})
	}
}

// checkRangeSet checks the invariants: ranges well formed, ascending,
// disjoint, and no two touching ranges of one mode.
func checkRangeSet(t *testing.T, s rangeSet) {
	t.Helper()
	for i, r := range s {
		if r.start > r.end {
			t.Fatalf("range %d of %s is reversed", i, s)
		}
		if i == 0 {
			continue
		}
		p := s[i-1]
		if p.end >= r.start {
			t.Fatalf("ranges %d and %d of %s overlap or are out of order", i-1, i, s)
		}
		if p.end+1 == r.start && p.mode == r.mode {
			t.Fatalf("ranges %d and %d of %s touch and were not merged", i-1, i, s)
		}
	}
}

// TestRangeSetMatchesBytes checks with and without against a byte map on
// a small file, for every range of every sequence of two operations after a
// fixed start.
func TestRangeSetMatchesBytes(t *testing.T) {
	const size = 8
	ops := []string{"r", "w", "u"}
	type step struct {
		op         string
		start, end uint64
	}
	var steps []step
	for _, op := range ops {
		for a := uint64(0); a < size; a++ {
			for b := a; b < size; b++ {
				steps = append(steps, step{op, a, b})
			}
		}
	}
	apply := func(s rangeSet, bytes []byte, st step) rangeSet {
		for i := st.start; i <= st.end; i++ {
			bytes[i] = st.op[0]
		}
		switch st.op {
		case "r":
			return s.with(st.start, st.end, core.Shared)
		case "w":
			return s.with(st.start, st.end, core.Exclusive)
		}
		return s.without(st.start, st.end)
	}
	start := []step{{"r", 1, 5}, {"w", 3, 3}}
	for _, x := range steps {
		for _, y := range steps {
			bytes := []byte(strings.Repeat("u", size))
			var s rangeSet
			for _, st := range append(append(start[:len(start):len(start)], x), y) {
				s = apply(s, bytes, st)
			}
			checkRangeSet(t, s)
			got := []byte(strings.Repeat("u", size))
			for _, r := range s {
				c := byte('r')
				if r.mode == core.Exclusive {
					c = 'w'
				}
				for i := r.start; i <= r.end; i++ {
					got[i] = c
				}
			}
			if string(got) != string(bytes) {
				t.Fatalf("after %v %v: set %s covers %q, want %q", x, y, s, got, bytes)
			}
		}
	}
}
