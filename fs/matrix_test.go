package fs_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFileMatrix runs the open-flag × operation matrix and the scenario
// rows of the file model (DESIGN.md, "What a file operation means") at
// node level, on the in-memory store, each row in a new world of two hosts.
//
// Each row states what every host reads afterwards through a new open and
// what B2 holds (read through a new group), which must agree, and how many
// changes each host kept in its recovery directory; the errno of every
// step is checked as the row runs.
func TestFileMatrix(t *testing.T) {
	gen := generatedRows()
	rows := append(gen, scenarioRows()...)
	t.Logf("file matrix: %d rows: %d generated (2 initial states × %d open modes × %d operations), %d scenarios",
		len(rows), len(gen), len(openModes()), len(matrixOps), len(rows)-len(gen))
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) { r.check(t) })
	}
}

// row is one line of the matrix.
type row struct {
	name string
	init map[string]string // objects in B2 before the row
	run  func(w *world)
	// want is what each name reads as, through a new open on either host
	// and in B2, once run returned.
	want map[string]string
	// keptA and keptB count the changes the hosts keep in their recovery
	// directories afterwards.
	keptA, keptB int
	// indexTTL, when set, is how stale the hosts' views of the index may
	// be (as on a mount with index_ttl), instead of always current; the
	// row's final checks wait that long.
	indexTTL time.Duration
}

func (r row) check(t *testing.T) {
	ttl := time.Duration(-1)
	if r.indexTTL > 0 {
		ttl = r.indexTTL
	}
	w := newWorld(t, ttl)
	if r.init != nil {
		w.seed(r.init)
	}
	r.run(w)
	if r.indexTTL > 0 {
		time.Sleep(r.indexTTL + 50*time.Millisecond)
	}
	for name, want := range r.want {
		w.checkStored(name, want)
		w.A.check(name, want)
		w.B.check(name, want)
	}
	if n := w.A.kept(); n != r.keptA {
		t.Errorf("host A keeps %d changes in its recovery directory, want %d", n, r.keptA)
	}
	if n := w.B.kept(); n != r.keptB {
		t.Errorf("host B keeps %d changes in its recovery directory, want %d", n, r.keptB)
	}
}

// openMode is a set of open(2) flags.
type openMode struct {
	acc                     int // O_RDONLY, O_WRONLY or O_RDWR
	app, trunc, creat, excl bool
}

func (m openMode) flags() int {
	f := m.acc
	for _, b := range []struct {
		on  bool
		bit int
	}{{m.app, syscall.O_APPEND}, {m.trunc, syscall.O_TRUNC}, {m.creat, syscall.O_CREAT}, {m.excl, syscall.O_EXCL}} {
		if b.on {
			f |= b.bit
		}
	}
	return f
}

func (m openMode) String() string { return flagNames(m.flags()) }
func (m openMode) readable() bool { return m.acc != syscall.O_WRONLY }
func (m openMode) writable() bool { return m.acc != syscall.O_RDONLY }

// openModes lists every access mode with every combination of O_APPEND,
// O_TRUNC, O_CREAT and O_EXCL, but O_EXCL without O_CREAT (undefined for
// files) and O_RDONLY|O_TRUNC (undefined by POSIX).
func openModes() []openMode {
	var ms []openMode
	for _, acc := range []int{syscall.O_RDONLY, syscall.O_WRONLY, syscall.O_RDWR} {
		for bits := range 16 {
			m := openMode{acc: acc, app: bits&1 != 0, trunc: bits&2 != 0, creat: bits&4 != 0, excl: bits&8 != 0}
			if m.excl && !m.creat || acc == syscall.O_RDONLY && m.trunc {
				continue
			}
			ms = append(ms, m)
		}
	}
	return ms
}

// matrixOps are the operations of the generated rows, each done through a
// descriptor of "f" opened with the row's flags.
var matrixOps = []string{"read", "write", "ftruncate", "truncate", "fsync", "dup", "unlink", "rename"}

// overwrite returns s with data written at off (zero-filled up to off).
func overwrite(s string, off int, data string) string {
	if len(s) < off {
		s += strings.Repeat("\x00", off-len(s))
	}
	if end := off + len(data); end < len(s) {
		return s[:off] + data + s[end:]
	}
	return s[:off] + data
}

// resize returns s cut or zero-filled to n bytes.
func resize(s string, n int) string {
	if len(s) >= n {
		return s[:n]
	}
	return s + strings.Repeat("\x00", n-len(s))
}

// generatedRows are the open-flag × operation rows: f is "hello" or
// absent, opened on host A with each open mode, then one operation.
func generatedRows() []row {
	var rows []row
	for _, exists := range []bool{true, false} {
		for _, m := range openModes() {
			for _, op := range matrixOps {
				rows = append(rows, matrixRow(exists, m, op))
			}
		}
	}
	return rows
}

func matrixRow(exists bool, m openMode, op string) row {
	state := "absent"
	r := row{want: map[string]string{"f": absent, "g": absent}}
	if exists {
		state = "hello"
		r.init = map[string]string{"f": "hello"}
		r.want["f"] = "hello"
	}
	r.name = fmt.Sprintf("%s/%s/%s", state, m, op)
	flags := m.flags()

	var openErr syscall.Errno
	switch {
	case !exists && !m.creat:
		openErr = syscall.ENOENT
	case exists && m.creat && m.excl:
		openErr = syscall.EEXIST
	}
	if openErr != 0 {
		r.run = func(w *world) { w.A.open("f", flags, openErr) }
		return r
	}
	// cur is f's content after the open; stored what B2 holds by then,
	// unknown (storedKnown false) after an O_TRUNC of an existing file,
	// whose commit may wait for the close.
	cur, stored := "hello", "hello"
	if !exists {
		cur, stored = "", absent // a new file is committed at its first close, not at create
	}
	if exists && m.trunc {
		cur, stored = "", ""
	}
	storedKnown := !(exists && m.trunc)
	// write is what writing data through the descriptor at offset off
	// makes of s.
	write := func(s string, off int, data string) string {
		if m.app {
			return s + data
		}
		return overwrite(s, off, data)
	}
	// observe reads f through a second descriptor on the same host, which
	// sees the first one's changes.
	observe := func(w *world, name, want string) {
		o := w.A.open(name, syscall.O_RDONLY, 0)
		o.pread(0, 1<<16, want)
		o.close(0)
	}
	// writtenXY is s after the descriptor writes "XY" at offset 0, if
	// it can.
	writtenXY := func(s string) string {
		if m.writable() {
			return write(s, 0, "XY")
		}
		return s
	}
	// readBack reads f whole through the descriptor, if it can.
	readBack := func(f *ofd, want string) {
		if m.readable() {
			f.pread(0, 100, want)
		}
	}
	wrErr, truncErr, rdErr := syscall.Errno(0), syscall.Errno(0), syscall.Errno(0)
	if !m.writable() {
		wrErr, truncErr = syscall.EBADF, syscall.EINVAL
	}
	if !m.readable() {
		rdErr = syscall.EBADF
	}

	switch op {
	case "read":
		after := cur
		r.run = func(w *world) {
			f := w.A.open("f", flags, 0)
			if m.readable() {
				f.read(100, cur, 0)
			} else {
				f.read(100, "", rdErr)
			}
			observe(w, "f", cur)
			if storedKnown {
				w.checkStored("f", stored)
			}
			f.close(0)
		}
		r.want["f"] = after
	case "write":
		after := writtenXY(cur)
		r.run = func(w *world) {
			f := w.A.open("f", flags, 0)
			f.write("XY", wrErr)
			readBack(f, after)
			observe(w, "f", after)
			if storedKnown {
				w.checkStored("f", stored) // not committed before the close
			}
			f.close(0)
		}
		r.want["f"] = after
	case "ftruncate":
		after := cur
		if m.writable() {
			after = write(resize(cur, 3), 0, "Z")
		}
		r.run = func(w *world) {
			f := w.A.open("f", flags, 0)
			f.ftruncate(3, truncErr)
			f.write("Z", wrErr)
			readBack(f, after)
			observe(w, "f", after)
			f.close(0)
		}
		r.want["f"] = after
	case "truncate":
		after := resize(cur, 3)
		r.run = func(w *world) {
			f := w.A.open("f", flags, 0)
			w.A.truncate("f", 3, 0)
			if !m.writable() {
				// No descriptor could commit it later: truncate(2) did.
				w.checkStored("f", after)
			}
			readBack(f, after)
			observe(w, "f", after)
			f.close(0)
		}
		r.want["f"] = after
	case "fsync":
		after := writtenXY(cur)
		r.run = func(w *world) {
			f := w.A.open("f", flags, 0)
			f.write("XY", wrErr)
			f.fsync(0)
			if m.writable() {
				w.checkStored("f", after) // fsync committed
				w.B.check("f", after)
			} else {
				w.checkStored("f", stored) // a read-only descriptor publishes nothing
			}
			f.close(0)
		}
		r.want["f"] = after
	case "dup":
		first, after := cur, cur
		if m.writable() {
			first = write(cur, 0, "XY")
			after = write(first, 2, "Z")
		}
		r.run = func(w *world) {
			f := w.A.open("f", flags, 0)
			d := f.dup()
			if m.writable() {
				f.write("XY", 0)
				f.close(0) // one of two descriptors: commits, the handle stays
				w.checkStored("f", first)
				d.write("Z", 0) // the shared offset is 2
				if m.readable() {
					d.pread(0, 100, after)
				}
			} else {
				f.read(2, cur[:min(2, len(cur))], 0)
				f.close(0)
				d.read(100, cur[min(2, len(cur)):], 0)
			}
			d.close(0)
		}
		r.want["f"] = after
	case "unlink":
		after := writtenXY(cur)
		r.run = func(w *world) {
			f := w.A.open("f", flags, 0)
			f.write("XY", wrErr)
			w.A.unlink("f", 0)
			w.A.open("f", syscall.O_RDONLY, syscall.ENOENT)
			readBack(f, after) // it keeps working until the last close
			f.write("Q", wrErr)
			f.fsync(0)
			w.checkStored("f", absent)
			f.close(0) // commits nothing, keeps nothing
		}
		r.want["f"] = absent
	case "rename":
		after := cur
		if m.writable() {
			after = write(write(cur, 0, "XY"), 2, "Z")
		}
		r.run = func(w *world) {
			f := w.A.open("f", flags, 0)
			f.write("XY", wrErr)
			w.A.rename("f", "g", 0)
			f.write("Z", wrErr)
			readBack(f, after)
			observe(w, "g", after)
			f.close(0)
		}
		r.want["f"], r.want["g"] = absent, after
	default:
		panic(op)
	}
	return r
}

const (
	rdonly  = syscall.O_RDONLY
	wronly  = syscall.O_WRONLY
	rdwr    = syscall.O_RDWR
	oappend = syscall.O_APPEND
	creat   = syscall.O_CREAT
	excl    = syscall.O_EXCL
	busy    = syscall.EBUSY
	noent   = syscall.ENOENT
)

// scenarioRows are the rows of more than one descriptor or host: each
// defect of the per-handle model is one of them.
func scenarioRows() []row {
	rows := []row{
		sc("one host/two descriptors/no lost update", "0123456789", files{"f": "AA234BB789"}, func(w *world) {
			a1 := w.A.open("f", rdwr, 0)
			a2 := w.A.open("f", rdwr, 0)
			a1.pwrite(0, "AA", 0)
			a2.pwrite(5, "BB", 0)
			a1.pread(0, 100, "AA234BB789")
			a2.pread(0, 100, "AA234BB789")
			a1.close(0)
			a2.close(0)
		}),
		sc("one host/two descriptors/the first close commits both", "0123456789", files{"f": "AA234BB789"}, func(w *world) {
			a1 := w.A.open("f", rdwr, 0)
			a2 := w.A.open("f", wronly, 0)
			a1.pwrite(0, "AA", 0)
			a2.pwrite(5, "BB", 0)
			a1.close(0)
			w.checkStored("f", "AA234BB789")
			a2.close(0)
		}),
		sc("one host/write visible to readers opened before and after it", "hello", files{"f": "Jello"}, func(w *world) {
			r1 := w.A.open("f", rdonly, 0)
			a1 := w.A.open("f", wronly, 0)
			a1.write("J", 0)
			r1.pread(0, 100, "Jello")
			r2 := w.A.open("f", rdonly, 0)
			r2.pread(0, 100, "Jello")
			w.B.check("f", "hello") // not committed yet
			r1.close(0)
			r2.close(0)
			a1.close(0)
		}),
		sc("one host/O_APPEND writes at the real end", "abc", files{"f": "abcdefg++"}, func(w *world) {
			a1 := w.A.open("f", wronly|oappend, 0)
			a2 := w.A.open("f", rdwr, 0)
			a2.pwrite(3, "defg", 0)
			a1.write("++", 0) // the kernel's offset is 3
			a2.pread(0, 100, "abcdefg++")
			a1.close(0)
			a2.close(0)
		}),
		sc("one host/O_APPEND from two descriptors", "abc", files{"f": "abc123"}, func(w *world) {
			a1 := w.A.open("f", wronly|oappend, 0)
			a2 := w.A.open("f", wronly|oappend, 0)
			a1.write("1", 0)
			a2.write("2", 0)
			a1.write("3", 0)
			a2.close(0)
			a1.close(0)
		}),
		sc("one host/ftruncate visible to another descriptor", "hello world", files{"f": "hello"}, func(w *world) {
			a1 := w.A.open("f", rdwr, 0)
			a2 := w.A.open("f", rdonly, 0)
			a1.ftruncate(5, 0)
			a2.pread(0, 100, "hello")
			if size, err := a2.sizeOf(); err != nil || size != 5 {
				w.t.Errorf("after ftruncate to 5 the file reports size %d (%v)", size, err)
			}
			a2.close(0)
			a1.close(0)
		}),
		sc("one host/truncate by path and by descriptor act on one state", "hello", files{"f": "hello!"}, func(w *world) {
			a1 := w.A.open("f", rdwr, 0)
			a1.pwrite(5, " world", 0)
			w.A.truncate("f", 8, 0)
			a1.pread(0, 100, "hello wo")
			a1.ftruncate(5, 0)
			a1.pwrite(5, "!", 0)
			a1.close(0)
		}),
		sc("one host/truncate by path commits", "hello world", files{"f": "hello"}, func(w *world) {
			w.A.truncate("f", 5, 0)
			w.checkStored("f", "hello")
			w.B.check("f", "hello")
		}),
		sc("one host/truncate by path that grows commits", "abc", files{"f": "abc\x00\x00"}, func(w *world) {
			w.A.truncate("f", 5, 0)
			w.checkStored("f", "abc\x00\x00")
		}),
		sc("one host/truncate by path beside a read-only descriptor commits", "hello world", files{"f": "hello"}, func(w *world) {
			r := w.A.open("f", rdonly, 0)
			w.A.truncate("f", 5, 0)
			w.checkStored("f", "hello")
			r.pread(0, 100, "hello")
			r.close(0)
		}),
		sc("one host/truncate by path to 0 beside an untouched writable descriptor", "hello", files{"f": ""}, func(w *world) {
			a1 := w.A.open("f", rdwr, 0)
			w.A.truncate("f", 0, 0)
			a1.pread(0, 100, "")
			a1.close(0)
		}),
		sc("one host/fsync on a read-only descriptor publishes nothing", "hello", files{"f": "Jello"}, func(w *world) {
			a1 := w.A.open("f", rdwr, 0)
			a1.pwrite(0, "J", 0)
			r := w.A.open("f", rdonly, 0)
			r.fsync(0)
			w.checkStored("f", "hello")
			r.close(0)
			w.checkStored("f", "hello")
			a1.fsync(0)
			w.checkStored("f", "Jello")
			a1.close(0)
		}),
		sc("one host/close of a read-only descriptor publishes nothing", "hello", files{"f": "Jello"}, func(w *world) {
			a1 := w.A.open("f", wronly, 0)
			a1.write("J", 0)
			r := w.A.open("f", rdonly, 0)
			r.read(100, "Jello", 0)
			r.close(0)
			w.checkStored("f", "hello")
			a1.close(0)
		}),
		sc("one host/unlinked while open: works until the last close, commits nothing, keeps nothing", "hello", files{"f": absent}, func(w *world) {
			a1 := w.A.open("f", rdwr, 0)
			a1.pwrite(0, "J", 0)
			w.A.unlink("f", 0)
			a1.pread(0, 100, "Jello")
			a1.pwrite(5, " world", 0)
			a1.pread(0, 100, "Jello world")
			a1.fsync(0)
			w.checkStored("f", absent)
			a1.close(0)
		}),
		sc("one host/unlinked while open: its descriptors still share it", "hello", files{"f": absent}, func(w *world) {
			a1 := w.A.open("f", wronly, 0)
			r := w.A.open("f", rdonly, 0)
			w.A.unlink("f", 0)
			a1.write("J", 0)
			r.pread(0, 100, "Jello")
			a1.close(0)
			r.close(0)
		}),
		sc("one host/unlinked while open: a new file of that name is left alone", "hello", files{"f": "new"}, func(w *world) {
			a1 := w.A.open("f", rdwr, 0)
			a1.pwrite(0, "J", 0)
			w.A.unlink("f", 0)
			a2 := w.A.open("f", wronly|creat|excl, 0)
			a2.write("new", 0)
			a2.close(0)
			a1.pwrite(0, "old", 0)
			a1.pread(0, 100, "oldlo")
			a1.close(0)
		}),
		sc("one host/unlinked while open, unchanged: close commits nothing", "hello", files{"f": absent}, func(w *world) {
			a1 := w.A.open("f", rdwr, 0)
			w.A.unlink("f", 0)
			a1.read(100, "hello", 0)
			a1.close(0)
		}),
		sc("one host/rename while open, then write and close", "hello", files{"f": absent, "g": "Jello!"}, func(w *world) {
			a1 := w.A.open("f", rdwr, 0)
			a2 := w.A.open("f", rdonly, 0)
			a1.pwrite(0, "J", 0)
			w.A.rename("f", "g", 0)
			a1.pwrite(5, "!", 0)
			a2.pread(0, 100, "Jello!")
			a1.close(0)
			a2.close(0)
		}),
		sc("two hosts/writes show elsewhere after close", "hello", files{"f": "Jello"}, func(w *world) {
			a1 := w.A.open("f", wronly, 0)
			a1.write("J", 0)
			w.B.check("f", "hello")
			a1.close(0)
			w.B.check("f", "Jello")
		}),
		sc("two hosts/fsync shows writes elsewhere before close", "hello", files{"f": "JEllo"}, func(w *world) {
			a1 := w.A.open("f", wronly, 0)
			a1.write("J", 0)
			a1.fsync(0)
			w.B.check("f", "Jello")
			a1.write("E", 0)
			a1.close(0)
		}),
		sc("two hosts/rename over a target changed elsewhere: EBUSY, nothing changes", "one\n", files{"f": "two\n", "tmp": "ONE\n"}, func(w *world) {
			w.A.check("f", "one\n") // A opens and reads f, as sed -i does
			w.B.put("f", "two\n")
			tmp := w.A.open("tmp", wronly|creat|excl, 0)
			tmp.write("ONE\n", 0)
			tmp.close(0)
			w.A.rename("tmp", "f", busy)
		}),
		sc("two hosts/rename over a target changed elsewhere while open here: EBUSY", "one\n", files{"f": "two\n", "tmp": "ONE\n"}, func(w *world) {
			r := w.A.open("f", rdonly, 0)
			r.read(100, "one\n", 0)
			w.B.put("f", "two\n")
			w.A.put("tmp", "ONE\n")
			w.A.rename("tmp", "f", busy)
			r.close(0)
		}),
		sc("two hosts/rename over a target unchanged elsewhere replaces it", "one\n", files{"f": "ONE\n", "tmp": absent}, func(w *world) {
			w.A.check("f", "one\n")
			w.A.put("tmp", "ONE\n")
			w.A.rename("tmp", "f", 0)
		}),
		sc("two hosts/rename over a target this host wrote last replaces it", "one\n", files{"f": "ONE\n", "tmp": absent}, func(w *world) {
			w.B.check("f", "one\n")
			w.A.put("f", "two\n")
			w.A.put("tmp", "ONE\n")
			w.A.rename("tmp", "f", 0)
		}),
		sc("two hosts/appends merge: both open at once", "a\n", files{"f": "a\nB\nA\n"}, func(w *world) {
			a1 := w.A.open("f", wronly|oappend, 0)
			b1 := w.B.open("f", wronly|oappend, 0)
			a1.write("A\n", 0)
			b1.write("B\n", 0)
			b1.close(0)
			a1.close(0)
		}),
		sc("two hosts/appends merge: many rounds", "", files{"f": "A0\nB0\nA1\nB1\nA2\nB2\nA3\nB3\nA4\nB4\n"}, func(w *world) {
			for i := range 5 {
				a1 := w.A.open("f", wronly|oappend, 0)
				b1 := w.B.open("f", wronly|oappend, 0)
				a1.write(fmt.Sprintf("A%d\n", i), 0)
				b1.write(fmt.Sprintf("B%d\n", i), 0)
				a1.close(0)
				b1.close(0)
			}
		}),
		// bash opens, moves the descriptor with dup2 and closes the
		// original (a Flush with nothing changed) before it writes.
		sc("two hosts/appends merge: the shell's >> on an empty file", "", files{"f": "B\nA\nA2\nA3\nB2\n"}, func(w *world) {
			shell := func(h *host) (*ofd, func(data string)) {
				f := h.open("f", wronly|oappend|creat, 0)
				d := f.dup()
				f.close(0)
				return d, func(data string) {
					d.write(data, 0)
					d.close(0)
				}
			}
			_, a := shell(w.A)
			_, b := shell(w.B)
			b("B\n")
			a("A\n")
			w.A.append("f", "A2\n")
			_, b = shell(w.B)
			_, a = shell(w.A)
			a("A3\n")
			b("B2\n")
		}),
	}
	rows = append(rows, casRows()...)
	// The rows where hosts meet through compare-and-swap again, with views
	// of the index that lag as a mount's do (index_ttl): a host then opens
	// and commits against versions it does not know are old.
	var stale []row
	for _, r := range rows {
		for _, prefix := range []string{"two hosts/close commits", "two hosts/appends merge", "two hosts/an overwrite", "two hosts/a truncation", "two hosts/rename over"} {
			if strings.HasPrefix(r.name, prefix) {
				r.name += " (stale views)"
				r.indexTTL = 300 * time.Millisecond
				stale = append(stale, r)
			}
		}
	}
	rows = append(rows, stale...)
	rows = append(rows, snapshotRows()...)
	return rows
}

// files is what each name reads as after a row (absent: no such file).
type files = map[string]string

// sc is a scenario row: f holds init before run, and the names read as
// want afterwards; no host keeps changes in its recovery directory.
func sc(name, init string, want files, run func(w *world)) row {
	return row{name: name, init: files{"f": init}, run: run, want: want}
}

// casRows are the rows of a commit that meets another host's change: A
// opens f, edits it, B changes f meanwhile, then A's close merges the
// edits onto B's version or fails with EBUSY, keeping A's bytes in its
// recovery directory.
func casRows() []row {
	pwrite := func(off int64, data string) func(f *ofd) { return func(f *ofd) { f.pwrite(off, data, 0) } }
	write := func(data string) func(f *ofd) { return func(f *ofd) { f.write(data, 0) } }
	ftruncate := func(n int64) func(f *ofd) { return func(f *ofd) { f.ftruncate(n, 0) } }
	put := func(data string) func(w *world) { return func(w *world) { w.B.put("f", data) } }
	appendB := func(w *world) { w.B.append("f", "B\n") }
	unlink := func(w *world) { w.B.unlink("f", 0) }
	type edits []func(f *ofd)
	var rows []row
	for _, c := range []struct {
		name, init string
		flags      int
		edits      edits          // A's, in order
		other      func(w *world) // B's change
		closeErr   syscall.Errno
		want       string
		keptA      int
	}{
		{"close commits with compare-and-swap: EBUSY, bytes kept", "x", rdwr, edits{pwrite(0, "A")}, put("B"), busy, "B", 1},
		{"unlinked elsewhere while changed here: EBUSY, bytes kept", "hello", rdwr, edits{pwrite(0, "J")}, unlink, busy, absent, 1},
		{"appends merge: O_APPEND", "a\n", wronly | oappend, edits{write("A\n")}, appendB, 0, "a\nB\nA\n", 0},
		{"appends merge: writes past the base's end", "a\n", wronly, edits{pwrite(2, "A\n")}, appendB, 0, "a\nB\nA\n", 0},
		{"appends merge onto a version rewritten elsewhere", "a\n", wronly | oappend, edits{write("A\n")}, put("b\n"), 0, "b\nA\n", 0},
		{"an overwrite does not merge: EBUSY", "a\n", rdwr, edits{pwrite(0, "X"), pwrite(2, "A\n")}, appendB, busy, "a\nB\n", 1},
		{"a truncation does not merge: EBUSY", "abc\n", wronly | oappend, edits{ftruncate(2), write("A\n")}, appendB, busy, "abc\nB\n", 1},
	} {
		r := sc("two hosts/"+c.name, c.init, files{"f": c.want}, func(w *world) {
			a1 := w.A.open("f", c.flags, 0)
			for _, e := range c.edits {
				e(a1)
			}
			c.other(w)
			a1.close(c.closeErr)
		})
		r.keptA = c.keptA
		rows = append(rows, r)
	}
	return rows
}

// snapshotRows: a descriptor on host A reads the version it opened, whole,
// while host B shrinks, grows or deletes the file; new opens on A see B's
// version, and the node behind A's descriptor keeps reporting the size of
// A's version (unless it opened with direct I/O), so that the kernel's
// size cache cannot cut the read.
func snapshotRows() []row {
	v1 := randomString(1<<20+12345, 1)
	short := "short\n"
	long := randomString(3<<20, 2)
	type change struct {
		what string
		do   func(w *world)
		now  string // what f holds after the change
	}
	shrink := change{"shrinks", func(w *world) { w.B.put("f", short) }, short}
	grow := change{"grows", func(w *world) { w.B.put("f", long) }, long}
	del := change{"deletes", func(w *world) { w.B.unlink("f", 0) }, absent}
	var rows []row
	for _, seq := range [][]change{{shrink}, {grow}, {del}, {shrink, grow, del}} {
		var names []string
		for _, c := range seq {
			names = append(names, c.what)
		}
		for _, flags := range []int{rdonly, rdwr} {
			rows = append(rows, row{
				name: fmt.Sprintf("two hosts/snapshot/%s/B %s", flagNames(flags), strings.Join(names, ", ")),
				init: map[string]string{"f": v1},
				run: func(w *world) {
					a1 := w.A.open("f", flags, 0)
					chunk := len(v1) / (len(seq) + 1)
					a1.read(chunk, v1[:chunk], 0)
					for i, c := range seq {
						c.do(w)
						if got := w.A.cat("f"); got != c.now {
							w.A.errorf("after B %s f, a new open reads %s, want %s", c.what, show(got), show(c.now))
						}
						if size, err := a1.sizeOf(); !a1.directIO && (err != nil || size != uint64(len(v1))) {
							w.A.errorf("after B %s f, the node of the open descriptor reports size %d (%v), want %d: the kernel would cut the read", c.what, size, err, len(v1))
						}
						n := chunk
						if i == len(seq)-1 {
							n = len(v1) // the rest
						}
						start := int(a1.pos)
						a1.read(n, v1[start:min(start+n, len(v1))], 0)
					}
					a1.read(100, "", 0) // the end of A's version
					a1.close(0)
				},
				want: map[string]string{"f": seq[len(seq)-1].now},
			})
		}
	}
	return rows
}

func randomString(n int, seed uint64) string {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return string(b)
}
